using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
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

    public DetectorConfig Config { get; }
    public List<UdpReceiver> Receivers { get; } = new();
    public List<ModuleFrameNotice> Notices { get; } = new();
    /// <summary>Frames whose slot was overwritten before the check could copy it.</summary>
    public int Overrun { get; private set; }

    public ReceiverHarness(DetectorConfig config, IEnumerable<int>? modules = null)
    {
        Config = config;
        foreach (int m in modules ?? Enumerable.Range(0, config.NModules))
        {
            var r = new UdpReceiver(config, m, NullLogger.Instance, IPAddress.Loopback);
            Receivers.Add(r);
            _subscribers.Add(ZmqSocket.Subscriber(config.ModuleFrameEndpoint(m), receiveTimeoutMs: 20));
        }
        foreach (var r in Receivers)
            _tasks.Add(r.RunAsync(_stop.Token));
    }

    /// <summary>
    /// Collects notices until <paramref name="expectedFrames"/> arrived or the time is up, and hands
    /// each frame (a copy validated by the sequence lock) to <paramref name="check"/>.
    /// </summary>
    public void Collect(int expectedFrames, TimeSpan timeout, Action<ModuleFrameNotice, byte[]>? check = null)
    {
        var buffer = new byte[ModuleFrameNotice.Size];
        var deadline = DateTime.UtcNow + timeout;
        var frame = new byte[Config.Module.FrameBytes];
        while (Notices.Count < expectedFrames && DateTime.UtcNow < deadline)
        {
            for (int i = 0; i < _subscribers.Count; i++)
            {
                if (_subscribers[i].Receive(buffer) != ModuleFrameNotice.Size)
                    continue;
                var n = ModuleFrameNotice.Read(buffer);
                Notices.Add(n);
                if (check == null)
                    continue;
                var ring = Receivers[i].Ring;
                int slot = ring.SlotOf(n.ImageId);
                ring.SlotSpan(slot)[..frame.Length].CopyTo(frame);
                if (!ring.Validate(slot, n.SlotSequence))
                {
                    Overrun++;
                    continue;
                }
                check(n, frame);
            }
        }
    }

    public ReceiverCounters.Snapshot Totals()
    {
        var t = default(ReceiverCounters.Snapshot);
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
