using System.Diagnostics;
using StdDaq.Writer;

namespace StdDaq.Benchmarks.Writer;

/// <summary>
/// NexusImageFile against plain pwrite of the same images to a file in the same folder, alternated.
/// Options (Program.cs): --dir, --images, --repeat, --flush-every.
/// One image = one JUNGFRAU module, 512 × 1024 uint16 = 1 MiB, from one pre-filled managed buffer.
/// Each run: write all images, then fsync; the time to the end of write() (page cache) and to the
/// end of fsync (disk) are both reported. Files are deleted after each run. A first plain run is
/// not counted (it pays for the page cache's first pages), and the order alternates.
/// </summary>
internal static class FileBenchmark
{
    private const int Height = 512, Width = 1024;

    public static int Run(string dir, int images, int repeat, int flushEvery)
    {
        var image = new byte[Height * Width * 2];
        new Random(1).NextBytes(image);

        Console.WriteLine($"file mode: {images} images of {image.Length >> 20} MiB into {dir}, flush every {flushEvery}, {repeat} rounds");
        var plain = new List<(double Write, double Sync, double Cpu)>();
        var h5 = new List<(double Write, double Sync, double Cpu)>();
        Plain(Path.Combine(dir, "warmup.bin"), images, image);
        for (int r = 0; r < repeat; r++)
        {
            if (r % 2 == 0)
            {
                plain.Add(Plain(Path.Combine(dir, $"plain{r}.bin"), images, image));
                h5.Add(Nexus(Path.Combine(dir, $"nexus{r}.h5"), images, image, flushEvery));
            }
            else
            {
                h5.Add(Nexus(Path.Combine(dir, $"nexus{r}.h5"), images, image, flushEvery));
                plain.Add(Plain(Path.Combine(dir, $"plain{r}.bin"), images, image));
            }
            Console.WriteLine($"round {r}: plain {Rate(plain[^1].Write)} / {Rate(plain[^1].Sync)} MB/s, {PerImage(plain[^1].Cpu)} µs CPU/image; " +
                $"nexus {Rate(h5[^1].Write)} / {Rate(h5[^1].Sync)} MB/s, {PerImage(h5[^1].Cpu)} µs CPU/image (write / write+fsync)");
        }
        double pw = Bench.Median(plain.Select(x => x.Write)), ps = Bench.Median(plain.Select(x => x.Sync));
        double nw = Bench.Median(h5.Select(x => x.Write)), ns = Bench.Median(h5.Select(x => x.Sync));
        double pc = Bench.Median(plain.Select(x => x.Cpu)), nc = Bench.Median(h5.Select(x => x.Cpu));
        Console.WriteLine($"median: write {Rate(nw)} vs {Rate(pw)} MB/s = {pw / nw:P1}; write+fsync {Rate(ns)} vs {Rate(ps)} MB/s = {ps / ns:P1} of plain; " +
            $"CPU {PerImage(nc)} vs {PerImage(pc)} µs/image");
        return 0;

        string PerImage(double seconds) => $"{seconds / images * 1e6:F0}";

        string Rate(double seconds) => $"{(double)images * image.Length / seconds / 1e6:F0}";
    }

    private static (double, double, double) Plain(string path, int images, byte[] image)
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

    private static (double, double, double) Nexus(string path, int images, byte[] image, int flushEvery)
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        using (var file = NexusImageFile.Create(path, new NexusFileOptions(images, Height, Width, 2, false, [new("detector_name", "bench")]), overwrite: false))
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
}
