using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;

namespace StdDaq.Tests.Support;

/// <summary>
/// Subscribers made before their publishers bind, each watched by a <see cref="ZmqMonitor"/> from
/// the start (libzmq reports only events after the monitor is made, so a connection that came up
/// first would never be seen). <see cref="WaitAll"/> returns when every one's handshake is done.
/// </summary>
/// <remarks>
/// The handshake is the slow part of a subscription: the connect and the ZMTP greeting go back and
/// forth between the two ends. What follows is one message, the subscription, queued behind the
/// handshake, which the publisher applies on its own thread before its next send (libzmq processes
/// its commands there). When it has done so only the publisher knows: an XPUB (a
/// <see cref="ModuleFrameSource"/>) reports it, a plain PUB (the receivers', the assembler's) does
/// not, so for those the handshake is the signal a test can wait for, and a probe message the only
/// proof.
/// </remarks>
public sealed class SubscriberConnections : IDisposable
{
    private readonly List<(ZmqSocket Socket, ZmqMonitor Monitor)> _watched = [];

    /// <summary>A subscriber to <paramref name="endpoint"/>, watched from now on; the caller owns the socket.</summary>
    public ZmqSocket Subscribe(string endpoint, int receiveTimeoutMs)
    {
        var s = ZmqSocket.Subscriber(endpoint, receiveTimeoutMs: receiveTimeoutMs);
        try
        {
            _watched.Add((s, new ZmqMonitor(s, Zmq.EVENT_HANDSHAKE_SUCCEEDED)));
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>Waits until every subscriber has made its handshake with its publisher, then stops watching them.</summary>
    public void WaitAll(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        foreach (var (socket, monitor) in _watched)
        {
            var left = deadline - DateTime.UtcNow;
            if (!monitor.WaitFor(Zmq.EVENT_HANDSHAKE_SUCCEEDED, left > TimeSpan.Zero ? left : TimeSpan.Zero))
                throw new TimeoutException($"no connection to {socket.Endpoint} within {timeout.TotalSeconds:F0} s");
        }
        Dispose();
    }

    /// <summary>Stops watching (the monitors go; the sockets stay with their owner).</summary>
    public void Dispose()
    {
        foreach (var (_, monitor) in _watched)
            monitor.Dispose();
        _watched.Clear();
    }
}
