using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Pipeline;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Metrics;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;
using StdDaq.UdpRecv;

namespace StdDaq.Tests.UdpRecv;

/// <summary>
/// Runs real UdpReceivers (loopback sockets, real shm, real zmq notices) for a test, composed by
/// <see cref="DaqPipeline"/> as `std-daq up` composes them, and checks every frame as its notice
/// arrives, while the slot still holds it (the sequence lock says so).
/// </summary>
public sealed class ReceiverHarness : IDisposable
{
    /// <summary>The pipelines this harness runs: one per config (none when it watches another's receivers).</summary>
    private readonly List<DaqPipeline> _pipelines = [];
    private readonly List<ZmqSocket> _subscribers = [];

    public DetectorConfig Config { get; }
    public IReadOnlyList<UdpReceiver> Receivers { get; }
    public List<ModuleFrameNotice> Notices { get; } = new();
    /// <summary>The notices of each receiver (by index), in arrival order.</summary>
    public List<List<ModuleFrameNotice>> NoticesOf { get; } = new();
    /// <summary>Frames whose slot was overwritten before the check could copy it.</summary>
    public int Overrun { get; private set; }

    public ReceiverHarness(DetectorConfig config, IEnumerable<int>? modules = null)
        : this((modules ?? Enumerable.Range(0, config.NModules)).Select(m => (config, m)))
    {
    }

    /// <summary>
    /// Receivers for the given (config, module) pairs, one pipeline per config (receivers only);
    /// all configs share one module geometry.
    /// </summary>
    public ReceiverHarness(IEnumerable<(DetectorConfig Config, int Module)> receivers)
        : this(receivers.ToList(), null)
    {
    }

    /// <summary>
    /// Watches the receivers of the given (config, module) pairs. <paramref name="start"/> builds
    /// the one pipeline that runs them, which its caller owns; null: this harness runs them, one
    /// pipeline per config.
    /// </summary>
    internal ReceiverHarness(IReadOnlyList<(DetectorConfig Config, int Module)> receivers, Func<DaqPipeline>? start)
    {
        if (receivers.Count == 0)
            throw new ArgumentException("no receivers", nameof(receivers));
        Config = receivers[0].Config;
        var connections = new SubscriberConnections();
        try
        {
            // Subscribed before the receivers bind, so the handshakes can be waited for.
            foreach (var (config, m) in receivers)
            {
                _subscribers.Add(connections.Subscribe(config.ModuleFrameEndpoint(m), receiveTimeoutMs: 20));
                NoticesOf.Add(new());
            }
            IEnumerable<DaqPipeline> running;
            if (start != null)
                running = [start()];
            else
            {
                foreach (var group in receivers.GroupBy(r => r.Config))
                    _pipelines.Add(new DaqPipeline(group.Key, new PipelineOptions
                    {
                        ReceiverModules = group.Select(r => r.Module).ToList(),
                        Bind = IPAddress.Loopback,
                        Assembler = false,
                        Writer = false,
                    }, NullLoggerFactory.Instance));
                running = _pipelines;
            }
            var byModule = running.SelectMany(p => p.Receivers.Select(r => (p.Config, r))).ToList();
            Receivers = receivers.Select(x => byModule.Single(b => b.Config == x.Config && b.r.ModuleId == x.Module).r).ToList();
            connections.WaitAll(TimeSpan.FromSeconds(20));
        }
        catch
        {
            connections.Dispose();
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Collects notices until <paramref name="expectedFrames"/> arrived or the time is up, and hands
    /// each frame (a copy validated by the sequence lock) to <paramref name="check"/>.
    /// </summary>
    public void Collect(int expectedFrames, TimeSpan timeout, Action<ModuleFrameNotice, byte[]>? check = null) =>
        Collect(expectedFrames, timeout, check == null ? null : (_, n, frame, _) => check(n, frame));

    /// <summary>
    /// Like <see cref="Collect(int, TimeSpan, Action{ModuleFrameNotice, byte[]})"/>, handing over also
    /// the index of the receiver and the slot's received-packet bitmap (copied with the frame).
    /// Stops early when no notice came for <paramref name="quiet"/>, if given.
    /// </summary>
    public void Collect(int expectedFrames, TimeSpan timeout, Action<int, ModuleFrameNotice, byte[], byte[]>? check,
        TimeSpan? quiet = null)
    {
        var buffer = new byte[ModuleFrameNotice.Size];
        var deadline = DateTime.UtcNow + timeout;
        var lastNotice = DateTime.UtcNow;
        var frame = new byte[Config.Module.FrameBytes];
        var bitmap = new byte[SlotHeader.BitmapBytes];
        while (Notices.Count < expectedFrames && DateTime.UtcNow < deadline && (quiet == null || DateTime.UtcNow - lastNotice < quiet))
        {
            for (int i = 0; i < _subscribers.Count; i++)
            {
                if (_subscribers[i].Receive(buffer) != ModuleFrameNotice.Size)
                    continue;
                lastNotice = DateTime.UtcNow;
                var n = ModuleFrameNotice.Read(buffer);
                Notices.Add(n);
                NoticesOf[i].Add(n);
                if (check == null)
                    continue;
                var ring = Receivers[i].Ring;
                int slot = ring.SlotOf(n.ImageId);
                ring.SlotSpan(slot)[..frame.Length].CopyTo(frame);
                ((ReadOnlySpan<byte>)ring.Slot(slot).ReceivedBitmap).CopyTo(bitmap);
                if (!ring.Validate(slot, n.SlotSequence))
                {
                    Overrun++;
                    continue;
                }
                check(i, n, frame, bitmap);
            }
        }
    }

    public CounterSnapshot<ReceiverCounter> Totals()
    {
        var t = default(CounterSnapshot<ReceiverCounter>);
        foreach (var r in Receivers)
            t += r.Counters.Read();
        return t;
    }

    /// <summary>The expected frame: the pattern, with the given lost packets zeroed.</summary>
    public static byte[] Expected(ModuleGeometry g, ulong imageId, int module, IEnumerable<int> lostPackets)
    {
        var f = new byte[g.FrameBytes];
        PixelPattern.Fill(g, imageId, module, f);
        foreach (int k in lostPackets)
            f.AsSpan(k * g.PayloadBytes, g.PayloadBytesOf(k)).Clear();
        return f;
    }

    public void Dispose()
    {
        foreach (var p in _pipelines)
            p.Dispose();
        foreach (var s in _subscribers)
            s.Dispose();
    }
}
