using System.Runtime.InteropServices;
using StdDaq.Shared.Interop;

namespace StdDaq.Shared.Streams;

/// <summary>
/// Waits for messages on many sockets with one poll(2) over their ZMQ_FDs, so a wait costs one
/// system call whatever the number of sockets (zmq_poll asks every socket for its events, one
/// system call each: see BENCHMARKS.md). A socket's ZMQ_FD only signals news for a socket that a
/// receive found empty, so the set keeps, per socket, "may have a message": set by its signal or a
/// message received, cleared when a receive through <see cref="TryReceive"/> finds it empty.
/// The arrays are made once and pinned: waiting allocates nothing. Like its sockets, it belongs to
/// one thread.
/// </summary>
public sealed class ZmqPollSet
{
    private readonly ZmqSocket[] _sockets;
    private readonly Libc.PollFd[] _fds;
    private readonly bool[] _mayHave;
    private int _mayHaveCount;

    /// <summary>A set of <paramref name="sockets"/>, addressed by their index in that list; each may have a message at first.</summary>
    public ZmqPollSet(IReadOnlyList<ZmqSocket> sockets)
    {
        _sockets = sockets.ToArray();
        _fds = GC.AllocateArray<Libc.PollFd>(_sockets.Length, pinned: true);
        _mayHave = new bool[_sockets.Length];
        for (int i = 0; i < _sockets.Length; i++)
        {
            _fds[i] = new Libc.PollFd { fd = _sockets[i].FileDescriptor, events = Libc.POLLIN };
            // Until a receive found it empty, a socket's signal may already have been consumed.
            _mayHave[i] = true;
        }
        _mayHaveCount = _sockets.Length;
    }

    /// <summary>Sockets in the set; indexes run 0..Count-1.</summary>
    public int Count => _sockets.Length;

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for news on any socket (not at all while a socket
    /// may have a message), then returns how many sockets may have a message.
    /// </summary>
    public int Wait(int timeoutMs)
    {
        int n = Libc.poll(_fds, _mayHaveCount > 0 ? 0 : timeoutMs);
        if (n < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.Errno.EINTR)
                throw Libc.Error($"poll({_fds.Length} zmq sockets)", errno);
            return _mayHaveCount;
        }
        for (int i = 0; n > 0 && i < _fds.Length; i++)
            if (_fds[i].revents != 0)
            {
                n--;
                Mark(i, true);
            }
        return _mayHaveCount;
    }

    /// <summary>Socket <paramref name="i"/> may have a message (<see cref="TryReceive"/> tells).</summary>
    public bool MayHaveMessage(int i) => _mayHave[i];

    /// <summary>
    /// Receives one message from socket <paramref name="i"/> without waiting; -1 if it has none
    /// (then it is not looked at again before its ZMQ_FD signals).
    /// </summary>
    public int TryReceive(int i, Span<byte> buffer)
    {
        int n = _sockets[i].TryReceive(buffer);
        Mark(i, n >= 0);
        return n;
    }

    private void Mark(int i, bool mayHave)
    {
        if (_mayHave[i] == mayHave)
            return;
        _mayHave[i] = mayHave;
        _mayHaveCount += mayHave ? 1 : -1;
    }
}
