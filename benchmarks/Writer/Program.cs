using System.CommandLine;
using StdDaq.Benchmarks.Writer;
using StdDaq.Shared.Hosting;

// dotnet StdDaq.Benchmarks.Writer.dll [--mode file|service] [options of the mode]   (--help lists them)
//   file:    NexusImageFile against plain pwrite from one managed buffer (FileBenchmark)
//   service: the StdH5Writer service from the ImageBuffer against plain write() from the same slots (ServiceBenchmark)
var mode = new Option<string>("--mode") { HelpName = "file|service", Description = "what to measure", DefaultValueFactory = _ => "file" };
mode.AcceptOnlyFromAmong("file", "service");
var dir = new Option<string>("--dir") { HelpName = "DIR", Description = "the folder written to", DefaultValueFactory = _ => Path.GetTempPath() };
var images = CliOptions.Number("--images", "N", "images per run", 2000, 1);
var repeat = CliOptions.OptionalNumber<int>("--repeat", "R", "rounds (default: file 3, service 5)", 1);
var flushEvery = CliOptions.Number("--flush-every", "N", "file: flush the NeXus file every N images", 1000, 1);
var slots = CliOptions.Number("--slots", "N", "service: ImageBuffer slots", 256, 4);
var pixels = new Option<string>("--pixels")
{
    HelpName = "dark|pattern",
    Description = "service: dark JUNGFRAU pixels (pedestal + noise) or the simulator's ramp pattern",
    DefaultValueFactory = _ => "dark",
};
pixels.AcceptOnlyFromAmong("dark", "pattern");
var primer = CliOptions.Number("--primer", "1|0", "service: an untimed plain write before each timed run", 1, 0, 1);
var command = new RootCommand("The writer path against plain write() of the same bytes, alternated.")
{
    mode, dir, images, repeat, flushEvery, slots, pixels, primer,
};
command.SetAction(a =>
{
    try
    {
        return a.GetValue(mode) == "file"
            ? FileBenchmark.Run(a.GetValue(dir)!, a.GetValue(images), a.GetValue(repeat) ?? 3, a.GetValue(flushEvery))
            : ServiceBenchmark.Run(a.GetValue(dir)!, a.GetValue(images), a.GetValue(repeat) ?? 5, a.GetValue(slots),
                a.GetValue(pixels)!, a.GetValue(primer) == 1);
    }
    catch (IOException e)
    {
        Console.Error.WriteLine($"writer benchmark ({a.GetValue(mode)}): {e.Message}");
        return 1;
    }
});
return command.Parse(args).Invoke();
