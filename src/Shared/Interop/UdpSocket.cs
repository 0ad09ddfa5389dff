using System.Net;
using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// An IPv4 UDP socket on raw libc calls, for recvmmsg/sendmmsg batching and SO_RXQ_OVFL:
/// bound for receiving (<see cref="Bind"/>) or unbound for sending (<see cref="Create"/>).
/// Blocking, close-on-exec.
/// </summary>
public sealed unsafe class UdpSocket : IDisposable
{
    private readonly SafeFd _fd;

    /// <summary>The socket's descriptor, for the batch calls; valid until <see cref="Dispose"/>.</summary>
    public int Fd => _fd.Fd;
    /// <summary>SO_RCVBUF as the kernel reports it (the kernel doubles the request for bookkeeping).</summary>
    public long ReceiveBufferBytes { get; private set; }

    private UdpSocket(SafeFd fd) => _fd = fd;

    /// <summary>An unbound socket (the kernel picks the source port at the first send).</summary>
    public static UdpSocket Create()
    {
        int fd = Libc.socket(Libc.Af.INET, Libc.Sock.DGRAM | Libc.Sock.CLOEXEC, 0);
        if (fd < 0)
            throw Libc.Error("socket(AF_INET, SOCK_DGRAM)", Marshal.GetLastPInvokeError());
        return new UdpSocket(new SafeFd(fd));
    }

    /// <summary>A socket bound to <paramref name="address"/>:<paramref name="port"/> for receiving.</summary>
    public static UdpSocket Bind(IPAddress address, int port)
    {
        var s = Create();
        try
        {
            var sa = Sockaddr(address, port);
            if (Libc.bind(s.Fd, &sa, (uint)sizeof(Libc.SockaddrIn)) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new IOException($"bind(udp {address}:{port}) failed: {Libc.strerror(errno)} (errno {errno})");
            }
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>sockaddr_in of an IPv4 address and port, in network byte order.</summary>
    internal static Libc.SockaddrIn Sockaddr(IPAddress address, int port)
    {
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new ArgumentException($"{address} is not an IPv4 address");
        var bytes = address.GetAddressBytes();
        return new Libc.SockaddrIn
        {
            sin_family = (ushort)Libc.Af.INET,
            sin_port = Libc.Htons((ushort)port),
            sin_addr = MemoryMarshal.Read<uint>(bytes),
        };
    }

    /// <summary>
    /// Asks for a receive buffer of <paramref name="bytes"/>. As root SO_RCVBUFFORCE lifts the
    /// net.core.rmem_max cap; otherwise the kernel silently caps it. Returns what was granted
    /// (the kernel's reported value, halved to match the request's units).
    /// </summary>
    public long RequestReceiveBuffer(long bytes) => RequestBuffer(Libc.So.RCVBUF, Libc.So.RCVBUFFORCE, bytes);

    /// <summary>As <see cref="RequestReceiveBuffer"/>, for SO_SNDBUF (SO_SNDBUFFORCE as root).</summary>
    public long RequestSendBuffer(long bytes) => RequestBuffer(Libc.So.SNDBUF, Libc.So.SNDBUFFORCE, bytes);

    private long RequestBuffer(int option, int forceOption, long bytes)
    {
        int v = (int)Math.Min(bytes, int.MaxValue / 2);
        if (Libc.setsockopt(Fd, Libc.Sol.SOCKET, forceOption, &v, sizeof(int)) != 0)
            Libc.setsockopt(Fd, Libc.Sol.SOCKET, option, &v, sizeof(int));
        int got = 0;
        uint len = sizeof(int);
        Libc.getsockopt(Fd, Libc.Sol.SOCKET, option, &got, &len);
        if (option == Libc.So.RCVBUF)
            ReceiveBufferBytes = got;
        return got / 2;
    }

    /// <summary>setsockopt of an int option; <paramref name="name"/> (e.g. "SO_RXQ_OVFL") goes into the error message.</summary>
    public void SetInt(int level, int option, int value, string name)
    {
        if (Libc.setsockopt(Fd, level, option, &value, sizeof(int)) != 0)
            throw Libc.Error($"setsockopt({name}, {value})", Marshal.GetLastPInvokeError());
    }

    /// <summary>
    /// SO_RCVTIMEO: how long a receive waits for a first datagram (µs resolution). Zero means
    /// forever, as in the kernel.
    /// </summary>
    public void SetReceiveTimeout(TimeSpan timeout)
    {
        var tv = new Libc.Timeval
        {
            tv_sec = (long)timeout.TotalSeconds,
            tv_usec = (long)(timeout.TotalMicroseconds % 1_000_000),
        };
        if (Libc.setsockopt(Fd, Libc.Sol.SOCKET, Libc.So.RCVTIMEO, &tv, (uint)sizeof(Libc.Timeval)) != 0)
            throw Libc.Error("setsockopt(SO_RCVTIMEO)", Marshal.GetLastPInvokeError());
    }

    /// <summary>The kernel's net.core.rmem_max, or -1 if unreadable.</summary>
    public static long RmemMax()
    {
        try
        {
            return long.Parse(File.ReadAllText("/proc/sys/net/core/rmem_max").Trim());
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            return -1;
        }
    }

    /// <summary>Closes the socket.</summary>
    public void Dispose() => _fd.Dispose();
}
