using BenchmarkDotNet.Running;
using StdDaq.Benchmarks.Assembler;

// dotnet run -c Release -- pipeline [--type jungfrau-raw|jungfrau-converted|eiger] [--modules 4] [--depth 16] [--images N] [--rate HZ]
//                                   [--workers N] [--window 16] [--frame-slots 256] [--image-slots 64]
// dotnet run -c Release -- [BenchmarkDotNet arguments, e.g. --filter *Jungfrau*]
if (args.Length > 0 && args[0] == "pipeline")
    return PipelineBenchmark.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(JungfrauConversionBenchmarks).Assembly).Run(args);
return 0;
