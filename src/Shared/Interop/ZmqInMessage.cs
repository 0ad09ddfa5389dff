using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// One incoming libzmq message (a zmq_msg_t in native memory, made once and reused): a frame is
/// received into libzmq's own buffer (<see cref="TryReceive"/>) and read in place through
/// <see cref="Data"/>, so a large frame (an image) can be copied where it belongs and checked in
/// one pass, instead of being copied out by zmq_recv first. Belongs to one thread, like its socket.
/// </summary>
public sealed unsafe class ZmqInMessage : IDisposable
{
    private void* _msg;
    private bool _holds;

    /// <summary>An empty message; <see cref="TryReceive"/> fills it.</summary>
    public ZmqInMessage() => _msg = NativeMemory.AlignedAlloc(Zmq.MSG_T_SIZE, 8);

    /// <summary>
    /// The next frame waiting on <paramref name="socket"/> (without waiting): its size, or -1 when
    /// none is there (the message is then empty). What it held before is released. Other failures
    /// throw <see cref="IOException"/>.
    /// </summary>
    public int TryReceive(SafeZmqSocketHandle socket)
    {
        ObjectDisposedException.ThrowIf(_msg == null, this);
        Close();
        if (Zmq.zmq_msg_init(_msg) != 0)
            throw Zmq.Error("zmq_msg_init");
        _holds = true;
        while (true)
        {
            int n = Zmq.zmq_msg_recv(_msg, socket, Zmq.DONTWAIT);
            if (n >= 0)
                return n;
            int errno = Zmq.zmq_errno();
            if (errno == Zmq.EAGAIN)
            {
                Close();
                return -1;
            }
            if (errno != Zmq.EINTR)
            {
                Close();
                throw new IOException($"zmq_msg_recv failed: {Zmq.zmq_strerror(errno)}");
            }
        }
    }

    /// <summary>The frame's bytes, valid until the next receive or <see cref="Close"/>; empty when the message holds none.</summary>
    public ReadOnlySpan<byte> Data => _holds ? new ReadOnlySpan<byte>(Zmq.zmq_msg_data(_msg), checked((int)Zmq.zmq_msg_size(_msg))) : default;

    /// <summary>Releases the frame, if the message holds one.</summary>
    public void Close()
    {
        if (_holds)
            Zmq.zmq_msg_close(_msg);
        _holds = false;
    }

    /// <summary>Releases the frame and the zmq_msg_t.</summary>
    public void Dispose()
    {
        if (_msg == null)
            return;
        Close();
        NativeMemory.AlignedFree(_msg);
        _msg = null;
    }
}
