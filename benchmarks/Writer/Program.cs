using System.Diagnostics;
using StdDaq.Writer;

// NexusImageFile against plain pwrite of the same images to a file in the same folder, alternated.
// dotnet StdDaq.Benchmarks.Writer.dll [--dir DIR] [--images N] [--repeat R] [--flush-every N]
// One image = one JUNGFRAU module, 512 × 1024 uint16 = 1 MiB, from one pre-filled buffer (as from an
// ImageBuffer slot). Each run: write all images, then fsync; the time to the end of write() (page
// cache) and to the end of fsync (disk) are both reported. Files are deleted after each run. A first
// plain run is not counted (it pays for the page cache's first pages), and the order alternates.
string dir = Arg("--dir", Path.GetTempPath());
int images = int.Parse(Arg("--images", "2000"));
int repeat = int.Parse(Arg("--repeat", "3"));
int flushEvery = int.Parse(Arg("--flush-every", "1000"));
const int height = 512, width = 1024;
var image = new byte[height * width * 2];
new Random(1).NextBytes(image);

Console.WriteLine($"{images} images of {image.Length >> 20} MiB into {dir}, flush every {flushEvery}, {repeat} rounds");
var plain = new List<(double Write, double Sync, double Cpu)>();
var h5 = new List<(double Write, double Sync, double Cpu)>();
Plain(Path.Combine(dir, "warmup.bin"));
for (int r = 0; r < repeat; r++)
{
    if (r % 2 == 0)
    {
        plain.Add(Plain(Path.Combine(dir, $"plain{r}.bin")));
        h5.Add(Nexus(Path.Combine(dir, $"nexus{r}.h5")));
    }
    else
    {
        h5.Add(Nexus(Path.Combine(dir, $"nexus{r}.h5")));
        plain.Add(Plain(Path.Combine(dir, $"plain{r}.bin")));
    }
    Console.WriteLine($"round {r}: plain {Rate(plain[^1].Write)} / {Rate(plain[^1].Sync)} MB/s, {PerImage(plain[^1].Cpu)} µs CPU/image; " +
        $"nexus {Rate(h5[^1].Write)} / {Rate(h5[^1].Sync)} MB/s, {PerImage(h5[^1].Cpu)} µs CPU/image (write / write+fsync)");
}
double Median(IEnumerable<double> xs) => xs.Order().ElementAt(repeat / 2);
double pw = Median(plain.Select(x => x.Write)), ps = Median(plain.Select(x => x.Sync));
double nw = Median(h5.Select(x => x.Write)), ns = Median(h5.Select(x => x.Sync));
double pc = Median(plain.Select(x => x.Cpu)), nc = Median(h5.Select(x => x.Cpu));
Console.WriteLine($"median: write {Rate(nw)} vs {Rate(pw)} MB/s = {pw / nw:P1}; write+fsync {Rate(ns)} vs {Rate(ps)} MB/s = {ps / ns:P1} of plain; " +
    $"CPU {PerImage(nc)} vs {PerImage(pc)} µs/image");
return 0;

(double, double, double) Plain(string path)
{
    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0))
    {
        for (int i = 0; i < images; i++)
            RandomAccess.Write(fs.SafeFileHandle, image, (long)i * image.Length);
        double write = sw.Elapsed.TotalSeconds;
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        fs.Flush(flushToDisk: true);
        double sync = sw.Elapsed.TotalSeconds;
        File.Delete(path);
        return (write, sync, cpuSeconds);
    }
}

(double, double, double) Nexus(string path)
{
    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    using (var file = NexusImageFile.Create(path, new NexusFileOptions(images, height, width, 2, false, [new("detector_name", "bench")]), overwrite: false))
    {
        for (int i = 0; i < images; i++)
        {
            file.WriteImage(i, image, (ulong)i, 0);
            if ((i + 1) % flushEvery == 0)
                file.Flush();
        }
        file.Close(false, null);
    }
    double write = sw.Elapsed.TotalSeconds;
    double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
    using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        fs.Flush(flushToDisk: true);
    double sync = sw.Elapsed.TotalSeconds;
    File.Delete(path);
    return (write, sync, cpuSeconds);
}

string PerImage(double seconds) => $"{seconds / images * 1e6:F0}";

string Rate(double seconds) => $"{(double)images * image.Length / seconds / 1e6:F0}";

string Arg(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
