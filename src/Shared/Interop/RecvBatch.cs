using StdDaq.Shared.Memory;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// Receives up to <see cref="Capacity"/> datagrams with one recvmmsg call, each scattered over
/// three iovecs: its header into a small header buffer, its payload into a target (by default the
/// message's own scratch buffer, or a place the caller aims it at, e.g. the predicted packet's place
/// in a frame slot), and whatever does not fit the target into the rest of the scratch buffer.
/// Each datagram's SO_RXQ_OVFL control message is kept too.
/// </summary>
/// <remarks>
/// There are <see cref="MessageCount"/> messages (a multiple of the capacity), each with its own
/// buffers; a receive fills the window of <see cref="Capacity"/> messages from <see cref="Start"/>.
/// Moving the window past the messages a receive filled keeps the aims of the messages still in it,
/// so a caller that predicts well only aims the messages that enter the window. Messages are
/// addressed by their index in the whole array, not in the window.
/// </remarks>
public sealed unsafe class RecvBatch : IDisposable
{
    private const int ControlBytes = 32;
    private const int IovsPerMessage = 3;
    /// <summary>Windows' worth of messages in the array: a window moved by whole batches wraps after this many.</summary>
    private const int WindowsPerArray = 4;

    private readonly int _headerStride;
    private readonly int _scratchStride;
    private readonly byte* _headers;
    private readonly byte* _scratch;
    private readonly Libc.Mmsghdr* _msgs;
    private readonly Libc.Iovec* _iovs;
    private readonly byte* _control;
    private readonly bool[] _inScratch;
    private int _lastStart;
    private int _lastCount;
    private bool _disposed;

    /// <summary>Datagrams per call.</summary>
    public int Capacity { get; }
    /// <summary>Messages in all; a receive fills messages <see cref="Start"/> to <see cref="Start"/> + <see cref="Capacity"/> - 1 at most.</summary>
    public int MessageCount { get; }
    /// <summary>The first message the next <see cref="Receive"/> fills.</summary>
    public int Start { get; private set; }
    /// <summary>Bytes of each datagram that go to its header buffer; the rest is payload.</summary>
    public int HeaderBytes { get; }
    /// <summary>Payload bytes a message can hold; a longer datagram is reported truncated.</summary>
    public int MaxPayloadBytes { get; }

    /// <param name="capacity">Datagrams per call.</param>
    /// <param name="headerBytes">Bytes of each datagram that go to its header buffer.</param>
    /// <param name="maxPayloadBytes">Payload bytes per datagram; a longer datagram is reported truncated.</param>
    public RecvBatch(int capacity, int headerBytes, int maxPayloadBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(headerBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayloadBytes, 1);
        Capacity = capacity;
        MessageCount = capacity * WindowsPerArray;
        HeaderBytes = headerBytes;
        MaxPayloadBytes = maxPayloadBytes;
        _headerStride = (headerBytes + 63) & ~63;
        _scratchStride = (maxPayloadBytes + 63) & ~63;
        int count = MessageCount;
        // Scratch pages are only touched by the datagrams that land there.
        _headers = (byte*)NativeMemory.AlignedAlloc((nuint)((long)_headerStride * count), 64);
        _scratch = (byte*)NativeMemory.AlignedAlloc((nuint)((long)_scratchStride * count), 4096);
        _msgs = (Libc.Mmsghdr*)NativeMemory.AllocZeroed((nuint)(sizeof(Libc.Mmsghdr) * count));
        _iovs = (Libc.Iovec*)NativeMemory.AllocZeroed((nuint)(sizeof(Libc.Iovec) * IovsPerMessage * count));
        _control = (byte*)NativeMemory.AllocZeroed((nuint)(ControlBytes * count));
        _inScratch = new bool[count];
        for (int i = 0; i < count; i++)
        {
            var iov = Iov(i);
            iov[0].iov_base = _headers + (long)i * _headerStride;
            iov[0].iov_len = (nuint)headerBytes;
            _msgs[i].msg_hdr.msg_iov = iov;
            _msgs[i].msg_hdr.msg_iovlen = IovsPerMessage;
            _msgs[i].msg_hdr.msg_control = _control + i * ControlBytes;
            _msgs[i].msg_hdr.msg_controllen = ControlBytes;
            AimAtScratch(i);
        }
    }

    private Libc.Iovec* Iov(int i) => _iovs + i * IovsPerMessage;

    /// <summary>Moves the window: the next <see cref="Receive"/> fills messages from <paramref name="start"/> on.</summary>
    public void MoveWindow(int start)
    {
        if ((uint)start > (uint)(MessageCount - Capacity))
            throw new ArgumentOutOfRangeException(nameof(start), $"window start {start} is not in 0..{MessageCount - Capacity}");
        Start = start;
    }

    private byte* Scratch(int i) => _scratch + (long)i * _scratchStride;

    /// <summary>Message i's payload goes to its own scratch buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AimAtScratch(int i)
    {
        _inScratch[i] = true; // first: its bounds check guards the native writes below
        var iov = Iov(i);
        iov[1].iov_base = Scratch(i);
        iov[1].iov_len = (nuint)MaxPayloadBytes;
        iov[2].iov_base = null;
        iov[2].iov_len = 0;
    }

    /// <summary>
    /// Message i's first <paramref name="length"/> payload bytes go to bytes <paramref name="offset"/>
    /// on of <paramref name="ring"/>'s slot <paramref name="slot"/> (at most <see cref="MaxPayloadBytes"/>,
    /// within the slot); any more go to its scratch buffer at that offset, so <see cref="Rescue"/> can
    /// make the whole payload contiguous there. The kernel writes there at the next
    /// <see cref="Receive"/>: the caller holds a <see cref="ShmRing.Lease"/> while it receives.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Aim(int i, ShmRing ring, int slot, long offset, int length)
    {
        if ((ulong)offset > (ulong)ring.SlotBytes || length < 0 || length > ring.SlotBytes - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes {offset}..{offset + length} of a {ring.SlotBytes}-byte slot");
        Aim(i, ring.SlotData(slot) + offset, length);
    }

    /// <summary>Message i's first <paramref name="length"/> payload bytes go to <paramref name="target"/>; see the public overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Aim(int i, byte* target, int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxPayloadBytes);
        _inScratch[i] = false; // first: its bounds check guards the native writes below
        var iov = Iov(i);
        iov[1].iov_base = target;
        iov[1].iov_len = (nuint)length;
        iov[2].iov_base = Scratch(i) + length;
        iov[2].iov_len = (nuint)(MaxPayloadBytes - length);
    }

    /// <summary>
    /// One recvmmsg(MSG_WAITFORONE) into the window: waits (up to the socket's SO_RCVTIMEO) for
    /// the first datagram, then takes what is queued, up to Capacity. Returns the count, 0 on
    /// timeout; the datagrams are in messages <see cref="Start"/> on.
    /// </summary>
    public int Receive(UdpSocket socket)
    {
        // Only the messages the last call filled had their control length changed.
        for (int i = _lastStart; i < _lastStart + _lastCount; i++)
            _msgs[i].msg_hdr.msg_controllen = ControlBytes;
        _lastCount = 0;
        int n = Libc.recvmmsg(socket.Fd, _msgs + Start, (uint)Capacity, Libc.Msg.WAITFORONE, null);
        if (n >= 0)
        {
            _lastStart = Start;
            _lastCount = n;
            return n;
        }
        int errno = Marshal.GetLastPInvokeError();
        if (errno is Libc.Errno.EAGAIN or Libc.Errno.EINTR)
            return 0;
        throw Libc.Error("recvmmsg", errno);
    }

    /// <summary>Bytes received in message i (header and payload).</summary>
    public int Length(int i) => (int)_msgs[i].msg_len;

    /// <summary>The received part of message i's header buffer.</summary>
    public ReadOnlySpan<byte> Header(int i) => new(Iov(i)[0].iov_base, Math.Min(Length(i), HeaderBytes));

    /// <summary>Payload bytes received in message i (after <see cref="HeaderBytes"/>; 0 for a shorter datagram).</summary>
    public int PayloadLength(int i) => Math.Max(0, Length(i) - HeaderBytes);

    /// <summary>Message i's payload is (only) in its scratch buffer.</summary>
    public bool InScratch(int i) => _inScratch[i];

    /// <summary>Where message i's payload was aimed (its first byte).</summary>
    internal byte* Target(int i) => (byte*)Iov(i)[1].iov_base;

    /// <summary>
    /// Message i's payload: in its scratch buffer, or, if it was aimed elsewhere and not rescued,
    /// where it landed (only valid if it fit the target, e.g. a packet of the size aimed for).
    /// </summary>
    public ReadOnlySpan<byte> Payload(int i) =>
        _inScratch[i] ? new(Scratch(i), PayloadLength(i)) : new(Target(i), PayloadLength(i));

    /// <summary>
    /// Copies the part of message i's payload that landed in its target into its scratch buffer,
    /// before the target is overwritten. Afterwards the payload is contiguous in scratch.
    /// </summary>
    public void Rescue(int i)
    {
        if (_inScratch[i])
            return;
        int inTarget = Math.Min(PayloadLength(i), (int)Iov(i)[1].iov_len);
        new ReadOnlySpan<byte>(Target(i), inTarget).CopyTo(new Span<byte>(Scratch(i), inTarget));
        _inScratch[i] = true;
    }

    /// <summary>The datagram was longer than the buffers (MSG_TRUNC).</summary>
    public bool Truncated(int i) => (_msgs[i].msg_hdr.msg_flags & Libc.Msg.TRUNC) != 0;

    /// <summary>The socket's cumulative kernel drop count (SO_RXQ_OVFL) as of datagram i, if present.</summary>
    public bool TryGetDropCounter(int i, out uint drops)
    {
        ref var h = ref _msgs[i].msg_hdr;
        drops = 0;
        if (h.msg_controllen < (nuint)(sizeof(Libc.Cmsghdr) + sizeof(uint)))
            return false;
        var c = (Libc.Cmsghdr*)h.msg_control;
        if (c->cmsg_level != Libc.Sol.SOCKET || c->cmsg_type != Libc.So.RXQ_OVFL)
            return false;
        drops = *(uint*)(c + 1);
        return true;
    }

    /// <summary>Frees the native buffers (once); spans from <see cref="Header"/> and <see cref="Payload"/> must not be used after this.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        NativeMemory.AlignedFree(_headers);
        NativeMemory.AlignedFree(_scratch);
        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
        NativeMemory.Free(_control);
    }
}
