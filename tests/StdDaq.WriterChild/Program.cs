using StdDaq.WriterChild;
using StdDaq.Writer;

// StdDaq.WriterChild <file> <height> <width> <n_images> <flush_at,...> <write_total> [--bitshuffle] [--end close|kill]
// Writes TestImages 0 .. write_total-1 (uint16; every 7th marked missing instead), flushes after each
// count in flush_at, prints "flushed <n>" per flush, then closes or kills itself with SIGKILL.
if (args.Length < 6)
{
    Console.Error.WriteLine("usage: StdDaq.WriterChild <file> <height> <width> <n_images> <flush_at,...> <write_total> [--bitshuffle] [--end close|kill]");
    return 2;
}
string path = args[0];
int height = int.Parse(args[1]), width = int.Parse(args[2]);
long n = long.Parse(args[3]), total = long.Parse(args[5]);
var flushAt = args[4].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToHashSet();
bool bitshuffle = args.Contains("--bitshuffle");
bool kill = args.SkipWhile(a => a != "--end").Skip(1).FirstOrDefault() == "kill";

var file = NexusImageFile.Create(path, new NexusFileOptions(n, height, width, 2, bitshuffle, [new("detector_name", "child")]), overwrite: false);
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
