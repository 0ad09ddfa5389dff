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

    /// <summary>Stops the monitoring and closes the event socket; call it before disposing the watched socket.</summary>
    public void Dispose()
    {
        Zmq.zmq_socket_monitor(_watched.Handle, null, 0);
        _events.Dispose();
    }
}
