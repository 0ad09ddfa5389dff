using StdDaq.Shared.Memory;

namespace StdDaq.Shared.Interop;

/// <summary>
/// One outgoing libzmq message (a zmq_msg_t in native memory, made once and reused): its content
/// is allocated by libzmq (<see cref="Init"/>), filled in place through <see cref="Data"/> and handed
/// to libzmq by <see cref="Send"/>, so a large frame (an image) is copied once, straight into the
/// buffer that goes to the socket, instead of into a managed buffer and then again by zmq_send.
/// Belongs to one thread, like its socket.
/// </summary>
public sealed unsafe class ZmqOutMessage : ZmqMessage
{
    private int _size;

    /// <summary>Gives the message <paramref name="size"/> bytes of content (what it held before is released).</summary>
    public void Init(int size)
    {
        ObjectDisposedException.ThrowIf(Msg == null, this);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        Close();
        if (Zmq.zmq_msg_init_size(Msg, (nuint)size) != 0)
            throw Zmq.Error($"zmq_msg_init_size({size})");
        Holds = true;
        _size = size;
    }

    /// <summary>
    /// Makes the message's content <paramref name="length"/> bytes of <paramref name="ring"/>'s slot
    /// <paramref name="slot"/> from <paramref name="start"/>, lent without a copy: libzmq reads them
    /// when it writes the message to the socket, so they may change until <paramref name="loans"/>
    /// gives <paramref name="item"/> back (a reader checks the slot's sequence lock then; a checksum
    /// taken before catches bytes that changed on the way). The ring must stay mapped until then.
    /// </summary>
    public void InitLent<T>(ShmRing ring, int slot, int start, int length, ZmqLoans<T> loans, in T item) where T : struct
    {
        ObjectDisposedException.ThrowIf(Msg == null, this);
        if ((uint)start > (uint)ring.SlotBytes || (uint)length > (uint)(ring.SlotBytes - start))
            throw new ArgumentOutOfRangeException(nameof(length), $"{length} bytes from {start} of a {ring.SlotBytes}-byte slot");
        Close();
        var entry = loans.Lend(item, &ring.SlotHeaderAt(slot)->Sequence);
        if (Zmq.zmq_msg_init_data(Msg, ring.SlotData(slot) + start, (nuint)length, &LoanReturned, entry) != 0)
        {
            ZmqLoanEntry.Return(entry);
            throw Zmq.Error($"zmq_msg_init_data({length})");
        }
        Holds = true;
        _size = length;
    }

    /// <summary>libzmq's free callback of a lent message (its I/O thread, or this one at a close): the loan whose entry is <paramref name="hint"/> is back.</summary>
    [System.Runtime.InteropServices.UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static void LoanReturned(void* data, void* hint) => ZmqLoanEntry.Return((ZmqLoanEntry*)hint);

    /// <summary>The content to fill, <see cref="Init"/>'s size long; empty when the message holds nothing.</summary>
    public Span<byte> Data => Holds ? new Span<byte>(Zmq.zmq_msg_data(Msg), _size) : default;

    /// <summary>
    /// zmq_msg_send with <paramref name="flags"/> (Zmq.DONTWAIT, Zmq.SNDMORE): true once libzmq has
    /// taken the content (the message is empty then); false on EAGAIN (the high-water mark, or the
    /// send timeout passed), and the message keeps its content for another try. Other failures
    /// throw <see cref="IOException"/>.
    /// </summary>
    public bool Send(SafeZmqSocketHandle socket, int flags)
    {
        if (!Holds)
            throw new InvalidOperationException("zmq message without content");
        while (true)
        {
            if (Zmq.zmq_msg_send(Msg, socket, flags) >= 0)
            {
                Holds = false;
                return true;
            }
            int errno = Zmq.zmq_errno();
            if (errno == Zmq.EAGAIN)
                return false;
            if (errno != Zmq.EINTR)
                throw new IOException($"zmq_msg_send failed: {Zmq.zmq_strerror(errno)}");
        }
    }
}
