using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// One outgoing libzmq message (a zmq_msg_t in native memory, made once and reused): its content
/// is allocated by libzmq (<see cref="Init"/>), filled in place through <see cref="Data"/> and handed
/// to libzmq by <see cref="Send"/>, so a large frame (an image) is copied once, straight into the
/// buffer that goes to the socket, instead of into a managed buffer and then again by zmq_send.
/// Belongs to one thread, like its socket.
/// </summary>
public sealed unsafe class ZmqOutMessage : IDisposable
{
    private void* _msg;
    private bool _holds;
    private int _size;

    /// <summary>An empty message; <see cref="Init"/> gives it content.</summary>
    public ZmqOutMessage() => _msg = NativeMemory.AlignedAlloc(Zmq.MSG_T_SIZE, 8);

    /// <summary>Gives the message <paramref name="size"/> bytes of content (what it held before is released).</summary>
    public void Init(int size)
    {
        ObjectDisposedException.ThrowIf(_msg == null, this);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        Close();
        if (Zmq.zmq_msg_init_size(_msg, (nuint)size) != 0)
            throw Zmq.Error($"zmq_msg_init_size({size})");
        _holds = true;
        _size = size;
    }

    /// <summary>The content to fill, <see cref="Init"/>'s size long; empty when the message holds nothing.</summary>
    public Span<byte> Data => _holds ? new Span<byte>(Zmq.zmq_msg_data(_msg), _size) : default;

    /// <summary>
    /// zmq_msg_send with <paramref name="flags"/> (Zmq.DONTWAIT, Zmq.SNDMORE): true once libzmq has
    /// taken the content (the message is empty then); false on EAGAIN (the high-water mark, or the
    /// send timeout passed), and the message keeps its content for another try. Other failures
    /// throw <see cref="IOException"/>.
    /// </summary>
    public bool Send(SafeZmqSocketHandle socket, int flags)
    {
        if (!_holds)
            throw new InvalidOperationException("zmq message without content");
        while (true)
        {
            if (Zmq.zmq_msg_send(_msg, socket, flags) >= 0)
            {
                _holds = false;
                return true;
            }
            int errno = Zmq.zmq_errno();
            if (errno == Zmq.EAGAIN)
                return false;
            if (errno != Zmq.EINTR)
                throw new IOException($"zmq_msg_send failed: {Zmq.zmq_strerror(errno)}");
        }
    }

    /// <summary>Releases the content, if the message still holds some (one that was never sent).</summary>
    public void Close()
    {
        if (_holds)
            Zmq.zmq_msg_close(_msg);
        _holds = false;
    }

    /// <summary>Releases the content and the zmq_msg_t.</summary>
    public void Dispose()
    {
        if (_msg == null)
            return;
        Close();
        NativeMemory.AlignedFree(_msg);
        _msg = null;
    }
}
