using System.Net;
using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// Up to <see cref="Capacity"/> datagrams sent with one sendmmsg call. Each datagram is a header
/// (copied here) followed by a payload that stays where it is (a <see cref="NativeBuffer"/>),
/// so the only payload copy is the kernel's.
/// </summary>
public sealed unsafe class SendBatch : IDisposable
{
    /// <summary>Largest header <see cref="Add"/> takes (SLS: 48, GigaFRoST: 32).</summary>
    public const int MaxHeaderBytes = 64;

    private readonly Libc.Mmsghdr* _msgs;
    private readonly Libc.Iovec* _iovs;
    private readonly byte* _headers;
    private readonly Libc.SockaddrIn* _addrs;
    private readonly uint _address;
    private bool _disposed;

    /// <summary>Datagrams one <see cref="Flush"/> sends at most.</summary>
    public int Capacity { get; }
    /// <summary>Datagrams queued since the last <see cref="Flush"/>.</summary>
    public int Count { get; private set; }

    /// <summary>A batch of <paramref name="capacity"/> datagrams, all to the IPv4 host <paramref name="destination"/> (ports per datagram).</summary>
    public SendBatch(int capacity, IPAddress destination)
    {
        Capacity = capacity;
        _address = UdpSocket.Sockaddr(destination, 0).sin_addr;
        _msgs = (Libc.Mmsghdr*)NativeMemory.AllocZeroed((nuint)(sizeof(Libc.Mmsghdr) * capacity));
        _iovs = (Libc.Iovec*)NativeMemory.AllocZeroed((nuint)(sizeof(Libc.Iovec) * 2 * capacity));
        _headers = (byte*)NativeMemory.AllocZeroed((nuint)(MaxHeaderBytes * capacity));
        _addrs = (Libc.SockaddrIn*)NativeMemory.AllocZeroed((nuint)(sizeof(Libc.SockaddrIn) * capacity));
    }

    /// <summary>No room for another <see cref="Add"/>: flush first.</summary>
    public bool Full => Count == Capacity;

    /// <summary>
    /// Queues header + payload[offset..offset+length) to <paramref name="port"/>. The header is
    /// copied; the payload is sent from <paramref name="payload"/> at <see cref="Flush"/>, so it must
    /// stay unchanged and undisposed until then.
    /// </summary>
    public void Add(int port, ReadOnlySpan<byte> header, NativeBuffer payload, int offset, int length)
    {
        if (Count == Capacity)
            throw new InvalidOperationException("send batch is full");
        if (header.Length > MaxHeaderBytes)
            throw new ArgumentException($"header of {header.Length} bytes exceeds {MaxHeaderBytes}");
        if ((uint)offset > (uint)payload.Length || (uint)length > (uint)(payload.Length - offset))
            throw new ArgumentOutOfRangeException(nameof(offset), $"{offset}+{length} outside a {payload.Length}-byte buffer");
        int i = Count++;
        byte* h = _headers + i * MaxHeaderBytes;
        header.CopyTo(new Span<byte>(h, MaxHeaderBytes));
        _addrs[i] = new Libc.SockaddrIn { sin_family = Libc.Af.INET, sin_port = Libc.Htons((ushort)port), sin_addr = _address };
        var iov = _iovs + 2 * i;
        iov[0].iov_base = h;
        iov[0].iov_len = (nuint)header.Length;
        iov[1].iov_base = payload.Pointer + offset;
        iov[1].iov_len = (nuint)length;
        ref var m = ref _msgs[i].msg_hdr;
        m.msg_name = &_addrs[i];
        m.msg_namelen = (uint)sizeof(Libc.SockaddrIn);
        m.msg_iov = iov;
        m.msg_iovlen = 2;
    }

    /// <summary>
    /// Sends every queued datagram (retrying while the socket buffer is full) and empties the
    /// batch. Returns the number of datagrams the kernel refused (e.g. ECONNREFUSED), which are
    /// skipped, not retried.
    /// </summary>
    public int Flush(UdpSocket socket)
    {
        int sent = 0, refused = 0;
        while (sent < Count)
        {
            int n = Libc.sendmmsg(socket.Fd, _msgs + sent, (uint)(Count - sent), 0);
            if (n > 0)
            {
                sent += n;
                continue;
            }
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Libc.Errno.EINTR or Libc.Errno.EAGAIN or 105 /* ENOBUFS */)
            {
                Thread.Yield();
                continue;
            }
            if (errno == Libc.Errno.ECONNREFUSED)
            {
                // Loopback reports the ICMP port-unreachable of an earlier datagram here.
                refused++;
                continue;
            }
            throw Libc.Error("sendmmsg", errno);
        }
        Count = 0;
        return refused;
    }

    /// <summary>Frees the native arrays (once); queued datagrams are not sent.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
        NativeMemory.Free(_headers);
        NativeMemory.Free(_addrs);
    }
}
