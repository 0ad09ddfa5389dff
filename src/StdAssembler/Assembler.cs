using System.Diagnostics;
using Microsoft.Extensions.Logging;
using StdDaq.Assembler.Conversions;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Metrics;
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
    /// <summary>The clock of the assembler timeout, the wait for peers and the stats period.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// StdAssembler: subscribes to every module's ModuleFrame notices (one socket per module, read in
/// turn so no module waits behind another's backlog), synchronizes frames by image id,
/// converts and places each module's frame into the ImageBuffer slot and publishes the 56-byte
/// ImageMetadata on ipc:///tmp/std-daq-&lt;det&gt;-assembler, in increasing image-id order.
/// </summary>
/// <remarks>
/// An image is published as soon as all its modules are in. The oldest pending image with a module
/// missing is published (incomplete, missing modules filled and counted in the slot header's
/// NMissingModules, their bits clear in its module bitmap) as soon as every missing module has sent a
/// newer image, or when the timeout since its first module has passed and no notice is waiting
/// unread in any socket; images behind it wait for it only so long, which keeps the id order.
/// A frame is read under its slot's sequence lock: if the receiver overwrote it before or while it
/// was converted, it counts as an overrun and its module as missing, never as good data.
/// </remarks>
public sealed partial class Assembler : IDisposable
{
    /// <summary>Notices taken from one module's socket before the next module's turn.</summary>
    private const int NoticesPerTurn = 4;
    /// <summary>Longest wait for a notice, so cancellation and the stats line are not held up.</summary>
    private const int MaxWaitMs = 50;

    private readonly DetectorConfig _config;
    private readonly ILogger _logger;
    private readonly AssemblerOptions _options;
    private readonly ImageLayout _layout;
    private readonly FrameConverter _converter;
    private readonly ShmRing[] _frames;
    private readonly ShmRing _images;
    private readonly RoleLock _role;
    private readonly ZmqSocket[] _subscribers;
    private readonly ZmqPollSet _poll;
    private readonly ZmqSocket? _publisher;
    private readonly int _nModules;
    private readonly int _workers;
    private readonly long _timeoutTicks;
    private readonly TimeProvider _time;
    private readonly int _maxPending;

    // Pending images by id. Ids mostly arrive in increasing order, so adding is an append, and
    // the oldest is at index 0 without an enumerator (no allocation per poll).
    private readonly SortedList<ulong, Pending> _pending = new();
    private readonly Stack<Pending> _pool = new();
    private readonly ulong[] _latestId;
    private readonly bool[] _seenModule;
    private int _firstModule;
    private bool _hasPublished;
    private ulong _lastPublished;
    private readonly byte[] _noticeBuffer = new byte[ModuleFrameNotice.Size + 1];
    private readonly byte[] _metaBuffer = new byte[ImageMetadata.Size];
    private readonly ModuleOutcome[] _outcomes;
    private readonly PixelCounts[] _pixelCounts;
    private readonly ParallelOptions _parallel;

    public CounterSet<AssemblerCounter> Counters { get; }
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
        if (config.NModules > SlotHeader.MaxModules)
            throw new ArgumentException($"n_modules {config.NModules} exceeds the {SlotHeader.MaxModules} modules an image slot header can flag");
        _config = config;
        _logger = logger;
        _options = options ?? new AssemblerOptions();
        _time = _options.Time;
        _layout = new ImageLayout(config);
        _converter = FrameConverter.For(config, _layout, _options.Calibration);
        _nModules = config.NModules;
        int workers = _options.Workers > 0 ? _options.Workers : config.AssemblerWorkers;
        _workers = workers > 0 ? workers : Math.Min(_nModules, Environment.ProcessorCount);
        _timeoutTicks = (long)((_options.TimeoutMs ?? config.AssemblerTimeoutMs) * _time.TimestampFrequency / 1000);
        _maxPending = config.ModuleSyncQueueSize ?? Math.Max(16, config.FrameBufferSlots / 2);
        _latestId = new ulong[_nModules];
        _seenModule = new bool[_nModules];
        _outcomes = new ModuleOutcome[_nModules];
        _pixelCounts = new PixelCounts[_nModules];
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = _workers };
        _frames = new ShmRing[_nModules];
        _subscribers = new ZmqSocket[_nModules];
        var g = config.Module;
        // One assembler per detector: a second one would take over the metadata endpoint.
        _role = ServiceRoles.Assembler(config);
        Counters = AssemblerStats.Create(config.DetectorName);
        // Read on a scrape, from another thread: a little stale, never torn (an int and a 64-bit field).
        Counters.AddGauge("images_pending", () => _pending.Count, "assembler: images waiting for modules (synchronization queue)");
        Counters.AddGauge("last_image_id", () => (long)_lastPublished, "assembler: id of the last image published");
        try
        {
            var peers = new PeerWait(config.WaitForPeers, LogWaiting, startup, _time);
            for (int m = 0; m < _nModules; m++)
                _frames[m] = ShmRing.WaitAttach(config.FrameBufferName(m), RingKind.FrameBuffer, g.FrameBytes, config.FrameBufferSlots,
                    writable: true, peers.Left, ServiceRoles.ReceiverName(config, m), LogWaiting, startup);
            _images = ShmRing.CreateOrAttach(config.ImageBufferName, RingKind.ImageBuffer, config.ImageBytes,
                config.ImageBufferSlotCount, peers.Left, LogWaiting);
            WaitForReceivers(peers);
            for (int m = 0; m < _nModules; m++)
                _subscribers[m] = ZmqSocket.Subscriber(config.ModuleFrameEndpoint(m), receiveTimeoutMs: 0);
            _poll = new ZmqPollSet(_subscribers);
            _publisher = publish ? ZmqSocket.Publisher(config.AssemblerEndpoint) : null;
        }
        catch
        {
            _converter.Dispose();
            foreach (var r in _frames)
                r?.Dispose();
            _images?.Dispose();
            foreach (var s in _subscribers)
                s?.Dispose();
            _role.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Waits until every receiver's notice endpoint is bound (its process is up), saying once which
    /// it waits for. At the deadline it goes on: zmq connects to a receiver whenever it comes, and
    /// until then that module's frames count as missing.
    /// </summary>
    private void WaitForReceivers(PeerWait peers)
    {
        while (true)
        {
            var absent = Enumerable.Range(0, _nModules).Where(m => !ZmqSocket.IsListening(_config.ModuleFrameEndpoint(m))).ToList();
            if (absent.Count == 0)
                return;
            string which = $"module{(absent.Count > 1 ? "s" : "")} {string.Join(", ", absent.Take(16))}{(absent.Count > 16 ? ", ..." : "")}";
            if (peers.Expired)
            {
                LogReceiversAbsent(which);
                return;
            }
            peers.Pause(() => $"waiting up to {peers.Left.TotalSeconds:0.#} s for the receivers of {which} to bind their notice endpoints");
        }
    }

    public Task RunAsync(CancellationToken ct) =>
        Task.Factory.StartNew(() => Run(ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    public void Run(CancellationToken ct)
    {
        // The loop (and its placement workers) use slot spans of every ring: the mappings stay
        // until it is out, even if the assembler is disposed meanwhile.
        using var imageLease = _images.Lease();
        var frameLeases = Array.ConvertAll(_frames, r => r.Lease());
        try
        {
            RunLoop(ct);
        }
        finally
        {
            foreach (var lease in frameLeases)
                lease.Dispose();
        }
    }

    private void RunLoop(CancellationToken ct)
    {
        LogStarted(_config.DetectorName, _nModules, _layout.Width, _layout.Height, _layout.Dtype.ToString(), _images.Name,
            _images.SlotCount, _workers, _config.AssemblerEndpoint);
        if (_converter is JungfrauConverter jungfrau)
            LogCalibration(_config.GainsAndPedestals ?? "(given)", jungfrau.Calibration.MaskedPixels);
        var stats = new StatsPeriod<AssemblerCounter>(Counters, _time, _config.StatsCollectionPeriod);
        while (!ct.IsCancellationRequested)
        {
            if (_poll.Wait(WaitMs(_time.GetTimestamp())) > 0)
                ReceiveRound(_time.GetTimestamp());
            long now = _time.GetTimestamp();
            PublishReady(now);
            if (stats.TryTake(now, out var change, out double seconds))
                LogStats(_config.DetectorName, change.Format(seconds));
        }
        // Shutting down: what is pending goes out as it is.
        while (_pending.Count > 0)
            PublishOldest();
        LogStopped(_config.DetectorName, Counters.Read().Format(0));
    }

    /// <summary>
    /// Milliseconds to wait for a notice: until the oldest pending image's timeout (it is
    /// incomplete, else it would have been published), at most <see cref="MaxWaitMs"/>.
    /// </summary>
    private int WaitMs(long now)
    {
        if (_pending.Count == 0)
            return MaxWaitMs;
        long left = Oldest().FirstTicks + _timeoutTicks - now;
        return left <= 0 ? 0 : (int)Math.Min(MaxWaitMs, left * 1000 / _time.TimestampFrequency + 1);
    }

    /// <summary>
    /// One turn per module, starting one module later each round: up to <see cref="NoticesPerTurn"/>
    /// notices from each socket that may have one, so a module with a backlog cannot keep the
    /// others' notices waiting. Returns the notices taken.
    /// </summary>
    private int ReceiveRound(long now)
    {
        int taken = 0;
        int m = _firstModule;
        for (int i = 0; i < _nModules; i++)
        {
            if (_poll.MayHaveMessage(m))
                for (int k = 0; k < NoticesPerTurn && ReceiveNotice(m, now); k++)
                    taken++;
            m = m + 1 == _nModules ? 0 : m + 1;
        }
        _firstModule = _firstModule + 1 == _nModules ? 0 : _firstModule + 1;
        return taken;
    }

    /// <summary>Takes one notice from module m's socket, if one is queued.</summary>
    private bool ReceiveNotice(int m, long now)
    {
        int n = _poll.TryReceive(m, _noticeBuffer);
        if (n < 0)
            return false;
        if (n == ModuleFrameNotice.Size)
            OnNotice(ModuleFrameNotice.Read(_noticeBuffer), m, now);
        else
            Counters[AssemblerCounter.NoticesMalformed]++;
        return true;
    }

    private void OnNotice(in ModuleFrameNotice notice, int m, long now)
    {
        if (notice.ModuleId != m)
        {
            // Not what module m's receiver sends: a misconfigured sender on its endpoint.
            Counters[AssemblerCounter.NoticesMalformed]++;
            return;
        }
        ulong id = notice.ImageId;
        if (_hasPublished && id <= _lastPublished)
        {
            if (_lastPublished - id < (ulong)_frames[m].SlotCount)
            {
                Counters[AssemblerCounter.FramesLate]++;
                return;
            }
            // Far behind what was published: the detector restarted its numbering.
            Counters[AssemblerCounter.ImageIdResets]++;
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
        if (p.Has(m))
        {
            Counters[AssemblerCounter.NoticesDuplicate]++;
            return;
        }
        p.Add(m);
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
        bool drained = false;
        while (_pending.Count > 0)
        {
            var p = Oldest();
            if (p.Count != _nModules && !MissingModulesMovedOn(p))
            {
                if (now - p.FirstTicks < _timeoutTicks)
                    return;
                if (!drained)
                {
                    // Timed out, but the missing notices may be queued unread (this thread was not
                    // scheduled for a while): read every socket empty before calling them missing.
                    drained = true;
                    while (_poll.Wait(0) > 0 && ReceiveRound(now) > 0)
                    {
                    }
                    continue;
                }
            }
            PublishOldest();
        }
    }

    /// <summary>Every module missing from <paramref name="p"/> has already sent a newer image.</summary>
    private bool MissingModulesMovedOn(Pending p)
    {
        for (int w = 0; w < p.Present.Length; w++)
        {
            ulong missing = ~p.Present[w];
            if (w == p.Present.Length - 1 && _nModules % 64 != 0)
                missing &= (1UL << _nModules) - 1; // the shift count is taken mod 64
            while (missing != 0)
            {
                int m = w * 64 + System.Numerics.BitOperations.TrailingZeroCount(missing);
                missing &= missing - 1;
                if (!_seenModule[m] || _latestId[m] <= p.Id)
                    return false;
            }
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

    private void Assemble(Pending p)
    {
        bool complete = p.Count == _nModules;
        if (!complete && _options.DiscardIncomplete)
        {
            Counters[AssemblerCounter.ImagesDiscarded]++;
            Counters[AssemblerCounter.ModulesMissing] += _nModules - p.Count;
            return;
        }
        int slot = _images.SlotOf(p.Id);
        _images.BeginWrite(slot);
        if (_workers > 1 && _nModules > 1)
            Parallel.For(0, _nModules, _parallel, m => _outcomes[m] = Place(p, m, _images.SlotSpan(slot)));
        else
        {
            var image = _images.SlotSpan(slot);
            for (int m = 0; m < _nModules; m++)
                _outcomes[m] = Place(p, m, image);
        }

        ref SlotHeader h = ref _images.Slot(slot);
        h.ReceivedBitmap = default;
        uint missingModules = 0;
        bool lostPackets = false, mismatch = false;
        ulong frameIndex = 0, detector1 = 0, detector2 = 0;
        uint received = 0;
        bool first = true;
        long receivedAt = long.MaxValue;
        for (int m = 0; m < _nModules; m++)
        {
            switch (_outcomes[m])
            {
                case ModuleOutcome.Missing:
                    missingModules++;
                    Counters[AssemblerCounter.ModulesMissing]++;
                    continue;
                case ModuleOutcome.Overrun:
                    missingModules++;
                    Counters[AssemblerCounter.FramesOverrun]++;
                    continue;
                case ModuleOutcome.LostPackets:
                    lostPackets = true;
                    Counters[AssemblerCounter.FramesWithLostPackets]++;
                    break;
            }
            h.MarkModule(m);
            var pixels = _pixelCounts[m];
            Counters[AssemblerCounter.PixelsInvalidGain] += pixels.InvalidGain;
            Counters[AssemblerCounter.PixelsSaturated] += pixels.Saturated;
            Counters[AssemblerCounter.PixelsLostPackets] += pixels.LostPackets;
            ref readonly var n = ref p.Notices[m];
            received += n.NReceivedPackets;
            receivedAt = Math.Min(receivedAt, (long)n.ReceiveTimeNs);
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
        h.ImageId = p.Id;
        h.FrameIndex = frameIndex;
        h.NReceivedPackets = received;
        h.NMissingPackets = (uint)(_nModules * _layout.Module.PacketsPerFrame) - received;
        h.Detector1 = detector1;
        h.Detector2 = detector2;
        // When the image was taken, as near as the pipeline knows: the earliest receive time of its
        // module frames (each receiver's frames close in order, so images keep their order).
        h.ReceiveTimeNs = receivedAt != long.MaxValue ? receivedAt : Libc.RealtimeNs();
        h.ModuleId = 0;
        h.BitDepth = (ushort)(_layout.BytesPerPixel * 8);
        h.Status = (uint)status;
        h.NMissingModules = missingModules;
        _images.EndWrite(slot);
        switch (status)
        {
            case ImageStatus.Good: Counters[AssemblerCounter.ImagesGood]++; break;
            case ImageStatus.Incomplete: Counters[AssemblerCounter.ImagesIncomplete]++; break;
            default: Counters[AssemblerCounter.ImagesIdMismatch]++; break;
        }
        ulong user1 = _layout.Module.Kind is Shared.Detectors.DetectorKind.JungfrauRaw or Shared.Detectors.DetectorKind.JungfrauConverted
            ? detector1 : frameIndex;
        var meta = new ImageMetadata(p.Id, (ulong)_layout.Height, (ulong)_layout.Width, _layout.Dtype, ImageEncoding.Raw,
            0, status, user1, 0);
        meta.Write(_metaBuffer);
        if (_publisher != null && !_publisher.TrySend(_metaBuffer))
            Counters[AssemblerCounter.MetadataDropped]++;
    }

    /// <summary>Converts module m of image p into the image, or fills its place if it is missing or was overwritten.</summary>
    private ModuleOutcome Place(Pending p, int m, Span<byte> image)
    {
        var placement = _layout.Placements[m];
        if (!p.Has(m))
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
        _pixelCounts[m] = _converter.Convert(ring.SlotSpan(slot), ring.Slot(slot), image, placement);
        if (!ring.Validate(slot, seq))
        {
            _converter.Fill(image, placement);
            return ModuleOutcome.Overrun;
        }
        return n.NMissingPackets != 0 ? ModuleOutcome.LostPackets : ModuleOutcome.Good;
    }

    public void Dispose()
    {
        Counters.Dispose();
        _publisher?.Dispose();
        foreach (var s in _subscribers)
            s.Dispose();
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
        /// <summary>Modules in, one bit each (bit m % 64 of word m / 64).</summary>
        public readonly ulong[] Present = new ulong[(nModules + 63) / 64];
        /// <summary>How many bits of <see cref="Present"/> are set.</summary>
        public int Count;
        public readonly ModuleFrameNotice[] Notices = new ModuleFrameNotice[nModules];

        public bool Has(int m) => (Present[m >> 6] & (1UL << m)) != 0;

        public void Add(int m)
        {
            Present[m >> 6] |= 1UL << m;
            Count++;
        }

        public void Reset(ulong id, long now)
        {
            Id = id;
            FirstTicks = now;
            Array.Clear(Present);
            Count = 0;
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
