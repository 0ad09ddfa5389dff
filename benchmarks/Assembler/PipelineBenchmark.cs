using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Assembler;
using StdDaq.Assembler.Conversions;
using StdDaq.Pipeline;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;

namespace StdDaq.Benchmarks.Assembler;

/// <summary>
/// The whole assembler for a JUNGFRAU of N modules (a column) or an EIGER of N ports (N / 4 modules
/// in std-daq's layout, e.g. 72 ports: a 9M), fed from pre-filled FrameBuffers (no UDP):
/// each module's frame slots hold pattern frames; per image the feeder rewrites each module's slot
/// header (new id, new sequence) and publishes its notice, as StdUdpRecv does when a frame is
/// complete. A subscriber takes the ImageMetadata. Reports images/s at full speed (the feeder
/// keeps at most <c>window</c> images in flight) and, at a fixed rate, the latency from the last
/// module's notice to the metadata arriving (median, p99).
/// </summary>
public static class PipelineBenchmark
{
    /// <summary>`pipeline` and its options.</summary>
    public static Command Create()
    {
        var type = new Option<string>("--type") { HelpName = "jungfrau-raw|jungfrau-converted|eiger", Description = "the detector", DefaultValueFactory = _ => "jungfrau-raw" };
        type.AcceptOnlyFromAmong("jungfrau-raw", "jungfrau-converted", "eiger");
        var modules = CliOptions.Number("--modules", "N", "JUNGFRAU modules, or EIGER ports (4 per module)", 4, 1, 1024);
        var images = CliOptions.Number("--images", "N", "images to send", 20000, 1);
        var rate = CliOptions.Number("--rate", "HZ", "images per second; 0 = full speed (throughput), else paced (latency)", 0.0, 0);
        var workers = CliOptions.Number("--workers", "N", "assembler workers; 0 = automatic", 0, 0, 256);
        var window = CliOptions.Number("--window", "N", "at full speed, images in flight at most", 16, 1);
        var depth = CliOptions.Number("--depth", "BITS", "bit depth", 16, 8, 32);
        var frameSlots = CliOptions.Number("--frame-slots", "N", "FrameBuffer slots per module", 256, 1);
        var imageSlots = CliOptions.Number("--image-slots", "N", "ImageBuffer slots", 64, 1);
        var command = new Command("pipeline", "The whole assembler fed from pre-filled FrameBuffers: images/s at full speed, latency when paced.")
        {
            type, modules, images, rate, workers, window, depth, frameSlots, imageSlots,
        };
        command.SetAction(a => Run(a.GetValue(type)!, a.GetValue(modules), a.GetValue(images), a.GetValue(rate),
            a.GetValue(workers), a.GetValue(window), a.GetValue(depth), a.GetValue(frameSlots), a.GetValue(imageSlots)));
        return command;
    }

    private static int Run(string type, int modules, int images, double rate, int workers, int window, int depth, int frameSlots, int imageSlots)
    {
        string name = $"bench{Environment.ProcessId}";
        ModulePosition[] ports;
        int width, height;
        if (type == "eiger")
        {
            // Modules of 4 ports, about twice as many rows as columns (72 ports: 3 x 6, 128: 4 x 8).
            int eigerModules = modules / 4;
            int columns = Math.Max(1, (int)Math.Round(Math.Sqrt(eigerModules / 2.0)));
            int rows = (eigerModules + columns - 1) / columns;
            if (modules % 4 != 0 || columns * rows != eigerModules)
                throw new ArgumentException($"--modules {modules}: an EIGER here is columns x rows modules of 4 ports");
            ports = EigerLayout.Ports(columns, rows);
            (width, height) = (EigerLayout.Width(columns), EigerLayout.Height(rows));
        }
        else
        {
            ports = Enumerable.Range(0, modules).Select(m => new ModulePosition(0, m * 512, 1023, m * 512 + 511)).ToArray();
            (width, height) = (1024, modules * 512);
        }
        var positions = string.Join(",", ports.Select((p, m) => $"\"{m}\":[{p.X0},{p.Y0},{p.X1},{p.Y1}]"));
        string path = Path.Combine(Path.GetTempPath(), name + ".json");
        File.WriteAllText(path, $$"""
            {"detector_name":"{{name}}","detector_type":"{{type}}","n_modules":{{modules}},"bit_depth":{{depth}},
             "image_pixel_height":{{height}},"image_pixel_width":{{width}},"start_udp_port":50000,
             "module_positions":{ {{positions}} },"frame_buffer_slots":{{frameSlots}},"image_buffer_slots":{{imageSlots}},
             "assembler_workers":{{workers}},"stats_collection_period":1000}
            """);
        var config = DetectorConfigLoader.Load(path, _ => { });
        File.Delete(path);
        JungfrauCalibration? calibration = type == "jungfrau-converted" ? DarkCalibration(modules) : null;
        try
        {
            return Measure(config, calibration, images, rate, window);
        }
        finally
        {
            calibration?.Dispose();
            for (int m = 0; m < modules; m++)
                ShmRing.Unlink(config.FrameBufferName(m));
            ShmRing.Unlink(config.ImageBufferName);
            foreach (var f in Directory.GetFiles("/tmp", $"{name}*").Concat(Directory.GetFiles("/tmp", $"std-daq-{name}*")))
                File.Delete(f);
        }
    }

    private static int Measure(DetectorConfig config, JungfrauCalibration? calibration, int images, double rate, int window)
    {
        int modules = config.NModules;
        var g = config.Module;
        using var source = new ModuleFrameSource(config);
        for (ulong id = 0; id < (ulong)config.FrameBufferSlots; id++)
            for (int m = 0; m < modules; m++)
            {
                int module = m;
                ulong frameId = id;
                source.Write(m, id, f => PixelPattern.Fill(g, frameId, module, f));
            }
        // The assembler alone (frames come from the source, nothing writes).
        using var pipeline = new DaqPipeline(config, new PipelineOptions
        {
            ReceiverModules = [],
            AssemblerOptions = new AssemblerOptions { Calibration = calibration },
            Writer = false,
        }, NullLoggerFactory.Instance);
        var assembler = pipeline.Assembler!;

        var sent = new long[images + 1];
        var arrived = new long[images + 1];
        int received = 0;
        bool subscribed = false;
        var subscriber = new Thread(() =>
        {
            using var sub = ZmqSocket.Subscriber(config.AssemblerEndpoint, receiveTimeoutMs: 50);
            Volatile.Write(ref subscribed, true);
            var buffer = new byte[ImageMetadata.Size];
            var idle = Stopwatch.StartNew();
            while (Volatile.Read(ref received) < images && idle.Elapsed < TimeSpan.FromSeconds(5))
            {
                if (sub.Receive(buffer) != ImageMetadata.Size)
                    continue;
                var meta = ImageMetadata.Read(buffer);
                if (meta.Id >= 1 && meta.Id <= (ulong)images)
                    arrived[meta.Id] = Stopwatch.GetTimestamp();
                Interlocked.Increment(ref received);
                idle.Restart();
            }
        }) { IsBackground = true, Name = "metadata subscriber" };
        subscriber.Start();
        source.WaitForSubscribers(TimeSpan.FromSeconds(10));
        while (!Volatile.Read(ref subscribed))
            Thread.Sleep(1);
        Thread.Sleep(300); // the metadata subscriber's subscription reaches the assembler

        long start = Stopwatch.GetTimestamp();
        for (int i = 1; i <= images; i++)
        {
            if (rate > 0)
            {
                long due = start + (long)((i - 1) / rate * Stopwatch.Frequency);
                // Yield rather than spin: on a small machine the feeder must not take the assembler's core.
                while (Stopwatch.GetTimestamp() < due)
                    Thread.Yield();
            }
            else
                while (i - Volatile.Read(ref received) > window)
                    Thread.Yield();
            for (int m = 0; m < modules; m++)
                source.Publish(source.Write(m, (ulong)i));
            sent[i] = Stopwatch.GetTimestamp();
        }
        subscriber.Join();
        long end = arrived.Max();
        pipeline.StopAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();

        var latencies = Enumerable.Range(1, images).Where(i => arrived[i] != 0)
            .Select(i => (arrived[i] - sent[i]) * 1e6 / Stopwatch.Frequency).Order().ToArray();
        var c = assembler.Counters.Read();
        double seconds = (end - start) / (double)Stopwatch.Frequency;
        Console.WriteLine($"assembler {config.DetectorType} {modules} modules ({assembler.Layout.Width}x{assembler.Layout.Height} {assembler.Layout.Dtype}), " +
            $"{(rate > 0 ? $"paced at {rate} Hz" : $"full speed (window {window})")}: {images} images sent, {received} published in {seconds:F2} s = {received / seconds:F0} images/s; " +
            $"latency last notice -> metadata: median {Percentile(latencies, 0.5):F0} us, p99 {Percentile(latencies, 0.99):F0} us, max {latencies.LastOrDefault():F0} us");
        Console.WriteLine($"  counters: {c.Format(0)}");
        return c[AssemblerCounter.ImagesGood] == images ? 0 : 1;
    }

    private static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];

    /// <summary>A calibration for dark pattern frames (pattern values are G0 ADCs).</summary>
    private static JungfrauCalibration DarkCalibration(int modules)
    {
        long n = (long)modules * JungfrauCalibration.ModulePixels;
        var gains = new float[3 * n];
        var pedestals = new float[3 * n];
        var rnd = new Random(1);
        for (long i = 0; i < 3 * n; i++)
        {
            gains[i] = 30 + 20 * rnd.NextSingle();
            pedestals[i] = 1000 * rnd.NextSingle();
        }
        return new JungfrauCalibration(modules, gains, pedestals);
    }
}
