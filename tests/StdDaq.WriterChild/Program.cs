using System.CommandLine;
using StdDaq.Writer;
using StdDaq.WriterChild;

// Writes TestImages 0 .. write_total-1 (uint16; every 7th marked missing instead), flushes after each
// count in flush_at, prints "flushed <n>" per flush, then closes or kills itself with SIGKILL.
// With --role, it holds the detector's writer role and notes the file there, as StdH5Writer does.
var fileArg = new Argument<string>("file");
var heightArg = new Argument<int>("height");
var widthArg = new Argument<int>("width");
var nArg = new Argument<long>("n_images");
var flushArg = new Argument<string>("flush_at") { Description = "image counts after which to flush, comma-separated (may be empty)" };
var totalArg = new Argument<long>("write_total");
var bitshuffleOption = new Option<bool>("--bitshuffle");
var endOption = new Option<string>("--end") { DefaultValueFactory = _ => "close" };
var roleOption = new Option<string?>("--role") { Description = "take the writer role of this detector and note the file in it, as StdH5Writer does" };
endOption.AcceptOnlyFromAmong("close", "kill");
var root = new RootCommand("Writes a NeXus file with NexusImageFile in a process of its own") { fileArg, heightArg, widthArg, nArg, flushArg, totalArg, bitshuffleOption, endOption, roleOption };
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    foreach (var e in parsed.Errors)
        Console.Error.WriteLine(e.Message);
    return 2;
}
string path = parsed.GetValue(fileArg)!;
int height = parsed.GetValue(heightArg), width = parsed.GetValue(widthArg);
long n = parsed.GetValue(nArg), total = parsed.GetValue(totalArg);
var flushAt = parsed.GetValue(flushArg)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToHashSet();
bool bitshuffle = parsed.GetValue(bitshuffleOption);
bool kill = parsed.GetValue(endOption) == "kill";

using var role = parsed.GetValue(roleOption) is { } detector ? StdDaq.Shared.Hosting.ServiceRoles.Writer(detector) : null;
var file = NexusImageFile.Create(path, new NexusFileOptions(n, height, width, 2, bitshuffle, [new("detector_name", "child")]), overwrite: false);
role?.SetNote(Path.GetFullPath(path));
for (long i = 0; i < total; i++)
{
    if (flushAt.Contains(i))
    {
        file.Flush();
        Console.WriteLine($"flushed {i}");
    }
    if (i % 7 == 6)
    {
        file.MarkMissing(i, TestImages.ImageId(i));
        continue;
    }
    byte[] image = TestImages.UInt16(i, height, width);
    file.WriteImage(i, bitshuffle ? BitshuffleReference.Compress(image, 2) : image, TestImages.ImageId(i), TestImages.Status(i));
}
Console.Out.Flush();
if (kill)
    System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL: no finalizer, no close
file.Close(interrupted: false, null);
return 0;
