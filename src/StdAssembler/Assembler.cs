using System.Diagnostics;
using Microsoft.Extensions.Logging;
using StdDaq.Assembler.Conversions;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;

namespace StdDaq.Assembler;

public sealed record AssemblerOptions
{
    /// <summary>Drop images with a module missing instead of publishing them as incomplete.</summary>
    public bool DiscardIncomplete { get; init; }
    /// <summary>Worker threads converting modules (0: one per module, at most the CPU count).</summary>
    public int Workers { get; init; }
    /// <summary>Overrides the config's assembler_timeout_ms.</summary>
    public double? TimeoutMs { get; init; }
    /// <summary>JUNGFRAU converted: calibration to use instead of loading gains_and_pedestals (the caller keeps it).</summary>
    public JungfrauCalibration? Calibration { get; init; }
}

/// <summary>
/// StdAssembler: subscribes to every module's ModuleFrame notices, synchronizes frames by image id,
/// converts and places each module's frame into the ImageBuffer slot and publishes the 56-byte
/// ImageMetadata on ipc:///tmp/std-daq-&lt;det&gt;-assembler, in increasing image-id order.
/// </summary>
/// <remarks>
/// An image is published as soon as all its modules are in. The oldest pending image with a module
/// missing is published (incomplete, missing modules filled, their bits set in the slot header's
/// MissingModules) as soon as every missing module has sent a newer image, or when the timeout since
/// its first module has passed; images behind it wait for it only so long, which keeps the id order.
/// A frame is read under its slot's sequence lock: if the receiver overwrote it before or while it
/// was converted, it counts as an overrun and its module as missing, never as good data.
/// </remarks>
public sealed partial class Assembler : IDisposable
{
    private const int MaxModules = 64;

    private readonly DetectorConfig _config;
    private readonly ILogger _logger;
    private readonly AssemblerOptions _options;
    private readonly ImageLayout _layout;
    private readonly FrameConverter _converter;
    private readonly ShmRing[] _frames;
    private readonly ShmRing _images;
    private readonly RoleLock _role;
    private readonly ZmqSocket _subscriber;
    private readonly ZmqSocket? _publisher;
    private readonly int _nModules;
    private readonly ulong _allModules;
    private readonly int _workers;
    private readonly long _timeoutTicks;
    private readonly int _maxPending;

    // Pending images by id. Ids mostly arrive in increasing order, so adding is an append, and
    // the oldest is at index 0 without an enumerator (no allocation per poll).
    private readonly SortedList<ulong, Pending> _pending = new();
    private readonly Stack<Pending> _pool = new();
    private readonly ulong[] _latestId;
    private readonly bool[] _seenModule;
    private bool _hasPublished;
    private ulong _lastPublished;
    private readonly byte[] _noticeBuffer = new byte[ModuleFrameNotice.Size + 1];
    private readonly byte[] _metaBuffer = new byte[ImageMetadata.Size];
    private readonly ModuleOutcome[] _outcomes;
    private readonly PixelCounts[] _pixelCounts;
    private readonly ParallelOptions _parallel;

    public AssemblerCounters Counters { get; } = new();
    public ImageLayout Layout => _layout;
    public ShmRing ImageRing => _images;

    /// <summary>
    /// Takes the detector's assembler role, waits (at most wait_for_peers_s, or until
    /// <paramref name="startup"/> is cancelled) for every module's FrameBuffer, creates or reuses the
    /// ImageBuffer and connects to the receivers.
    /// </summary>
    public Assembler(DetectorConfig config, ILogger logger, AssemblerOptions? options = null, bool publish = true,
        CancellationToken startup = default)
    {
        if (config.NModules > MaxModules)
            throw new ArgumentException($"n_modules {config.NModules} exceeds the {MaxModules} modules an image slot header can flag");
        _config = config;
        _logger = logger;
        _options = options ?? new AssemblerOptions();
        _layout = new ImageLayout(config);
        _converter = FrameConverter.For(config, _layout, _options.Calibration);
        _nModules = config.NModules;
        _allModules = _nModules == 64 ? ulong.MaxValue : (1UL << _nModules) - 1;
        int workers = _options.Workers > 0 ? _options.Workers : config.AssemblerWorkers;
        _workers = workers > 0 ? workers : Math.Clamp(Math.Min(_nModules, Environment.ProcessorCount), 1, 64);
        _timeoutTicks = (long)((_options.TimeoutMs ?? config.AssemblerTimeoutMs) * Stopwatch.Frequency / 1000);
        _maxPending = config.ModuleSyncQueueSize ?? Math.Max(16, config.FrameBufferSlots / 2);
        _latestId = new ulong[_nModules];
        _seenModule = new bool[_nModules];
        _outcomes = new ModuleOutcome[_nModules];
        _pixelCounts = new PixelCounts[_nModules];
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = _workers };
        _frames = new ShmRing[_nModules];
        var g = config.Module;
        // One assembler per detector: a second one would take over the metadata endpoint.
        _role = ServiceRoles.Assembler(config);
        try
        {
            var deadline = DateTime.UtcNow + config.WaitForPeers;
            for (int m = 0; m < _nModules; m++)
                _frames[m] = ShmRing.WaitAttach(config.FrameBufferName(m), RingKind.FrameBuffer, g.FrameBytes, config.FrameBufferSlots,
                    writable: true, Remaining(deadline), ServiceRoles.ReceiverName(config, m), LogWaiting, startup);
            _images = ShmRing.CreateOrAttach(config.ImageBufferName, RingKind.ImageBuffer, _layout.ImageBytes,
                config.ImageBufferSlotsFor(_layout.ImageBytes), Remaining(deadline), LogWaiting);
            WaitForReceivers(deadline, startup);
            _subscriber = ZmqSocket.Subscriber(config.ModuleFrameEndpoint(0), receiveTimeoutMs: 5);
            for (int m = 1; m < _nModules; m++)
                _subscriber.Connect(config.ModuleFrameEndpoint(m));
            _publisher = publish ? ZmqSocket.Publisher(config.AssemblerEndpoint) : null;
        }
        catch
        {
            _converter.Dispose();
            foreach (var r in _frames)
                r?.Dispose();
            _images?.Dispose();
            _subscriber?.Dispose();
            _role.Dispose();
            throw;
        }
    }

    private static TimeSpan Remaining(DateTime deadline)
    {
        var left = deadline - DateTime.UtcNow;
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    /// <summary>
    /// Waits until every receiver's notice endpoint is bound (its process is up), saying once which
    /// it waits for. At the deadline it goes on: zmq connects to a receiver whenever it comes, and
    /// until then that module's frames count as missing.
    /// </summary>
    private void WaitForReceivers(DateTime deadline, CancellationToken startup)
    {
        bool said = false;
        while (true)
        {
            var absent = Enumerable.Range(0, _nModules).Where(m => !ZmqSocket.IsListening(_config.ModuleFrameEndpoint(m))).ToList();
            if (absent.Count == 0)
                return;
            string which = $"module{(absent.Count > 1 ? "s" : "")} {string.Join(", ", absent.Take(16))}{(absent.Count > 16 ? ", ..." : "")}";
            if (DateTime.UtcNow >= deadline)
            {
                LogReceiversAbsent(which);
                return;
            }
            if (!said)
                LogWaiting($"waiting up to {Remaining(deadline).TotalSeconds:0.#} s for the receivers of {which} to bind their notice endpoints");
            said = true;
            if (startup.WaitHandle.WaitOne(50))
                throw new OperationCanceledException(startup);
        }
    }

    public Task RunAsync(CancellationToken ct) =>
        Task.Factory.StartNew(() => Run(ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    public void Run(CancellationToken ct)
    {
        LogStarted(_config.DetectorName, _nModules, _layout.Width, _layout.Height, _layout.Dtype.ToString(), _images.Name,
            _images.SlotCount, _workers, _config.AssemblerEndpoint);
        if (_converter is JungfrauConverter jungfrau)
            LogCalibration(_config.GainsAndPedestals ?? "(given)", jungfrau.Calibration.MaskedPixels);
        long statsTicks = (long)(_config.StatsCollectionPeriod * Stopwatch.Frequency);
        long nextStats = Stopwatch.GetTimestamp() + statsTicks;
        var last = Counters.Read();
        long lastTime = Stopwatch.GetTimestamp();
        while (!ct.IsCancellationRequested)
        {
            int n = _subscriber.Receive(_noticeBuffer);
            long now = Stopwatch.GetTimestamp();
            if (n == ModuleFrameNotice.Size)
                OnNotice(ModuleFrameNotice.Read(_noticeBuffer), now);
            else if (n >= 0)
                Counters.NoticesMalformed++;
            PublishReady(now);
            if (now >= nextStats)
            {
                var snap = Counters.Read();
                LogStats(_config.DetectorName, (snap - last).Format((now - lastTime) / (double)Stopwatch.Frequency));
                last = snap;
                lastTime = now;
                nextStats = now + statsTicks;
            }
        }
        // Shutting down: what is pending goes out as it is.
        while (_pending.Count > 0)
            PublishOldest();
        LogStopped(_config.DetectorName, Counters.Read().Format(0));
    }

    private void OnNotice(in ModuleFrameNotice notice, long now)
    {
        int m = notice.ModuleId;
        if (m >= _nModules)
        {
            Counters.NoticesMalformed++;
            return;
        }
        ulong id = notice.ImageId;
        if (_hasPublished && id <= _lastPublished)
        {
            if (_lastPublished - id < (ulong)_frames[m].SlotCount)
            {
                Counters.FramesLate++;
                return;
            }
            // Far behind what was published: the detector restarted its numbering.
            Counters.ImageIdResets++;
            while (_pending.Count > 0)
                PublishOldest();
            _hasPublished = false;
            Array.Clear(_seenModule);
        }
        if (!_pending.TryGetValue(id, out var p))
        {
            p = _pool.Count > 0 ? _pool.Pop() : new Pending(_nModules);
            p.Reset(id, now);
            _pending.Add(id, p);
        }
        ulong bit = 1UL << m;
        if ((p.Present & bit) != 0)
        {
            Counters.NoticesDuplicate++;
            return;
        }
        p.Present |= bit;
        p.Notices[m] = notice;
        if (!_seenModule[m] || id > _latestId[m])
            _latestId[m] = id;
        _seenModule[m] = true;
        if (_pending.Count > _maxPending)
            PublishOldest();
    }

    /// <summary>Publishes pending images in id order while the oldest one is ready.</summary>
    private void PublishReady(long now)
    {
        while (_pending.Count > 0)
        {
            var p = Oldest();
            if (p.Present != _allModules && !MissingModulesMovedOn(p) && now - p.FirstTicks < _timeoutTicks)
                return;
            PublishOldest();
        }
    }

    /// <summary>Every module missing from <paramref name="p"/> has already sent a newer image.</summary>
    private bool MissingModulesMovedOn(Pending p)
    {
        ulong missing = _allModules & ~p.Present;
        while (missing != 0)
        {
            int m = System.Numerics.BitOperations.TrailingZeroCount(missing);
            missing &= missing - 1;
            if (!_seenModule[m] || _latestId[m] <= p.Id)
                return false;
        }
        return true;
    }

    private Pending Oldest() => _pending.GetValueAtIndex(0);

    private void PublishOldest()
    {
        var p = Oldest();
        _pending.RemoveAt(0);
        Assemble(p);
        _hasPublished = true;
        _lastPublished = p.Id;
        _pool.Push(p);
    }

    private enum ModuleOutcome : byte { Good, LostPackets, Missing, Overrun }

    private unsafe void Assemble(Pending p)
    {
        bool complete = p.Present == _allModules;
        if (!complete && _options.DiscardIncomplete)
        {
            Counters.ImagesDiscarded++;
            Counters.ModulesMissing += _nModules - System.Numerics.BitOperations.PopCount(p.Present);
            return;
        }
        int slot = _images.SlotOf(p.Id);
        _images.BeginWrite(slot);
        byte* image = _images.SlotData(slot);
        if (_workers > 1 && _nModules > 1)
        {
            nint at = (nint)image;
            Parallel.For(0, _nModules, _parallel, m => _outcomes[m] = Place(p, m, (byte*)at));
        }
        else
            for (int m = 0; m < _nModules; m++)
                _outcomes[m] = Place(p, m, image);

        ulong missingModules = 0;
        bool lostPackets = false, mismatch = false;
        ulong frameIndex = 0, detector1 = 0, detector2 = 0;
        uint received = 0;
        bool first = true;
        for (int m = 0; m < _nModules; m++)
        {
            switch (_outcomes[m])
            {
                case ModuleOutcome.Missing:
                    missingModules |= 1UL << m;
                    Counters.ModulesMissing++;
                    continue;
                case ModuleOutcome.Overrun:
                    missingModules |= 1UL << m;
                    Counters.FramesOverrun++;
                    continue;
                case ModuleOutcome.LostPackets:
                    lostPackets = true;
                    Counters.FramesWithLostPackets++;
                    break;
            }
            var pixels = _pixelCounts[m];
            Counters.PixelsInvalidGain += pixels.InvalidGain;
            Counters.PixelsSaturated += pixels.Saturated;
            Counters.PixelsLostPackets += pixels.LostPackets;
            ref readonly var n = ref p.Notices[m];
            received += n.NReceivedPackets;
            if (first)
            {
                frameIndex = n.FrameIndex;
                detector1 = n.Detector1;
                detector2 = n.Detector2;
                first = false;
            }
            else if (n.FrameIndex != frameIndex)
                mismatch = true;
        }
        var status = mismatch ? ImageStatus.IdMismatch
            : missingModules != 0 || lostPackets ? ImageStatus.Incomplete
            : ImageStatus.Good;
        ref SlotHeader h = ref _images.Slot(slot);
        h.ImageId = p.Id;
        h.FrameIndex = frameIndex;
        h.NReceivedPackets = received;
        h.NMissingPackets = (uint)(_nModules * _layout.Module.PacketsPerFrame) - received;
        h.Detector1 = detector1;
        h.Detector2 = detector2;
        h.ReceiveTimeNs = Libc.RealtimeNs();
        h.ModuleId = 0;
        h.BitDepth = (ushort)(_layout.BytesPerPixel * 8);
        h.Status = (uint)status;
        h.MissingModules = missingModules;
        _images.EndWrite(slot);
        switch (status)
        {
            case ImageStatus.Good: Counters.ImagesGood++; break;
            case ImageStatus.Incomplete: Counters.ImagesIncomplete++; break;
            default: Counters.ImagesIdMismatch++; break;
        }
        ulong user1 = _layout.Module.Kind is Shared.Detectors.DetectorKind.JungfrauRaw or Shared.Detectors.DetectorKind.JungfrauConverted
            ? detector1 : frameIndex;
        var meta = new ImageMetadata(p.Id, (ulong)_layout.Height, (ulong)_layout.Width, _layout.Dtype, ImageEncoding.Raw,
            0, status, user1, 0);
        meta.Write(_metaBuffer);
        if (_publisher != null && !_publisher.TrySend(_metaBuffer))
            Counters.MetadataDropped++;
    }

    /// <summary>Converts module m of image p into the image, or fills its place if it is missing or was overwritten.</summary>
    private unsafe ModuleOutcome Place(Pending p, int m, byte* image)
    {
        var placement = _layout.Placements[m];
        if ((p.Present & (1UL << m)) == 0)
        {
            _converter.Fill(image, placement);
            return ModuleOutcome.Missing;
        }
        ref readonly var n = ref p.Notices[m];
        var ring = _frames[m];
        int slot = ring.SlotOf(n.ImageId);
        ulong seq = n.SlotSequence;
        if (ring.ReadSequence(slot) != seq || ring.Slot(slot).ImageId != n.ImageId)
        {
            _converter.Fill(image, placement);
            return ModuleOutcome.Overrun;
        }
        _pixelCounts[m] = _converter.Convert(ring.SlotData(slot), ring.Slot(slot), image, placement);
        if (!ring.Validate(slot, seq))
        {
            _converter.Fill(image, placement);
            return ModuleOutcome.Overrun;
        }
        return n.NMissingPackets != 0 ? ModuleOutcome.LostPackets : ModuleOutcome.Good;
    }

    public void Dispose()
    {
        _publisher?.Dispose();
        _subscriber.Dispose();
        foreach (var r in _frames)
            r.Dispose();
        _images.Dispose();
        _converter.Dispose();
        _role.Dispose();
    }

    private sealed class Pending(int nModules)
    {
        public ulong Id;
        public long FirstTicks;
        public ulong Present;
        public readonly ModuleFrameNotice[] Notices = new ModuleFrameNotice[nModules];

        public void Reset(ulong id, long now)
        {
            Id = id;
            FirstTicks = now;
            Present = 0;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "StdAssembler {Detector}: {Modules} modules -> {Width}x{Height} {Dtype} images in /dev/shm/{Ring} ({Slots} slots), {Workers} workers, metadata on {Endpoint}")]
    private partial void LogStarted(string detector, int modules, int width, int height, string dtype, string ring, int slots, int workers, string endpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Message}")]
    private partial void LogWaiting(string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "no receiver is up for {Which}; going on without: their frames count as missing until their receivers start")]
    private partial void LogReceiversAbsent(string which);

    [LoggerMessage(Level = LogLevel.Information, Message = "JUNGFRAU converted to keV with gains and pedestals from {Path}; {Masked} pixels masked (always NaN)")]
    private partial void LogCalibration(string path, long masked);

    [LoggerMessage(Level = LogLevel.Information, Message = "stats {Detector} assembler: {Line}")]
    private partial void LogStats(string detector, string line);

    [LoggerMessage(Level = LogLevel.Information, Message = "StdAssembler {Detector} stopped; totals: {Line}")]
    private partial void LogStopped(string detector, string line);
}
