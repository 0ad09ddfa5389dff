using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// Native buffers for receiving up to <see cref="Capacity"/> datagrams with one recvmmsg call,
/// plus each datagram's SO_RXQ_OVFL control message.
/// </summary>
public sealed unsafe class RecvBatch : IDisposable
{
    private const int ControlBytes = 32;

    private readonly int _stride;
    private readonly byte* _buffers;
    private readonly Libc.Mmsghdr* _msgs;
    private readonly Libc.Iovec* _iovs;
    private readonly byte* _control;
    private bool _disposed;

    public int Capacity { get; }
    public int MaxDatagramBytes { get; }

    /// <param name="capacity">Datagrams per call.</param>
    /// <param name="maxDatagramBytes">Buffer per datagram; a longer datagram is reported truncated.</param>
    public RecvBatch(int capacity, int maxDatagramBytes)
    {
        Capacity = capacity;
        MaxDatagramBytes = maxDatagramBytes;
        _stride = (maxDatagramBytes + 63) & ~63;
        _buffers = (byte*)NativeMemory.AlignedAlloc((nuint)((long)_stride * capacity), 4096);
        _msgs = (Libc.Mmsghdr*)NativeMemory.AllocZeroed((nuint)(sizeof(Libc.Mmsghdr) * capacity));
        _iovs = (Libc.Iovec*)NativeMemory.AllocZeroed((nuint)(sizeof(Libc.Iovec) * capacity));
        _control = (byte*)NativeMemory.AllocZeroed((nuint)(ControlBytes * capacity));
        for (int i = 0; i < capacity; i++)
        {
            _iovs[i].iov_base = _buffers + (long)i * _stride;
            _iovs[i].iov_len = (nuint)maxDatagramBytes;
            _msgs[i].msg_hdr.msg_iov = &_iovs[i];
            _msgs[i].msg_hdr.msg_iovlen = 1;
            _msgs[i].msg_hdr.msg_control = _control + i * ControlBytes;
        }
    }

    /// <summary>
    /// One recvmmsg(MSG_WAITFORONE): waits (up to the socket's SO_RCVTIMEO) for the first
    /// datagram, then takes what is queued, up to Capacity. Returns the count, 0 on timeout.
    /// </summary>
    public int Receive(UdpSocket socket)
    {
        for (int i = 0; i < Capacity; i++)
            _msgs[i].msg_hdr.msg_controllen = ControlBytes;
        int n = Libc.recvmmsg(socket.Fd, _msgs, (uint)Capacity, Libc.Msg.WAITFORONE, null);
        if (n >= 0)
            return n;
        int errno = Marshal.GetLastPInvokeError();
        if (errno is Libc.Errno.EAGAIN or Libc.Errno.EINTR)
            return 0;
        throw Libc.Error("recvmmsg", errno);
    }

    public ReadOnlySpan<byte> Datagram(int i) => new(_iovs[i].iov_base, (int)_msgs[i].msg_len);

    /// <summary>The datagram was longer than the buffer (MSG_TRUNC).</summary>
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

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        NativeMemory.AlignedFree(_buffers);
        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
        NativeMemory.Free(_control);
    }
}
