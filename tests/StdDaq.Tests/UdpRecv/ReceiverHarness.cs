using StdDaq.Shared.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.UdpRecv;
using System.Net;

namespace StdDaq.Tests.UdpRecv;

/// <summary>
/// Runs real UdpReceivers (loopback sockets, real shm, real zmq notices) for a test, and checks
/// every frame as its notice arrives, while the slot still holds it (the sequence lock says so).
/// </summary>
public sealed class ReceiverHarness : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = new();
    private readonly List<ZmqSocket> _subscribers = new();

    public DetectorConfig Config { get; } = null!;
    public List<UdpReceiver> Receivers { get; } = new();
    public List<ModuleFrameNotice> Notices { get; } = new();
    /// <summary>The notices of each receiver (by index), in arrival order.</summary>
    public List<List<ModuleFrameNotice>> NoticesOf { get; } = new();
    /// <summary>Frames whose slot was overwritten before the check could copy it.</summary>
    public int Overrun { get; private set; }

    public ReceiverHarness(DetectorConfig config, IEnumerable<int>? modules = null)
        : this((modules ?? Enumerable.Range(0, config.NModules)).Select(m => (config, m)))
    {
    }

    /// <summary>Receivers for the given (config, module) pairs; all configs share one module geometry.</summary>
    public ReceiverHarness(IEnumerable<(DetectorConfig Config, int Module)> receivers)
    {
        foreach (var (config, m) in receivers)
        {
            Config ??= config;
            var r = new UdpReceiver(config, m, NullLogger.Instance, IPAddress.Loopback);
            Receivers.Add(r);
            NoticesOf.Add(new());
            _subscribers.Add(ZmqSocket.Subscriber(config.ModuleFrameEndpoint(m), receiveTimeoutMs: 20));
        }
        if (Config == null)
            throw new ArgumentException("no receivers", nameof(receivers));
        foreach (var r in Receivers)
            _tasks.Add(r.RunAsync(_stop.Token));
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
        _stop.Cancel();
        Task.WaitAll(_tasks.ToArray(), TimeSpan.FromSeconds(10));
        foreach (var s in _subscribers)
            s.Dispose();
        foreach (var r in Receivers)
            r.Dispose();
    }
}
