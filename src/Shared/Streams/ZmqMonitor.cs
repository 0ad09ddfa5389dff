using System.Diagnostics;
using StdDaq.Shared.Interop;

namespace StdDaq.Shared.Streams;

/// <summary>
/// The connection events of one socket (zmq_socket_monitor): libzmq reports them on an inproc PAIR
/// socket that this class reads without waiting. A SUB sees its publisher's process die as a
/// disconnect at once (the kernel closes the ipc connection), with no heartbeat to tune.
/// Belongs to the thread of the socket it watches; dispose it before that socket.
/// </summary>
public sealed class ZmqMonitor : IDisposable
{
    private static long s_next;
    private readonly ZmqSocket _watched;
    private readonly ZmqSocket _events;
    private readonly byte[] _frame = new byte[1024];

    /// <summary>Starts reporting <paramref name="watched"/>'s events in the mask <paramref name="events"/> (Zmq.EVENT_*).</summary>
    public ZmqMonitor(ZmqSocket watched, int events)
    {
        _watched = watched;
        string endpoint = $"inproc://std-daq-monitor-{Environment.ProcessId}-{Interlocked.Increment(ref s_next)}";
        if (Zmq.zmq_socket_monitor(watched.Handle, endpoint, events) != 0)
            throw Zmq.Error($"zmq_socket_monitor({watched.Endpoint})");
        _events = ZmqSocket.Pair(endpoint);
    }

    /// <summary>The next event (ZMQ_EVENT_*) if one is queued; false when none is.</summary>
    public bool TryRead(out int ev)
    {
        ev = 0;
        // Two frames per event: [u16 event, u32 value], then the peer's address.
        int n = _events.TryReceive(_frame);
        if (n < 0)
            return false;
        if (n >= 2)
            ev = _frame[0] | (_frame[1] << 8);
        while (_events.HasMore)
            _events.TryReceive(_frame);
        return true;
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for the event <paramref name="ev"/> (one of the mask
    /// the monitor was made with), reading past the others; false at the timeout. libzmq reports
    /// only what happens after the monitor was made: to see a connection come up, make the monitor
    /// before the peer can accept it (before it binds).
    /// </summary>
    /// <remarks>
    /// A SUB's EVENT_HANDSHAKE_SUCCEEDED says the connection is up, with its subscription queued
    /// behind the handshake; it does not say that the publisher has applied the subscription. That
    /// happens later, on the publisher's thread, and only the publisher sees it (an XPUB receives
    /// it), or a message that reaches the subscriber shows it.
    /// </remarks>
    public bool WaitFor(int ev, TimeSpan timeout)
    {
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            while (TryRead(out int e))
                if (e == ev)
                    return true;
            var left = timeout - Stopwatch.GetElapsedTime(start);
            if (left <= TimeSpan.Zero || !_events.WaitReadable(left))
                return false;
        }
    }

    /// <summary>Stops the monitoring and closes the event socket; call it before disposing the watched socket.</summary>
    public void Dispose()
    {
        Zmq.zmq_socket_monitor(_watched.Handle, null, 0);
        _events.Dispose();
    }
}
