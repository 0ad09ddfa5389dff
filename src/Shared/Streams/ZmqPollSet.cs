using System.Runtime.InteropServices;
using StdDaq.Shared.Interop;

namespace StdDaq.Shared.Streams;

/// <summary>
/// Waits for messages on several sockets at once (zmq_poll, ZMQ_POLLIN). The item array is made
/// once and pinned, so a poll allocates nothing. Like its sockets, it belongs to one thread.
/// </summary>
public sealed unsafe class ZmqPollSet
{
    private readonly Zmq.PollItem[] _items;

    public ZmqPollSet(IReadOnlyList<ZmqSocket> sockets)
    {
        _items = GC.AllocateArray<Zmq.PollItem>(sockets.Count, pinned: true);
        for (int i = 0; i < _items.Length; i++)
            _items[i] = new Zmq.PollItem { socket = sockets[i].Handle, events = Zmq.POLLIN };
    }

    public int Count => _items.Length;

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> (0: just look) until a socket has a message; returns
    /// how many have one (0 on timeout or an interrupted wait). Then <see cref="Readable"/> tells which.
    /// </summary>
    public int Poll(int timeoutMs)
    {
        fixed (Zmq.PollItem* items = _items)
        {
            int n = Zmq.zmq_poll(items, _items.Length, new CLong(timeoutMs));
            if (n >= 0)
                return n;
        }
        int errno = Zmq.zmq_errno();
        if (errno == Zmq.EINTR)
        {
            for (int i = 0; i < _items.Length; i++)
                _items[i].revents = 0;
            return 0;
        }
        throw new IOException($"zmq_poll({_items.Length} sockets) failed: {Zmq.zmq_strerror(errno)}");
    }

    /// <summary>Socket <paramref name="i"/> had a message at the last <see cref="Poll"/>.</summary>
    public bool Readable(int i) => (_items[i].revents & Zmq.POLLIN) != 0;
}
