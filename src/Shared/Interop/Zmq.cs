using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

// Declarations and constants keep libzmq's C names (without ZMQ_) and are documented by its man pages; our own wrappers (after the restore) are documented here.
#pragma warning disable CS1591

/// <summary>
/// libzmq (Debian's libzmq5) through [LibraryImport]. We bind libzmq rather than use NetMQ because
/// NetMQ's ipc:// is TCP on a hashed loopback port, so std-daq's C++ services and pyzmq could not
/// connect to our ipc:///tmp/... streams; libzmq's ipc:// is a real Unix socket at that path.
/// </summary>
public static unsafe partial class Zmq
{
    private const string Lib = "libzmq.so.5";

    /// <summary>zmq_ctx_set options.</summary>
    public const int MAX_SOCKETS = 2;

    public const int PAIR = 0, PUB = 1, SUB = 2, PULL = 7, PUSH = 8, XPUB = 9;

    public const int SNDBUF = 11, RCVBUF = 12, SUBSCRIBE = 6, RCVMORE = 13, FD = 14, LINGER = 17, SNDHWM = 23, RCVHWM = 24, RCVTIMEO = 27, SNDTIMEO = 28, XPUB_VERBOSE = 40;
    public const int DONTWAIT = 1, SNDMORE = 2;
    /// <summary>zmq_socket_monitor events.</summary>
    public const int EVENT_CONNECTED = 0x0001, EVENT_ACCEPTED = 0x0020, EVENT_DISCONNECTED = 0x0200, EVENT_HANDSHAKE_SUCCEEDED = 0x1000;
    public const short POLLIN = 1;

    public const int EAGAIN = 11, EINTR = 4;
    private const int HAUSNUMERO = 156384712;
    public const int ETERM = HAUSNUMERO + 53;

    [LibraryImport(Lib, EntryPoint = "zmq_ctx_new")]
    public static partial nint zmq_ctx_new();

    [LibraryImport(Lib, EntryPoint = "zmq_ctx_set")]
    public static partial int zmq_ctx_set(nint context, int option, int optval);

    [LibraryImport(Lib, EntryPoint = "zmq_ctx_term")]
    public static partial int zmq_ctx_term(nint context);

    [LibraryImport(Lib, EntryPoint = "zmq_socket")]
    public static partial SafeZmqSocketHandle zmq_socket(nint context, int type);

    [LibraryImport(Lib, EntryPoint = "zmq_close")]
    internal static partial int zmq_close(nint socket);

    [LibraryImport(Lib, EntryPoint = "zmq_bind", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int zmq_bind(SafeZmqSocketHandle socket, string endpoint);

    [LibraryImport(Lib, EntryPoint = "zmq_connect", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int zmq_connect(SafeZmqSocketHandle socket, string endpoint);

    [LibraryImport(Lib, EntryPoint = "zmq_setsockopt")]
    private static partial int zmq_setsockopt(SafeZmqSocketHandle socket, int option, void* optval, nuint optvallen);

    [LibraryImport(Lib, EntryPoint = "zmq_getsockopt")]
    private static partial int zmq_getsockopt(SafeZmqSocketHandle socket, int option, void* optval, nuint* optvallen);

    [LibraryImport(Lib, EntryPoint = "zmq_socket_monitor", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int zmq_socket_monitor(SafeZmqSocketHandle socket, string? endpoint, int events);

    [LibraryImport(Lib, EntryPoint = "zmq_send")]
    private static partial int zmq_send(SafeZmqSocketHandle socket, void* buf, nuint len, int flags);

    [LibraryImport(Lib, EntryPoint = "zmq_recv")]
    private static partial int zmq_recv(SafeZmqSocketHandle socket, void* buf, nuint len, int flags);

    /// <summary>Bytes of a zmq_msg_t (libzmq 4: 64, 8-byte aligned).</summary>
    public const int MSG_T_SIZE = 64;

    [LibraryImport(Lib, EntryPoint = "zmq_msg_init_size")]
    public static partial int zmq_msg_init_size(void* msg, nuint size);

    /// <summary>A message whose content is <paramref name="data"/> (not copied); libzmq calls <paramref name="ffn"/>(data, hint) once it is done with it.</summary>
    [LibraryImport(Lib, EntryPoint = "zmq_msg_init_data")]
    public static partial int zmq_msg_init_data(void* msg, void* data, nuint size, delegate* unmanaged[Cdecl]<void*, void*, void> ffn, void* hint);

    [LibraryImport(Lib, EntryPoint = "zmq_msg_init")]
    public static partial int zmq_msg_init(void* msg);

    [LibraryImport(Lib, EntryPoint = "zmq_msg_recv")]
    public static partial int zmq_msg_recv(void* msg, SafeZmqSocketHandle socket, int flags);

    [LibraryImport(Lib, EntryPoint = "zmq_msg_size")]
    public static partial nuint zmq_msg_size(void* msg);

    [LibraryImport(Lib, EntryPoint = "zmq_msg_data")]
    public static partial void* zmq_msg_data(void* msg);

    [LibraryImport(Lib, EntryPoint = "zmq_msg_send")]
    public static partial int zmq_msg_send(void* msg, SafeZmqSocketHandle socket, int flags);

    [LibraryImport(Lib, EntryPoint = "zmq_msg_close")]
    public static partial int zmq_msg_close(void* msg);

    /// <summary>zmq_pollitem_t (Linux: the fd is an int); 16 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollItem
    {
        public nint socket;
        public int fd;
        public short events;
        public short revents;
    }

    /// <summary>Waits up to <paramref name="timeout"/> ms (-1: forever) for an event on any item; returns how many have one.</summary>
    [LibraryImport(Lib, EntryPoint = "zmq_poll")]
    public static partial int zmq_poll(PollItem* items, int nitems, CLong timeout);

    [LibraryImport(Lib, EntryPoint = "zmq_errno")]
    public static partial int zmq_errno();

    [LibraryImport(Lib, EntryPoint = "zmq_strerror")]
    private static partial nint zmq_strerror_native(int errnum);

    [LibraryImport(Lib, EntryPoint = "zmq_version")]
    public static partial void zmq_version(int* major, int* minor, int* patch);

#pragma warning restore CS1591

    /// <summary>zmq_setsockopt of an int option: 0, or -1 (zmq_errno set).</summary>
    public static int zmq_setsockopt(SafeZmqSocketHandle socket, int option, int value) =>
        zmq_setsockopt(socket, option, &value, sizeof(int));

    /// <summary>zmq_setsockopt of a byte-string option (ZMQ_SUBSCRIBE ""): 0, or -1 (zmq_errno set).</summary>
    public static int zmq_setsockopt(SafeZmqSocketHandle socket, int option, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
            return zmq_setsockopt(socket, option, p, (nuint)value.Length);
    }

    /// <summary>zmq_getsockopt of an int option: 0, or -1 (zmq_errno set).</summary>
    public static int zmq_getsockopt(SafeZmqSocketHandle socket, int option, out int value)
    {
        int v;
        nuint size = sizeof(int);
        int rc = zmq_getsockopt(socket, option, &v, &size);
        value = v;
        return rc;
    }

    /// <summary>zmq_send of <paramref name="message"/>: its length, or -1 (zmq_errno set).</summary>
    public static int zmq_send(SafeZmqSocketHandle socket, ReadOnlySpan<byte> message, int flags)
    {
        fixed (byte* p = message)
            return zmq_send(socket, p, (nuint)message.Length, flags);
    }

    /// <summary>zmq_recv into <paramref name="buffer"/>: the message's full length (truncated if longer), or -1 (zmq_errno set).</summary>
    public static int zmq_recv(SafeZmqSocketHandle socket, Span<byte> buffer, int flags)
    {
        fixed (byte* p = buffer)
            return zmq_recv(socket, p, (nuint)buffer.Length, flags);
    }

    /// <summary>
    /// zmq_poll on one socket for <paramref name="events"/>, at most <paramref name="timeoutMs"/>:
    /// the events it has (0 at the timeout), or -1 (zmq_errno set). The handle is held meanwhile.
    /// </summary>
    public static int zmq_poll(SafeZmqSocketHandle socket, short events, long timeoutMs)
    {
        bool added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            var item = new PollItem { socket = socket.DangerousGetHandle(), events = events };
            int n = zmq_poll(&item, 1, new CLong((nint)timeoutMs));
            return n < 0 ? -1 : item.revents;
        }
        finally
        {
            if (added)
                socket.DangerousRelease();
        }
    }

    /// <summary>zmq_strerror's text for <paramref name="errnum"/> (libzmq's own codes and errno).</summary>
    public static string zmq_strerror(int errnum) => Marshal.PtrToStringUTF8(zmq_strerror_native(errnum)) ?? $"errno {errnum}";

    /// <summary>An <see cref="IOException"/> naming <paramref name="call"/> and the thread's zmq_errno text; build it right after the failing call.</summary>
    public static IOException Error(string call) =>
        new($"{call} failed: {zmq_strerror(zmq_errno())}");
}
