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

    public const int SUBSCRIBE = 6, RCVMORE = 13, FD = 14, LINGER = 17, SNDHWM = 23, RCVHWM = 24, RCVTIMEO = 27, SNDTIMEO = 28;
    public const int DONTWAIT = 1, SNDMORE = 2;
    /// <summary>zmq_socket_monitor events.</summary>
    public const int EVENT_CONNECTED = 0x0001, EVENT_DISCONNECTED = 0x0200, EVENT_HANDSHAKE_SUCCEEDED = 0x1000;
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
    public static partial nint zmq_socket(nint context, int type);

    [LibraryImport(Lib, EntryPoint = "zmq_close")]
    public static partial int zmq_close(nint socket);

    [LibraryImport(Lib, EntryPoint = "zmq_bind", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int zmq_bind(nint socket, string endpoint);

    [LibraryImport(Lib, EntryPoint = "zmq_connect", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int zmq_connect(nint socket, string endpoint);

    [LibraryImport(Lib, EntryPoint = "zmq_setsockopt")]
    public static partial int zmq_setsockopt(nint socket, int option, void* optval, nuint optvallen);

    [LibraryImport(Lib, EntryPoint = "zmq_getsockopt")]
    public static partial int zmq_getsockopt(nint socket, int option, void* optval, nuint* optvallen);

    [LibraryImport(Lib, EntryPoint = "zmq_socket_monitor", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int zmq_socket_monitor(nint socket, string? endpoint, int events);

    [LibraryImport(Lib, EntryPoint = "zmq_send")]
    public static partial int zmq_send(nint socket, void* buf, nuint len, int flags);

    [LibraryImport(Lib, EntryPoint = "zmq_recv")]
    public static partial int zmq_recv(nint socket, void* buf, nuint len, int flags);

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

    /// <summary>zmq_strerror's text for <paramref name="errnum"/> (libzmq's own codes and errno).</summary>
    public static string zmq_strerror(int errnum) => Marshal.PtrToStringUTF8(zmq_strerror_native(errnum)) ?? $"errno {errnum}";

    /// <summary>An <see cref="IOException"/> naming <paramref name="call"/> and the thread's zmq_errno text; build it right after the failing call.</summary>
    public static IOException Error(string call) =>
        new($"{call} failed: {zmq_strerror(zmq_errno())}");
}
