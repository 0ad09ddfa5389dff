namespace StdDaq.Shared.Interop;

/// <summary>
/// One incoming libzmq message (a zmq_msg_t in native memory, made once and reused): a frame is
/// received into libzmq's own buffer (<see cref="TryReceive"/>) and read in place through
/// <see cref="Data"/>, so a large frame (an image) can be copied where it belongs and checked in
/// one pass, instead of being copied out by zmq_recv first. Belongs to one thread, like its socket.
/// </summary>
public sealed unsafe class ZmqInMessage : ZmqMessage
{
    /// <summary>
    /// The next frame waiting on <paramref name="socket"/> (without waiting): its size, or -1 when
    /// none is there (the message is then empty). What it held before is released. Other failures
    /// throw <see cref="IOException"/>.
    /// </summary>
    public int TryReceive(SafeZmqSocketHandle socket)
    {
        ObjectDisposedException.ThrowIf(Msg == null, this);
        Close();
        if (Zmq.zmq_msg_init(Msg) != 0)
            throw Zmq.Error("zmq_msg_init");
        Holds = true;
        while (true)
        {
            int n = Zmq.zmq_msg_recv(Msg, socket, Zmq.DONTWAIT);
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

    /// <summary>The frame's bytes, valid until the next receive or <see cref="ZmqMessage.Close"/>; empty when the message holds none.</summary>
    public ReadOnlySpan<byte> Data => Holds ? new ReadOnlySpan<byte>(Zmq.zmq_msg_data(Msg), checked((int)Zmq.zmq_msg_size(Msg))) : default;
}
