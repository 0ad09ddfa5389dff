using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Packets;

namespace StdDaq.Cli.Sim;

/// <summary>
/// Sends a detector's UDP packets (JUNGFRAU, EIGER, GigaFRoST) for the chosen modules at a paced
/// frame rate, with the deterministic <see cref="PixelPattern"/> and seeded fault injection.
/// One thread sends all modules, interleaving bursts, with sendmmsg and zero-copy payloads.
/// </summary>
public sealed class DetectorSimulator : IDisposable
{
    private readonly DetectorConfig _config;
    private readonly SimOptions _options;
    private readonly ModuleGeometry _g;
    private readonly int[] _modules;
    private readonly UdpSocket _socket;
    private readonly SendBatch _batch;
    private readonly Random _random;
    private readonly byte[] _header = new byte[SendBatch.MaxHeaderBytes];
    // Source of payload bytes: either one periodic ramp shared by all frames (8/16 bit: the
    // frame of base b starts at b mod period), or one buffer per module refilled per frame.
    private readonly NativeBuffer? _ramp;
    private readonly long _rampPeriodPixels;
    private readonly NativeBuffer[] _frames;

    public DetectorSimulator(DetectorConfig config, SimOptions options)
    {
        _config = config;
        _options = options;
        _g = config.Module;
        _modules = (options.Modules ?? Enumerable.Range(0, config.NModules).ToList()).ToArray();
        foreach (int m in _modules)
            if (m < 0 || m >= config.NModules)
                throw new ArgumentException($"module {m} is not in 0..{config.NModules - 1}");
        _socket = UdpSocket.Create();
        _socket.RequestSendBuffer(64L << 20);
        _batch = new SendBatch(64, IPAddress.Parse(options.Host));
        _random = new Random(options.Seed);
        int bytesPerPixel = _g.BitDepth / 8;
        if (_g.Kind != DetectorKind.Gigafrost && _g.BitDepth <= 16)
        {
            _rampPeriodPixels = 1L << PixelPattern.ValueBits(_g);
            long pixels = _rampPeriodPixels + PixelPattern.PixelsPerFrame(_g);
            _ramp = new NativeBuffer(checked((int)(pixels * bytesPerPixel)));
            var span = _ramp.Span;
            for (long i = 0; i < pixels; i++)
            {
                ulong v = (ulong)(i % _rampPeriodPixels);
                if (bytesPerPixel == 1)
                    span[(int)i] = (byte)v;
                else
                    MemoryMarshal.Write(span[(int)(2 * i)..], (ushort)v);
            }
            _frames = [];
        }
        else
        {
            _frames = _modules.Select(_ => new NativeBuffer(checked((int)_g.FrameBytes))).ToArray();
        }
    }

    /// <summary>Sends until the frame count or duration is reached, or cancellation.</summary>
    public SimReport Run(CancellationToken ct)
    {
        var report = new SimReport();
        var sw = Stopwatch.StartNew();
        double period = _options.Rate > 0 ? 1.0 / _options.Rate : 0;
        int n = _g.PacketsPerFrame;
        int burst = Math.Max(1, _options.Burst);
        int bursts = (n + burst - 1) / burst;
        var plans = _modules.Select(_ => new FramePlan(n)).ToArray();
        for (long f = 0; !ct.IsCancellationRequested; f++)
        {
            if (_options.Seconds is { } secs ? sw.Elapsed.TotalSeconds >= secs : f >= _options.Frames)
                break;
            ulong id = _options.StartId + (ulong)f;
            for (int mi = 0; mi < _modules.Length; mi++)
            {
                PlanFaults(plans[mi], _modules[mi], id, report);
                if (_ramp == null)
                    PixelPattern.Fill(_g, id, _modules[mi], _frames[mi].Span);
            }
            for (int b = 0; b < bursts; b++)
            {
                WaitUntil(sw, (f + (double)b / bursts) * period);
                for (int mi = 0; mi < _modules.Length; mi++)
                {
                    var plan = plans[mi];
                    int end = Math.Min(plan.Order.Count, (b + 1) * plan.Order.Count / bursts);
                    for (int j = b * plan.Order.Count / bursts; j < end; j++)
                        Queue(report, _modules[mi], mi, id, plan.Order[j]);
                }
                report.Refused += _batch.Flush(_socket);
            }
            report.Frames += _modules.Length;
        }
        report.Refused += _batch.Flush(_socket);
        report.ElapsedSeconds = sw.Elapsed.TotalSeconds;
        return report;
    }

    /// <summary>The packets of one module frame in send order: (packet number, truncated).</summary>
    private sealed class FramePlan(int n)
    {
        public List<(int Packet, bool Truncated)> Order { get; } = new(2 * n);
        public int N { get; } = n;
    }

    private void PlanFaults(FramePlan plan, int module, ulong id, SimReport report)
    {
        plan.Order.Clear();
        var o = _options;
        bool anyFault = o.Loss > 0 || o.Duplicate > 0 || o.Reorder > 0 || o.Truncate > 0;
        if (!anyFault)
        {
            for (int k = 0; k < plan.N; k++)
                plan.Order.Add((k, false));
            return;
        }
        // Decide each packet's fate, then swap adjacent pairs of plainly-sent packets, then
        // insert duplicates right after their original. Faults never interact, so a receiver's
        // counts must equal this report's exactly.
        var fate = new List<(int Packet, bool Truncated, bool Dup)>(plan.N);
        for (int k = 0; k < plan.N; k++)
        {
            double r = _random.NextDouble();
            if (r < o.Loss)
                report.Lost.Add(new(module, id, k));
            else if (r < o.Loss + o.Truncate)
            {
                report.Truncated.Add(new(module, id, k));
                fate.Add((k, true, false));
            }
            else
                fate.Add((k, false, _random.NextDouble() < o.Duplicate));
        }
        for (int j = 0; j + 1 < fate.Count; j++)
        {
            var (a, b) = (fate[j], fate[j + 1]);
            if (!a.Truncated && !b.Truncated && _random.NextDouble() < o.Reorder)
            {
                fate[j] = b;
                fate[j + 1] = a;
                report.Reordered.Add(new(module, id, a.Packet));
                j++;
            }
        }
        foreach (var x in fate)
        {
            plan.Order.Add((x.Packet, x.Truncated));
            if (x.Dup)
            {
                plan.Order.Add((x.Packet, false));
                report.Duplicated.Add(new(module, id, x.Packet));
            }
        }
    }

    private void Queue(SimReport report, int module, int moduleIndex, ulong id, (int Packet, bool Truncated) p)
    {
        int k = p.Packet;
        int headerBytes = WriteHeader(module, id, k);
        int payload = _g.PayloadBytesOf(k);
        long offset = (long)k * _g.PayloadBytes;
        NativeBuffer source;
        if (_ramp != null)
        {
            long start = (long)((ulong)PixelPattern.Base(id, module) % (ulong)_rampPeriodPixels);
            offset += start * (_g.BitDepth / 8);
            source = _ramp;
        }
        else
        {
            source = _frames[moduleIndex];
        }
        int length = p.Truncated ? payload / 2 : payload;
        if (_batch.Full)
            report.Refused += _batch.Flush(_socket);
        _batch.Add(_config.UdpPort(module), _header.AsSpan(0, headerBytes), source, (int)offset, length);
        report.Datagrams++;
        report.Bytes += headerBytes + length;
        if (!p.Truncated)
            report.Packets++;
    }

    private int WriteHeader(int module, ulong id, int k)
    {
        if (_g.Format == PacketFormat.Sls)
        {
            bool jf = _g.SlsDetectorType == ModuleGeometry.SlsTypeJungfrau;
            var h = new SlsHeader(frameNumber: id, packetNumber: (uint)k,
                detSpec1: jf ? BitConverter.DoubleToUInt64Bits(id) : 0, timestamp: id * 10_000,
                moduleId: (ushort)module, row: (ushort)(jf ? module : module / 2), column: (ushort)(jf ? 0 : module % 2),
                detSpec3: 0, detectorType: _g.SlsDetectorType);
            MemoryMarshal.Write(_header, in h);
            return SlsHeader.Size;
        }
        var gh = new GigafrostHeader(quadrant: module / 2, link: module % 2, quadrantRows: _g.FrameHeight,
            rowLengthInBlocks: _g.FrameWidth / 12, scanId: 1, frameIndex: (uint)id,
            packetStartingRow: (ushort)(k * _g.RowsPerPacket), frameTimestamp: id * 1000, exposure: 1000);
        MemoryMarshal.Write(_header, in gh);
        return GigafrostHeader.Size;
    }

    private static void WaitUntil(Stopwatch sw, double seconds)
    {
        while (true)
        {
            double left = seconds - sw.Elapsed.TotalSeconds;
            if (left <= 0)
                return;
            if (left > 0.002)
                Thread.Sleep(TimeSpan.FromSeconds(left - 0.001));
            else
                Thread.SpinWait(50);
        }
    }

    public void Dispose()
    {
        _batch.Dispose();
        _socket.Dispose();
        _ramp?.Dispose();
        foreach (var f in _frames)
            f.Dispose();
    }
}
