using System.CommandLine;
using BenchmarkDotNet.Running;
using StdDaq.Benchmarks.Assembler;

// dotnet run -c Release -- pipeline [options]   the whole assembler (pipeline --help lists the options)
// dotnet run -c Release -- [BenchmarkDotNet arguments, e.g. --filter *Jungfrau*]
if (args.Length > 0 && args[0] == "pipeline")
    return new RootCommand("Assembler benchmarks") { PipelineBenchmark.Create() }.Parse(args).Invoke();
BenchmarkSwitcher.FromAssembly(typeof(JungfrauConversionBenchmarks).Assembly).Run(args);
return 0;
