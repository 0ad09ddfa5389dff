using System.CommandLine;
using BenchmarkDotNet.Running;
using StdDaq.Benchmarks.Compression;

// dotnet run -c Release -- info                  the C library's build (AVX2 or not), compression ratios, cross-check
// dotnet run -c Release -- interleaved [rounds]  compression and its parts, taken in turn, medians (quick, noise-robust)
// dotnet run -c Release -- [BenchmarkDotNet arguments, e.g. --filter *Compress*]
if (args.Length > 0 && args[0] is "info" or "interleaved")
{
    var info = new Command("info", "The C library's build (AVX2 or not), compression ratios, cross-check.");
    info.SetAction(_ => Info.Run());
    var rounds = new Argument<int>("rounds")
    {
        Description = "rounds to take medians of",
        DefaultValueFactory = _ => 30,
        CustomParser = r =>
        {
            if (int.TryParse(r.Tokens[0].Value, out int n) && n >= 1)
                return n;
            r.AddError($"rounds '{r.Tokens[0].Value}' is not an integer of at least 1");
            return 0;
        },
    };
    var interleaved = new Command("interleaved", "Compression and its parts, taken in turn, medians (quick, noise-robust).") { rounds };
    interleaved.SetAction(a => Interleaved.Run(a.GetValue(rounds)));
    return new RootCommand("Compression benchmarks") { info, interleaved }.Parse(args).Invoke();
}
BenchmarkSwitcher.FromAssembly(typeof(CompressionBenchmarks).Assembly).Run(args);
return 0;
