using StdDaq.Shared.Interop;

namespace StdDaq.Shared.Streams;

/// <summary>
/// One libzmq socket. Like every zmq socket it belongs to one thread at a time. The context is
/// process-wide and lives as long as the process.
/// </summary>
public sealed class ZmqSocket : IDisposable
{
    private static readonly Lazy<nint> SharedContext = new(() =>
    {
        nint ctx;
        try
        {
            ctx = Zmq.zmq_ctx_new();
        }
        catch (DllNotFoundException e)
        {
            throw new IOException("libzmq.so.5 is not installed (Debian: apt-get install libzmq5): " + e.Message, e);
        }
        if (ctx == 0)
            throw Zmq.Error("zmq_ctx_new");
        // libzmq's default of 1023 sockets is too few for `std-daq up` with the most modules a
        // detector may have: a PUB per receiver and a SUB per module in the assembler.
        if (Zmq.zmq_ctx_set(ctx, Zmq.MAX_SOCKETS, MaxSockets) != 0)
            throw Zmq.Error($"zmq_ctx_set(ZMQ_MAX_SOCKETS, {MaxSockets})");
        return ctx;
    });

    private const int MaxSockets = 4 * Memory.SlotHeader.MaxModules;

    private readonly SafeZmqSocketHandle _socket;
    private int _disposed;
    // The socket file of a bound ipc:// endpoint and its identity, removed on dispose.
    private string? _ipcPath;
    private Libc.Stat _ipcFile;

    /// <summary>The endpoint the socket was bound or connected to, for messages; "" before.</summary>
    public string Endpoint { get; private set; } = "";

    /// <summary>The libzmq socket, for calls through <see cref="Zmq"/>.</summary>
    public SafeZmqSocketHandle Handle => _socket;

    /// <summary>
    /// ZMQ_FD: a file descriptor that becomes readable when libzmq has news for this socket
    /// (see <see cref="ZmqPollSet"/> for how to wait on it correctly).
    /// </summary>
    public int FileDescriptor => GetInt(Zmq.FD, "ZMQ_FD");

    private ZmqSocket(int type)
    {
        _socket = Zmq.zmq_socket(SharedContext.Value, type);
        if (_socket.IsInvalid)
            throw Zmq.Error("zmq_socket");
        SetInt(Zmq.LINGER, 0);
    }

    /// <summary>
    /// A PUB socket bound to <paramref name="endpoint"/>. With <paramref name="seeSubscriptions"/>
    /// it is an XPUB, whose <see cref="Receive(Span{byte})"/> returns subscription messages (first byte 1), so
    /// a sender can wait until a subscriber is really there instead of sleeping.
    /// </summary>
    public static ZmqSocket Publisher(string endpoint, int sendHwm = 10_000, bool seeSubscriptions = false)
    {
        var s = new ZmqSocket(seeSubscriptions ? Zmq.XPUB : Zmq.PUB);
        try
        {
            s.SetInt(Zmq.SNDHWM, sendHwm);
            s.Bind(endpoint);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// True if a process is bound to the ipc:// <paramref name="endpoint"/> now (a plain connect to
    /// its socket file succeeds); false for a missing file or one left by a process that died.
    /// </summary>
    public static bool IsListening(string endpoint)
    {
        const string scheme = "ipc://";
        if (!endpoint.StartsWith(scheme, StringComparison.Ordinal))
            throw new ArgumentException($"{endpoint} is not an ipc:// endpoint", nameof(endpoint));
        string path = endpoint[scheme.Length..];
        if (!File.Exists(path))
            return false;
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream,
            System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            s.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    /// <summary>A SUB socket connected to <paramref name="endpoint"/>, subscribed to everything.</summary>
    public static ZmqSocket Subscriber(string endpoint, int receiveHwm = 10_000, int receiveTimeoutMs = 100)
    {
        var s = new ZmqSocket(Zmq.SUB);
        try
        {
            s.SetInt(Zmq.RCVHWM, receiveHwm);
            s.SetInt(Zmq.RCVTIMEO, receiveTimeoutMs);
            if (Zmq.zmq_setsockopt(s._socket, Zmq.SUBSCRIBE, ReadOnlySpan<byte>.Empty) != 0)
                throw Zmq.Error("zmq_setsockopt(ZMQ_SUBSCRIBE)");
            s.Connect(endpoint);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>A PULL socket bound to <paramref name="endpoint"/> (the fixed end of a PUSH → PULL pipe).</summary>
    public static ZmqSocket Puller(string endpoint, int receiveTimeoutMs = 100)
    {
        var s = new ZmqSocket(Zmq.PULL);
        try
        {
            s.SetInt(Zmq.RCVTIMEO, receiveTimeoutMs);
            s.Bind(endpoint);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>A PUSH socket connected to <paramref name="endpoint"/>; sends never block (<see cref="TrySend"/>).</summary>
    public static ZmqSocket Pusher(string endpoint, int sendHwm = 10_000)
    {
        var s = new ZmqSocket(Zmq.PUSH);
        try
        {
            s.SetInt(Zmq.SNDHWM, sendHwm);
            s.Connect(endpoint);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A PUSH socket bound to <paramref name="endpoint"/> (a tcp:// stream that its pullers connect to,
    /// so either end can restart: libzmq reconnects), with a monitor of its connections'
    /// <paramref name="monitorEvents"/> (Zmq.EVENT_*) made before the bind, so no connection is
    /// missed. <see cref="Send"/> waits at most <paramref name="sendTimeoutMs"/> at the high-water
    /// mark (counted in messages, a multipart message being one) or while no puller is connected.
    /// </summary>
    public static (ZmqSocket Socket, ZmqMonitor Monitor) BoundPusher(string endpoint, int sendHwm, int sendTimeoutMs, int monitorEvents)
    {
        var s = new ZmqSocket(Zmq.PUSH);
        ZmqMonitor? monitor = null;
        try
        {
            s.SetInt(Zmq.SNDHWM, sendHwm);
            s.SetInt(Zmq.SNDTIMEO, sendTimeoutMs);
            monitor = new ZmqMonitor(s, monitorEvents);
            s.Bind(endpoint);
            return (s, monitor);
        }
        catch
        {
            monitor?.Dispose();
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A PULL socket connected to <paramref name="endpoint"/> (the moving end of a bound PUSH's
    /// stream; libzmq reconnects), with a monitor of <paramref name="monitorEvents"/> made before the
    /// connect, so the first connection is not missed. <paramref name="receiveBufferBytes"/> &gt; 0:
    /// the kernel's receive buffer of its connections (ZMQ_RCVBUF; else the system's).
    /// </summary>
    public static (ZmqSocket Socket, ZmqMonitor Monitor) ConnectedPuller(string endpoint, int receiveHwm, int receiveTimeoutMs, int monitorEvents,
        int receiveBufferBytes = 0)
    {
        var s = new ZmqSocket(Zmq.PULL);
        ZmqMonitor? monitor = null;
        try
        {
            s.SetInt(Zmq.RCVHWM, receiveHwm);
            if (receiveBufferBytes > 0)
                s.SetInt(Zmq.RCVBUF, receiveBufferBytes);
            s.SetInt(Zmq.RCVTIMEO, receiveTimeoutMs);
            monitor = new ZmqMonitor(s, monitorEvents);
            s.Connect(endpoint);
            return (s, monitor);
        }
        catch
        {
            monitor?.Dispose();
            s.Dispose();
            throw;
        }
    }

    /// <summary>A PAIR socket connected to <paramref name="endpoint"/> (inproc; for <see cref="ZmqMonitor"/>).</summary>
    public static ZmqSocket Pair(string endpoint)
    {
        var s = new ZmqSocket(Zmq.PAIR);
        try
        {
            s.Connect(endpoint);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// zmq_ctx_term of the process's context, for a program about to exit whose sockets are all
    /// closed: libzmq then hands what a socket closed with a linger above 0 still had queued to the
    /// network, for at most that linger, before it returns. True if it returned within
    /// <paramref name="timeout"/> (a socket left open would make it wait for ever: then false, and
    /// the context is left as it is). Nothing to do if no socket was ever made.
    /// </summary>
    public static bool TerminateContext(TimeSpan timeout)
    {
        if (!SharedContext.IsValueCreated)
            return true;
        nint ctx = SharedContext.Value;
        var term = new Thread(() => Zmq.zmq_ctx_term(ctx)) { IsBackground = true, Name = "zmq_ctx_term" };
        term.Start();
        return term.Join(timeout);
    }

    /// <summary>ZMQ_RCVMORE: whether the message part just received has more parts after it.</summary>
    public bool HasMore => GetInt(Zmq.RCVMORE, "ZMQ_RCVMORE") != 0;

    /// <summary>zmq_getsockopt of an int option; <paramref name="name"/> names it in the error.</summary>
    private int GetInt(int option, string name)
    {
        if (Zmq.zmq_getsockopt(_socket, option, out int value) != 0)
            throw Zmq.Error($"zmq_getsockopt({name})");
        return value;
    }

    /// <summary>zmq_setsockopt of an int option (a <see cref="Zmq"/> constant); <see cref="IOException"/> if libzmq refuses it.</summary>
    public void SetInt(int option, int value)
    {
        if (Zmq.zmq_setsockopt(_socket, option, value) != 0)
            throw Zmq.Error($"zmq_setsockopt({option}, {value})");
    }

    /// <summary>
    /// zmq_bind; an ipc:// endpoint's socket file is remembered (by identity) so <see cref="Dispose"/>
    /// can remove it. Once per socket: the factories call it.
    /// </summary>
    internal void Bind(string endpoint)
    {
        if (Zmq.zmq_bind(_socket, endpoint) != 0)
            throw Zmq.Error($"zmq_bind({endpoint})");
        Endpoint = endpoint;
        if (endpoint.StartsWith("ipc://", StringComparison.Ordinal))
        {
            string path = endpoint["ipc://".Length..];
            if (Libc.stat(path, out var st) == 0)
            {
                _ipcPath = path;
                _ipcFile = st;
            }
        }
    }

    /// <summary>zmq_connect; once per socket: the factories call it.</summary>
    internal void Connect(string endpoint)
    {
        if (Zmq.zmq_connect(_socket, endpoint) != 0)
            throw Zmq.Error($"zmq_connect({endpoint})");
        Endpoint = endpoint;
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until a message can be received (zmq_poll on this one
    /// socket; no polling loop). False at the timeout.
    /// </summary>
    public bool WaitReadable(TimeSpan timeout)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            // After a signal (EINTR) only what is left of the timeout.
            var left = timeout - System.Diagnostics.Stopwatch.GetElapsedTime(start);
            long ms = Math.Max(0, (long)Math.Ceiling(left.TotalMilliseconds));
            int revents = Zmq.zmq_poll(_socket, Zmq.POLLIN, ms);
            if (revents >= 0)
                return (revents & Zmq.POLLIN) != 0;
            int errno = Zmq.zmq_errno();
            if (errno != Zmq.EINTR)
                throw new IOException($"zmq_poll({Endpoint}) failed: {Zmq.zmq_strerror(errno)}");
        }
    }

    /// <summary>
    /// Sends one message without blocking. False if it could not be queued: a PUSH at its high-water
    /// mark. A PUB or XPUB never returns false for that: libzmq drops the message for a subscriber
    /// at its mark and reports success. Other failures throw <see cref="IOException"/>.
    /// </summary>
    public bool TrySend(ReadOnlySpan<byte> message, bool more = false)
    {
        int flags = Zmq.DONTWAIT | (more ? Zmq.SNDMORE : 0);
        if (Zmq.zmq_send(_socket, message, flags) >= 0)
            return true;
        int errno = Zmq.zmq_errno();
        return errno == Zmq.EAGAIN ? false : throw new IOException($"zmq_send({Endpoint}) failed: {Zmq.zmq_strerror(errno)}");
    }

    /// <summary>
    /// Sends one message part, waiting up to the socket's send timeout (ZMQ_SNDTIMEO) for room.
    /// False if it could not be queued in that time; other failures throw <see cref="IOException"/>.
    /// </summary>
    public bool Send(ReadOnlySpan<byte> message, bool more = false)
    {
        int flags = more ? Zmq.SNDMORE : 0;
        while (true)
        {
            if (Zmq.zmq_send(_socket, message, flags) >= 0)
                return true;
            int errno = Zmq.zmq_errno();
            if (errno == Zmq.EAGAIN)
                return false;
            if (errno != Zmq.EINTR)
                throw new IOException($"zmq_send({Endpoint}) failed: {Zmq.zmq_strerror(errno)}");
        }
    }

    /// <summary>
    /// Receives one message into <paramref name="buffer"/>, waiting up to the socket's receive
    /// timeout. Returns the message's full length (may exceed the buffer: truncated), or -1 on timeout.
    /// </summary>
    public int Receive(Span<byte> buffer) => Receive(buffer, 0);

    /// <summary>Like <see cref="Receive(Span{byte})"/>, without waiting: -1 if no message is queued.</summary>
    public int TryReceive(Span<byte> buffer) => Receive(buffer, Zmq.DONTWAIT);

    private int Receive(Span<byte> buffer, int flags)
    {
        while (true)
        {
            int n = Zmq.zmq_recv(_socket, buffer, flags);
            if (n >= 0)
                return n;
            int errno = Zmq.zmq_errno();
            if (errno == Zmq.EAGAIN)
                return -1;
            if (errno != Zmq.EINTR)
                throw new IOException($"zmq_recv({Endpoint}) failed: {Zmq.zmq_strerror(errno)}");
        }
    }

    /// <summary>
    /// Closes the socket (linger 0: unsent messages are dropped), at once or, if a call on another
    /// thread still uses it, when that call returns. For a bound ipc:// endpoint it then waits up to
    /// about 100 ms for libzmq to remove the socket file, and removes it itself if it is still the one
    /// this socket made.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _socket.Dispose();
        if (_ipcPath != null)
            RemoveSocketFile(_ipcPath, _ipcFile);
    }

    /// <summary>
    /// libzmq removes an ipc:// socket file when its listener closes, but on its I/O thread, which a
    /// process that exits right after closing often never lets run: the file stays behind. Give it a
    /// moment, then remove the file ourselves, only if it is still the one this socket bound (not a
    /// newer process's).
    /// </summary>
    private static void RemoveSocketFile(string path, Libc.Stat bound)
    {
        for (int i = 0; i < 20; i++)
        {
            if (Libc.stat(path, out _) != 0)
                return;
            Thread.Sleep(5);
        }
        if (Libc.stat(path, out var now) == 0 && now.SameFile(bound))
            Libc.unlink(path);
    }
}
