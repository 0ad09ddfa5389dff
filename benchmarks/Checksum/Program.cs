using BenchmarkDotNet.Running;
using StdDaq.Benchmarks.Checksum;

// dotnet run -c Release -- interleaved [rounds]   the services' copy with and without xxHash3-64, interleaved, medians (quick, noise-robust)
// dotnet run -c Release -- [BenchmarkDotNet arguments, e.g. --filter '*']
if (args.Length > 0 && args[0] == "interleaved")
    return Interleaved.Run(args.Length > 1 && int.TryParse(args[1], out int rounds) && rounds > 0 ? rounds : 400);
BenchmarkSwitcher.FromAssembly(typeof(ChecksumBenchmarks).Assembly).Run(args);
return 0;
