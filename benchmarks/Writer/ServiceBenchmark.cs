using StdDaq.Shared.Metrics;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Agent;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.Writer;

namespace StdDaq.Benchmarks.Writer;

/// <summary>
/// The StdH5Writer service's real path against plain write() of the same bytes, in one run.
/// A 2-module JUNGFRAU (1024 × 1024 uint16 = 2 MiB per image) ImageBuffer in /dev/shm is filled
/// once; per image the feeder re-stamps the slot's header (new image id under the sequence lock,
/// pixels unchanged) and sends its StoreStream message on an XPUB, as the WriterAgent does, keeping
/// at most half the ring ahead of the writer. The real <see cref="WriterService"/> runs in-process
/// and acknowledges on a PULL. A service run is timed from the first message to the "closed" ack;
/// an fsync of the file is timed on top. The plain run pwrites the same slots in the same order to
/// a file in the same folder, then fsyncs. Plain and service runs alternate; each round ends with a
/// bitshuffle-LZ4 service run, which is bound by the CPU, not the disk, and has no baseline.
/// Before every timed run an untimed primer (a plain write of the same size, fsync, delete) leaves
/// the same just-freed page-cache memory to each kind of run: on a VM that hands free memory back
/// to its host (virtio-balloon free page reporting), a run that gets returned pages pays for
/// faulting them in again, and which run gets them depends on what ran before (see BENCHMARKS.md).
/// Options (Program.cs): --dir, --images, --repeat, --slots, --pixels dark|pattern, --primer 1|0.
/// </summary>
internal sealed class ServiceBenchmark : IDisposable
{
    /// <summary>One run: seconds to the end of the writes and to the end of the fsync, CPU seconds (all and in the kernel) to the end of the writes.</summary>
    private readonly record struct Result(double Write, double Sync, double Cpu, double KernelCpu, long FileBytes, long StoredBytes, string? Invalid);

    private static readonly TimeSpan Silence = TimeSpan.FromSeconds(60);

    private readonly DetectorConfig _config;
    private readonly string _dir;
    private readonly int _images, _slots;
    private readonly bool _primer;
    private readonly long _imageBytes;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly Dictionary<string, string> _attributes;
    private readonly CancellationTokenSource _stop = new();
    private ShmRing? _ring;
    private WriterService? _writer;
    private Task? _writerTask;
    private StorePublisher? _store;
    private ZmqSocket? _acks;
    private ulong _nextId;
    private long _runId;

    private ServiceBenchmark(DetectorConfig config, string dir, int images, int slots, bool primer)
    {
        _primer = primer;
        _config = config;
        _dir = dir;
        _images = images;
        _slots = slots;
        _imageBytes = (long)config.ImagePixelHeight * config.ImagePixelWidth * sizeof(ushort);
        _nextId = (ulong)slots;
        _attributes = new() { ["detector_name"] = config.DetectorName, ["detector_type"] = config.DetectorType };
    }

    public static int Run(string dir, int images, int repeat, int slots, string pixels, bool primer)
    {
        dir = Path.GetFullPath(dir);
        string name = $"wbench{Environment.ProcessId}";
        var config = DetectorConfigLoader.Parse($$"""
            {"detector_name":"{{name}}","detector_type":"jungfrau-raw","n_modules":2,"bit_depth":16,
             "image_pixel_height":1024,"image_pixel_width":1024,"start_udp_port":50000,
             "module_positions":{"0":[0,0,1023,511],"1":[0,512,1023,1023]},"image_buffer_slots":{{slots}}}
            """);
        using var bench = new ServiceBenchmark(config, dir, images, slots, primer);
        long need = images * bench._imageBytes + (64L << 20);
        long free = new DriveInfo(dir).AvailableFreeSpace;
        Console.WriteLine($"service mode: {images} images of {bench._imageBytes >> 20} MiB (JUNGFRAU raw, 2 modules, 1024 x 1024 uint16, " +
            $"{(pixels == "dark" ? "dark pixels: per-pixel pedestal + noise" : "the simulator's ramp pattern")}) = {images * bench._imageBytes / 1e9:F2} GB per run, " +
            $"from a {slots}-slot ImageBuffer /dev/shm/{config.ImageBufferName} ({slots * bench._imageBytes >> 20} MiB) into {dir}; {repeat} rounds; " +
            $"writer flush every {config.WriterFlushIntervalS} s (writer_flush_interval_s, default); " +
            (primer ? "an untimed plain primer run before each timed run" : "no primer runs"));
        Console.WriteLine($"needs {need / 1e9:F1} GB free in {dir} (one file at a time, deleted after each run; {free / 1e9:F1} GB free)");
        if (free < need)
            throw new IOException($"{dir} has {free / 1e9:F1} GB free, the benchmark needs {need / 1e9:F1} GB");
        bench.Start(pixels);
        return bench.Measure(repeat);
    }

    private void Start(string pixels)
    {
        _ring = ShmRing.CreateOrAttach(_config.ImageBufferName, RingKind.ImageBuffer, _imageBytes, _slots);
        var pedestal = new ushort[_imageBytes / sizeof(ushort)];
        var rnd = new Random(1);
        for (int i = 0; i < pedestal.Length; i++)
            pedestal[i] = (ushort)rnd.Next(1500, 2500);
        for (int s = 0; s < _slots; s++)
        {
            _ring.BeginWrite(s);
            var image = _ring.SlotSpan(s)[..(int)_imageBytes];
            if (pixels == "dark")
                FillDark(image, pedestal, (ulong)s + 1);
            else
                for (int m = 0; m < 2; m++)
                    PixelPattern.Fill(_config.Module, (ulong)s, m, image.Slice(m * (int)_imageBytes / 2, (int)_imageBytes / 2));
            ref SlotHeader h = ref _ring.Slot(s);
            h.ImageId = (ulong)s;
            h.Status = SlotStatus.Good;
            _ring.EndWrite(s);
        }
        _writer = new WriterService(_config, new WriterOptions(), NullLogger.Instance);
        _store = new StorePublisher(_config.WriterAgentEndpoint);
        _acks = ZmqSocket.Puller(_config.WriterStatusEndpoint, receiveTimeoutMs: 1);
        _writerTask = _writer.RunAsync(_stop.Token);
        if (!_store.WaitForWriter(TimeSpan.FromSeconds(10), CancellationToken.None))
            throw new IOException($"the writer did not subscribe to {_config.WriterAgentEndpoint} within 10 s");
    }

    /// <summary>
    /// A dark JUNGFRAU frame in gain G0 (gain bits 00): pedestal + noise of about 3 ADU
    /// (sum of four random bytes, roughly normal). Bitshuffle-LZ4 compresses it far less than the
    /// simulator's ramp, which would flatter the compressed run.
    /// </summary>
    private static void FillDark(Span<byte> image, ushort[] pedestal, ulong seed)
    {
        var pixels = MemoryMarshal.Cast<byte, ushort>(image);
        ulong x = seed * 0x9E3779B97F4A7C15UL | 1;
        for (int i = 0; i < pixels.Length; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            int sum = (int)(x & 0xFF) + (int)(x >> 8 & 0xFF) + (int)(x >> 16 & 0xFF) + (int)(x >> 24 & 0xFF);
            pixels[i] = (ushort)(pedestal[i] + (sum - 510) / 50);
        }
    }

    private int Measure(int repeat)
    {
        var warmPlain = TimedPlain(Path.Combine(_dir, $"{_config.DetectorName}-warmup.bin"));
        var warmService = TimedService(Path.Combine(_dir, $"{_config.DetectorName}-warmup.h5"), compressed: false);
        Console.WriteLine($"warm-up (not counted): plain {Line(warmPlain)}; service {Line(warmService)}; " +
            $"file sizes: plain {warmPlain.FileBytes} B, service {warmService.FileBytes} B");
        var plain = new List<Result>();
        var service = new List<Result>();
        var compressed = new List<Result>();
        for (int r = 0; r < repeat; r++)
        {
            string p = Path.Combine(_dir, $"{_config.DetectorName}-plain{r}.bin"), s = Path.Combine(_dir, $"{_config.DetectorName}-service{r}.h5");
            if (r % 2 == 0)
            {
                plain.Add(TimedPlain(p));
                service.Add(TimedService(s, compressed: false));
            }
            else
            {
                service.Add(TimedService(s, compressed: false));
                plain.Add(TimedPlain(p));
            }
            compressed.Add(TimedService(Path.Combine(_dir, $"{_config.DetectorName}-lz4-{r}.h5"), compressed: true));
            Console.WriteLine($"round {r}: plain {Line(plain[^1])}; service {Line(service[^1])}; " +
                $"bitshuffle-lz4 {Line(compressed[^1])}, ratio {Ratio(compressed[^1]):F2}, {compressed[^1].Write / _images * 1e6:F0} µs wall/image");
        }
        var okPlain = plain.Where(x => x.Invalid == null).ToList();
        var okService = service.Where(x => x.Invalid == null).ToList();
        var okCompressed = compressed.Where(x => x.Invalid == null).ToList();
        double pw = Rate(Bench.Median(okPlain.Select(x => x.Write))), ps = Rate(Bench.Median(okPlain.Select(x => x.Sync)));
        double sw = Rate(Bench.Median(okService.Select(x => x.Write))), ss = Rate(Bench.Median(okService.Select(x => x.Sync)));
        Console.WriteLine($"median of {okService.Count} service and {okPlain.Count} plain runs, service vs plain: write {sw:F2} vs {pw:F2} GB/s = {sw / pw:P1}; " +
            $"write+fsync {ss:F2} vs {ps:F2} GB/s = {ss / ps:P1} of plain; " +
            $"CPU {PerImage(Bench.Median(okService.Select(x => x.Cpu)))} vs {PerImage(Bench.Median(okPlain.Select(x => x.Cpu)))} µs/image, " +
            $"of which in the kernel {PerImage(Bench.Median(okService.Select(x => x.KernelCpu)))} vs {PerImage(Bench.Median(okPlain.Select(x => x.KernelCpu)))}");
        Console.WriteLine($"median of {okCompressed.Count} bitshuffle-lz4 service runs: write {Rate(Bench.Median(okCompressed.Select(x => x.Write))):F2} GB/s, " +
            $"write+fsync {Rate(Bench.Median(okCompressed.Select(x => x.Sync))):F2} GB/s of uncompressed image bytes, " +
            $"ratio {Bench.Median(okCompressed.Select(Ratio)):F2}, CPU {PerImage(Bench.Median(okCompressed.Select(x => x.Cpu)))} µs/image " +
            "(bound by the writer's CPU, not the disk: no plain baseline)");
        int invalid = plain.Count + service.Count + compressed.Count - okPlain.Count - okService.Count - okCompressed.Count;
        if (invalid > 0)
            Console.WriteLine($"{invalid} run(s) INVALID, left out of the medians");
        return invalid == 0 ? 0 : 1;
    }

    private Result TimedPlain(string path)
    {
        Primer();
        return Plain(path);
    }

    private Result TimedService(string path, bool compressed)
    {
        Primer();
        return Service(path, compressed);
    }

    private void Primer()
    {
        if (_primer)
            Plain(Path.Combine(_dir, $"{_config.DetectorName}-primer.bin"));
    }

    private Result Plain(string path)
    {
        var ring = _ring!;
        var cpu = Cpu.Now();
        var sw = Stopwatch.StartNew();
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0);
        try
        {
            // Same slots in the same order as a service run (its ids start at a multiple of the slot count).
            for (int i = 0; i < _images; i++)
                RandomAccess.Write(fs.SafeFileHandle, ring.SlotSpan(i % _slots)[..(int)_imageBytes], i * _imageBytes);
            double write = sw.Elapsed.TotalSeconds;
            var (all, kernel) = Cpu.Since(cpu);
            fs.Flush(flushToDisk: true);
            double sync = sw.Elapsed.TotalSeconds;
            return new Result(write, sync, all, kernel, fs.Length, fs.Length, null);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private Result Service(string path, bool compressed)
    {
        var ring = _ring!;
        var counters = _writer!.Counters;
        long runId = ++_runId;
        _nextId = (_nextId + (ulong)_slots - 1) / (ulong)_slots * (ulong)_slots;
        long done0 = Done(counters);
        long bytes0 = Volatile.Read(ref counters[WriterCounter.BytesWritten]);
        WriterAck? end = null;
        string? invalid = null;
        var cpu = Cpu.Now();
        var sw = Stopwatch.StartNew();
        var silent = Stopwatch.StartNew();
        for (long i = 0; i < _images && end == null && invalid == null; i++)
        {
            // At most half the ring ahead of the writer, so no slot is re-stamped before it is written.
            long done = Done(counters) - done0;
            while (i - done >= _slots / 2 && end == null)
            {
                end = PollEnd(runId);
                long now = Done(counters) - done0;
                if (now != done)
                    silent.Restart();
                else if (silent.Elapsed > Silence)
                {
                    invalid = $"the writer made no progress for {Silence.TotalSeconds:F0} s at image {done} of {_images}";
                    break;
                }
                done = now;
            }
            if (end != null || invalid != null)
                break;
            ulong id = _nextId++;
            int slot = ring.SlotOf(id);
            ring.BeginWrite(slot);
            ref SlotHeader h = ref ring.Slot(slot);
            h.ImageId = id;
            h.Status = SlotStatus.Good;
            ring.EndWrite(slot);
            if (!_store!.Send(Message(path, runId, i, id, compressed)))
                invalid = $"StoreStream message {i} dropped (send queue full)";
        }
        // The close message also ends a run the writer ended early, as the agent does.
        _store!.Send(Message(path, runId, _images, null, compressed));
        silent.Restart();
        while (end == null && invalid == null)
        {
            end = PollEnd(runId);
            if (end == null && silent.Elapsed > Silence)
                invalid = $"no closed ack within {Silence.TotalSeconds:F0} s";
        }
        double write = sw.Elapsed.TotalSeconds;
        var (all, kernel) = Cpu.Since(cpu);
        invalid ??= end!.Event != WriterAck.Closed ? $"writer error: {end.Message}"
            : end.NImagesWritten != _images || end.Missing is { Count: > 0 } || end.Interrupted != null
                ? $"closed with {end.NImagesWritten} of {_images} images written, {end.Missing?.Count ?? 0} missing" +
                  (end.Interrupted != null ? $", interrupted: {end.Interrupted}" : "")
                : null;
        long fileBytes = 0;
        double sync = double.NaN;
        if (File.Exists(path))
        {
            try
            {
                using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
                {
                    fs.Flush(flushToDisk: true);
                    fileBytes = fs.Length;
                }
                sync = sw.Elapsed.TotalSeconds;
            }
            finally
            {
                File.Delete(path);
            }
        }
        return new Result(write, sync, all, kernel, fileBytes, Volatile.Read(ref counters[WriterCounter.BytesWritten]) - bytes0, invalid);
    }

    /// <summary>Images the writer is done with (written or given up as missing) since it started.</summary>
    private static long Done(CounterSet<WriterCounter> c) =>
        Volatile.Read(ref c[WriterCounter.ImagesWritten]) + Volatile.Read(ref c[WriterCounter.ImagesMissing]);

    /// <summary>The run's closed or error ack, if one comes within the PULL's 1 ms receive timeout.</summary>
    private WriterAck? PollEnd(long runId)
    {
        int n = _acks!.Receive(_buffer);
        if (n <= 0 || n > _buffer.Length || WriterAck.Parse(_buffer.AsSpan(0, n)) is not { } ack || ack.RunId != runId)
            return null;
        return ack.Event is WriterAck.Closed or WriterAck.Error ? ack : null;
    }

    private byte[] Message(string path, long runId, long iImage, ulong? imageId, bool compressed) => new StoreStreamMessage
    {
        OutputFile = path,
        RunId = runId,
        NImages = _images,
        ImageId = imageId,
        IImage = iImage,
        Compression = compressed ? "bitshuffle-lz4" : "none",
        Attributes = iImage == 0 ? _attributes : null,
    }.ToJson();

    private string Line(Result r) =>
        r.Invalid != null ? $"INVALID ({r.Invalid})"
            : $"{Rate(r.Write):F2} / {Rate(r.Sync):F2} GB/s, {PerImage(r.Cpu)} µs CPU/image ({PerImage(r.KernelCpu)} in the kernel)";

    private double Rate(double seconds) => _images * _imageBytes / seconds / 1e9;

    private string PerImage(double seconds) => $"{seconds / _images * 1e6:F0}";

    /// <summary>The process's CPU time (all threads: the service run's includes the feeder and libzmq's I/O thread).</summary>
    private static class Cpu
    {
        public static (TimeSpan All, TimeSpan Kernel) Now()
        {
            using var p = Process.GetCurrentProcess();
            return (p.TotalProcessorTime, p.PrivilegedProcessorTime);
        }

        public static (double All, double Kernel) Since((TimeSpan All, TimeSpan Kernel) start)
        {
            var now = Now();
            return ((now.All - start.All).TotalSeconds, (now.Kernel - start.Kernel).TotalSeconds);
        }
    }

    private double Ratio(Result r) => (double)_images * _imageBytes / r.StoredBytes;

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _writerTask?.Wait();
        }
        catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException))
        {
        }
        _writer?.Dispose();
        _store?.Dispose();
        _acks?.Dispose();
        _ring?.Dispose();
        if (_ring != null)
            ShmRing.Unlink(_config.ImageBufferName);
        foreach (var f in Directory.GetFiles("/tmp", $"std-daq-{_config.DetectorName}-*"))
            File.Delete(f);
        _stop.Dispose();
    }
}
