using System.Diagnostics;
using System.Net;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Metrics;
using StdDaq.Shared.Streams;

namespace StdDaq.UdpRecv;

/// <summary>
/// StdUdpRecv for one module: binds start_udp_port + module_id, receives datagrams in batches with
/// one recvmmsg call per batch, aimed at the packets' predicted places in the module's FrameBuffer
/// slots (a payload that lands elsewhere is copied once into its place), validates each datagram,
/// and publishes a ModuleFrame notice per closed frame.
/// </summary>
public sealed partial class UdpReceiver : IDisposable
{
    /// <summary>Extra bytes per receive buffer, so a datagram slightly too long is seen as too long.</summary>
    private const int Slack = 64;

    private readonly DetectorConfig _config;
    private readonly ModuleGeometry _geometry;
    private readonly ILogger _logger;
    private readonly UdpSocket _socket;
    private readonly ShmRing _ring;
    private readonly RoleLock _role;
    private readonly ZmqSocket? _publisher;
    private readonly PacketParser _parser;
    private readonly FrameTracker _tracker;
    private readonly RecvBatch _batch;
    private readonly byte[] _noticeBytes = new byte[ModuleFrameNotice.Size];
    private readonly long _timeoutTicks;
    private readonly TimeProvider _time;
    private uint _lastKernelDrops;
    // The clock as of the last receive (_time's timestamp): one read per receive serves the batch,
    // the idle check, the stats period and the next aim.
    private long _now;

    public int ModuleId { get; }
    public int Port { get; }
    public CounterSet<ReceiverCounter> Counters { get; }
    /// <summary>The socket receive buffer granted (bytes, in the units of the request).</summary>
    public long GrantedReceiveBuffer { get; }
    public ShmRing Ring => _ring;

    /// <param name="time">The clock of frame timeouts and the stats period; read once per receive batch.</param>
    public UdpReceiver(DetectorConfig config, int moduleId, ILogger logger, IPAddress? bindAddress = null, bool publish = true,
        TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        if (moduleId < 0 || moduleId >= config.NModules)
            throw new ArgumentOutOfRangeException(nameof(moduleId), $"module_id {moduleId} is not in 0..{config.NModules - 1}");
        _config = config;
        _geometry = config.Module;
        _logger = logger;
        ModuleId = moduleId;
        Port = config.UdpPort(moduleId);
        Counters = ReceiverStats.Create(config.DetectorName, moduleId);
        _parser = new PacketParser(_geometry, config.JungfrauImageId == JungfrauImageIdSource.BunchId);
        // One receiver per module: a second one would take over the notice endpoint and the ring.
        _role = ServiceRoles.Receiver(config, moduleId);
        try
        {
            _socket = UdpSocket.Bind(bindAddress ?? IPAddress.Any, Port);
            _socket.SetInt(Libc.Sol.SOCKET, Libc.So.RXQ_OVFL, 1, "SO_RXQ_OVFL");
            _socket.SetReceiveTimeout(TimeSpan.FromMilliseconds(Math.Clamp(config.UdpFrameTimeoutMs / 2, 1, 100)));
            GrantedReceiveBuffer = _socket.RequestReceiveBuffer(config.UdpReceiveBufferBytes);
            if (GrantedReceiveBuffer < config.UdpReceiveBufferBytes)
                LogSmallBuffer(config.UdpReceiveBufferBytes, GrantedReceiveBuffer, UdpSocket.RmemMax());
            _ring = ShmRing.CreateOrAttach(config.FrameBufferName(moduleId), RingKind.FrameBuffer, _geometry.FrameBytes, config.FrameBufferSlots,
                config.WaitForPeers, m => LogShm(m));
            _publisher = publish ? ZmqSocket.Publisher(config.ModuleFrameEndpoint(moduleId)) : null;
        }
        catch
        {
            _socket?.Dispose();
            _ring?.Dispose();
            _role.Dispose();
            throw;
        }
        _batch = new RecvBatch(config.UdpBatchSize, _geometry.HeaderBytes, _geometry.PayloadBytes + Slack);
        _tracker = new FrameTracker(_ring, _geometry, moduleId, Counters, Publish, _batch, config.UdpReceiveInPlace);
        Counters.AddGauge("last_frame_id", () => (long)_tracker.LastClosedId, "receiver: image id of the last frame closed");
        _timeoutTicks = (long)(config.UdpFrameTimeoutMs * _time.TimestampFrequency / 1000);
    }

    public Task RunAsync(CancellationToken ct) =>
        Task.Factory.StartNew(() => Run(ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>The receive loop; returns when <paramref name="ct"/> is cancelled.</summary>
    public void Run(CancellationToken ct)
    {
        // The kernel writes into the ring's slots through the aimed batch: the mapping stays until
        // the loop is out, even if the receiver is disposed meanwhile.
        using var lease = _ring.Lease();
        PrepareReceivePath();
        LogStarted(_config.DetectorName, ModuleId, Port, _ring.Name, _ring.SlotCount, _geometry.PacketsPerFrame, _batch.Capacity, GrantedReceiveBuffer);
        _now = _time.GetTimestamp();
        var stats = new StatsPeriod<ReceiverCounter>(Counters, _time, _config.StatsCollectionPeriod);
        while (!ct.IsCancellationRequested)
        {
            ReceiveOnce();
            if (stats.TryTake(_now, out var change, out double seconds))
                LogStats(_config.DetectorName, ModuleId, change.Format(seconds));
        }
        _tracker.Flush();
        LogStopped(_config.DetectorName, ModuleId, Counters.Read().Format(0));
    }

    /// <summary>
    /// One pass of the receive loop: aim, receive a batch (waiting up to the socket's timeout),
    /// place its datagrams, close a frame that timed out. Returns the datagrams received.
    /// </summary>
    internal int ReceiveOnce()
    {
        // Aimed with the clock of the last receive: what it decides (whether packets still come)
        // is in units of the frame timeout, far above a batch's processing time.
        _tracker.AimBatch(_now, _timeoutTicks);
        int n = ReceiveBatch();
        _now = _time.GetTimestamp();
        if (n > 0)
            ProcessBatch(n, _now);
        _tracker.OnIdle(_now, _timeoutTicks);
        return n;
    }

    /// <summary>The receive batch, for tests.</summary>
    internal RecvBatch Batch => _batch;

    private static int s_prepared;

    /// <summary>
    /// Compiles the receive loop's methods before the first receive. StdUdpRecv runs without
    /// tiered compilation (see its project file), so this is their final code: the first frames
    /// wait for no JIT (tens of ms, in which a small socket buffer would overflow).
    /// </summary>
    private static void PrepareReceivePath()
    {
        if (Interlocked.Exchange(ref s_prepared, 1) != 0)
            return;
        const BindingFlags all = BindingFlags.DeclaredOnly | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;
        Type[] types = [typeof(UdpReceiver), typeof(FrameTracker), typeof(PacketParser), typeof(RecvBatch), typeof(ShmRing),
            typeof(ZmqSocket), typeof(CounterSet<ReceiverCounter>), typeof(CounterSnapshot<ReceiverCounter>)];
        foreach (var type in types)
            foreach (var m in type.GetMethods(all))
                if (!m.IsAbstract && !m.ContainsGenericParameters && m.GetMethodBody() != null)
                    RuntimeHelpers.PrepareMethod(m.MethodHandle);
    }

    private int ReceiveBatch()
    {
        try
        {
            return _batch.Receive(_socket);
        }
        catch (IOException e)
        {
            throw new IOException($"udp port {Port}: {e.Message}", e);
        }
    }

    private void ProcessBatch(int n, long now)
    {
        _tracker.BeginBatch(n);
        int start = _batch.Start;
        for (int i = start; i < start + n; i++)
        {
            PacketInfo info = default;
            PacketVerdict verdict = _batch.Truncated(i) ? PacketVerdict.WrongSize : _parser.Parse(_batch.Header(i), _batch.Length(i), out info);
            switch (verdict)
            {
                case PacketVerdict.Ok:
                    _tracker.OnPacket(in info, i, now);
                    break;
                case PacketVerdict.WrongSize:
                    Counters[ReceiverCounter.MalformedSize]++;
                    break;
                case PacketVerdict.BadPacketNumber:
                    Counters[ReceiverCounter.MalformedPacketNumber]++;
                    break;
                default:
                    Counters[ReceiverCounter.MalformedProtocol]++;
                    break;
            }
        }
        _tracker.EndBatch();
        if (_batch.TryGetDropCounter(start + n - 1, out uint drops))
        {
            Counters[ReceiverCounter.KernelDrops] += drops - _lastKernelDrops;
            _lastKernelDrops = drops;
        }
    }

    private bool Publish(ModuleFrameNotice notice)
    {
        if (_publisher == null)
            return true;
        notice.Write(_noticeBytes);
        return _publisher.TrySend(_noticeBytes);
    }

    public void Dispose()
    {
        _publisher?.Dispose();
        _socket.Dispose();
        _ring.Dispose();
        _batch.Dispose();
        _role.Dispose();
        Counters.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Message}")]
    private partial void LogShm(string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "asked for a {Requested}-byte UDP receive buffer, the kernel gave {Granted} (net.core.rmem_max = {RmemMax}); bursts may be dropped. Raise it: sysctl -w net.core.rmem_max={Requested}")]
    private partial void LogSmallBuffer(long requested, long granted, long rmemMax);

    [LoggerMessage(Level = LogLevel.Information, Message = "StdUdpRecv {Detector} module {Module}: udp port {Port} -> /dev/shm/{Ring} ({Slots} slots), {Packets} packets/frame, batch {Batch}, receive buffer {Buffer} bytes")]
    private partial void LogStarted(string detector, int module, int port, string ring, int slots, int packets, int batch, long buffer);

    [LoggerMessage(Level = LogLevel.Information, Message = "stats {Detector} module {Module}: {Line}")]
    private partial void LogStats(string detector, int module, string line);

    [LoggerMessage(Level = LogLevel.Information, Message = "StdUdpRecv {Detector} module {Module} stopped; totals: {Line}")]
    private partial void LogStopped(string detector, int module, string line);
}
