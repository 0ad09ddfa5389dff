using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;

namespace StdDaq.Agent;

/// <summary>
/// The agent's StoreStream socket: an XPUB, so the agent sees the writer's subscription arrive and
/// leave. A run starts only when a writer is subscribed: a PUB drops messages sent before a
/// subscriber is there, and the writer would see its run start in the middle.
/// </summary>
public sealed class StorePublisher : IDisposable
{
    private readonly ZmqSocket _socket;
    private readonly byte[] _event = new byte[256];
    private int _subscriptions;

    private readonly TimeProvider _time;

    public StorePublisher(string endpoint, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _socket = ZmqSocket.Publisher(endpoint, sendHwm: 100_000, seeSubscriptions: true);
        _socket.SetInt(Zmq.RCVTIMEO, 0);
    }

    public string Endpoint => _socket.Endpoint;

    /// <summary>Whether a writer is subscribed now (subscription events read so far).</summary>
    public bool WriterConnected
    {
        get
        {
            Poll();
            return _subscriptions > 0;
        }
    }

    /// <summary>Waits up to <paramref name="timeout"/> for a writer's subscription.</summary>
    public bool WaitForWriter(TimeSpan timeout, CancellationToken ct)
    {
        long start = _time.GetTimestamp();
        while (!WriterConnected)
        {
            var left = timeout - _time.GetElapsedTime(start);
            if (left <= TimeSpan.Zero || ct.IsCancellationRequested)
                return false;
            // Woken by the subscription event itself; at most 100 ms, to see a cancellation.
            _socket.WaitReadable(left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100));
        }
        return true;
    }

    public bool Send(ReadOnlySpan<byte> message) => _socket.TrySend(message);

    /// <summary>Reads subscription events: first byte 1 = subscribe, 0 = unsubscribe (also when a subscriber goes away).</summary>
    private void Poll()
    {
        int n;
        while ((n = _socket.Receive(_event)) > 0)
            _subscriptions += _event[0] == 1 ? 1 : _event[0] == 0 ? -1 : 0;
        _subscriptions = Math.Max(_subscriptions, 0);
    }

    public void Dispose() => _socket.Dispose();
}
