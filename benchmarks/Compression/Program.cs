using BenchmarkDotNet.Running;
using StdDaq.Benchmarks.Compression;

// dotnet run -c Release -- info                  the C library's build (AVX2 or not), compression ratios, cross-check
// dotnet run -c Release -- interleaved [rounds]  compression and its parts, taken in turn, medians (quick, noise-robust)
// dotnet run -c Release -- [BenchmarkDotNet arguments, e.g. --filter *Compress*]
if (args.Length > 0 && args[0] == "info")
    return Info.Run();
if (args.Length > 0 && args[0] == "interleaved")
    return Interleaved.Run(args.Length > 1 ? int.Parse(args[1]) : 30);
BenchmarkSwitcher.FromAssembly(typeof(CompressionBenchmarks).Assembly).Run(args);
return 0;
