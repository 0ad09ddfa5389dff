using StdDaq.Benchmarks.Writer;

// dotnet StdDaq.Benchmarks.Writer.dll [--mode file|service] [options of the mode]
//   file:    NexusImageFile against plain pwrite from one managed buffer (FileBenchmark)
//   service: the StdH5Writer service from the ImageBuffer against plain write() from the same slots (ServiceBenchmark)
string mode = Bench.Arg(args, "--mode", "file");
try
{
    return mode switch
    {
        "file" => FileBenchmark.Run(args),
        "service" => ServiceBenchmark.Run(args),
        _ => throw new ArgumentException($"--mode {mode}: expected file or service"),
    };
}
catch (Exception e) when (e is ArgumentException or FormatException or IOException)
{
    Console.Error.WriteLine($"writer benchmark ({mode}): {e.Message}");
    return 2;
}
