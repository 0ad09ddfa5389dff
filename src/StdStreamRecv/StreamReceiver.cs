using Microsoft.Extensions.Logging;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Metrics;
using StdDaq.Shared.Streams;

namespace StdDaq.StreamRecv;

public sealed record StreamRecvOptions
{
    /// <summary>The share of the ids this receiver takes (--images i/N); others are dropped as wrong_share.</summary>
    public ImageShare Images { get; init; } = ImageShare.All;
    /// <summary>Take only this byte range of every image (--part i/N; not with <see cref="Images"/>): part 0 publishes, see <see cref="PartPublisher"/>.</summary>
    public ImagePart? Part { get; init; }
    /// <summary>
    /// How long part 0's receiver waits for the other parts of an image before it gives the image up
    /// (--part-timeout-ms). More than the skew between parts that the streams' queues allow (each up
    /// to its high-water mark): at 1 s, 4 parts on a loaded 2-core machine gave up images that came.
    /// </summary>
    public int PartTimeoutMs { get; init; } = 5000;
    /// <summary>Bytes of images the receive high-water mark allows (256 MiB; benchmarks try others).</summary>
    public long QueuedBytes { get; init; } = 256L << 20;
    /// <summary>The clock of the stats period.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// StdStreamRecv: takes the assembler's place on this server. Connects a PULL socket to a
/// StdStreamSend, writes each image it receives into the local ImageBuffer (the config's name and
/// geometry, as the assembler makes it) under the slot's sequence lock, with the source slot's
/// header, and publishes the ImageMetadata it came with on the assembler's endpoint, in increasing
/// id order, so the writer and every other consumer here run as on the source server.
/// </summary>
/// <remarks>
/// The image bytes are received straight into their slot. A message that is not whole and right is
/// never published: a checksum mismatch (images_corrupt), a size that does not match its metadata,
/// header or this detector (images_malformed), an id not above the last published one
/// (images_out_of_order) or of another share (images_wrong_share); a slot already written for it is
/// zeroed and marked empty (status 3, id 0), so no reader takes it for an image. Gaps in the
/// sender's numbering are messages_lost; a new sender session is a restarted sender
/// (sender_restarts), whose numbering starts again: the ids skipped across it that neither session
/// numbered are images_lost_sender_restart. Each published slot keeps the sender's session and
/// sequence number, so a receiver restarted on the same ring counts what neither run got of the
/// session it resumes (messages_lost_receiver_restart).
/// </remarks>
public sealed partial class StreamReceiver : IDisposable
{
    /// <summary>Longest wait for a message, so cancellation, connection events and the stats line are not held up.</summary>
    private const int ReceiveTimeoutMs = 50;

    private readonly DetectorConfig _config;
    private readonly string _address;
    private readonly StreamRecvOptions _options;
    private readonly ILogger _logger;
    private readonly ImageShare _share;
    private readonly RoleLock? _role;
    private readonly RoleLock? _partRole;
    private readonly ImagePart? _part;
    private readonly PartPublisher? _parts;
    private readonly ShmRing _ring;
    private readonly ZmqSocket _pull;
    private readonly ZmqInMessage _frame = new();
    private readonly System.IO.Hashing.XxHash3 _hash = new();
    private readonly ZmqMonitor _monitor;
    private readonly ZmqSocket? _publisher;
    private readonly byte[] _metaBuffer = new byte[ImageMetadata.Size + 1];
    private readonly byte[] _headerBuffer = new byte[StreamHeader.Size + 1];
    private bool _hasSession;
    private ulong _session;
    private ulong _nextSequence;
    private bool _hasPublished;
    private ulong _lastPublished;
    // Where the previous run on this ring stopped (its newest published image's sender position), if it did.
    private StreamPosition? _previousRun;
    // A sender session changed since the last published image; what was counted lost since then.
    private bool _restartSincePublished;
    private long _lossSincePublished;

    public CounterSet<StreamRecvCounter> Counters { get; }
    public ShmRing Ring => _ring;
    /// <summary>Part 0's receiver: the images waiting for their parts and the parts missing by part; null otherwise.</summary>
    internal PartPublisher? Parts => _parts;

    /// <summary>
    /// Takes the assembler's role on this server, creates (or reuses, same geometry) the
    /// ImageBuffer, connects to the sender at <paramref name="address"/> and binds the metadata endpoint.
    /// </summary>
    public StreamReceiver(DetectorConfig config, string address, StreamRecvOptions options, ILogger logger)
    {
        _config = config;
        _address = address;
        _options = options;
        _logger = logger;
        _share = options.Images;
        _part = options.Part;
        if (_part.HasValue && _share != ImageShare.All)
            throw new ArgumentException($"a receiver takes either a part of every image or a share of the images, not both (part {_part}, images {_share})");
        if (_part is { } p)
            _partRole = ServiceRoles.StreamPartReceiver(config, p);
        try
        {
            // Only the publisher (every image, or part 0) is in the assembler's place.
            if (_part is not { Index: > 0 })
                _role = ServiceRoles.StreamReceiver(config);
        }
        catch
        {
            _partRole?.Dispose();
            throw;
        }
        Counters = StreamRecvStats.Create(config.DetectorName, _share, _part);
        try
        {
            _ring = ShmRing.CreateOrAttach(config.ImageBufferName, RingKind.ImageBuffer, config.ImageBytes, config.ImageBufferSlotCount,
                config.WaitForPeers, LogWaiting);
            (_pull, _monitor) = ZmqSocket.ConnectedPuller(address, HighWaterMark(config, options.QueuedBytes), ReceiveTimeoutMs,
                Zmq.EVENT_HANDSHAKE_SUCCEEDED | Zmq.EVENT_DISCONNECTED);
            if (_role != null)
                _publisher = ZmqSocket.Publisher(config.AssemblerEndpoint);
            if (_part is { Index: 0 } publisher)
                _parts = new PartPublisher(_ring, publisher, TimeSpan.FromMilliseconds(options.PartTimeoutMs), options.Time, Counters, PublishSealed);
        }
        catch
        {
            _monitor?.Dispose();
            _pull?.Dispose();
            _ring?.Dispose();
            Counters.Dispose();
            _role?.Dispose();
            _partRole?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Tunes this process's malloc for the stream (once, at start; it is process-wide): libzmq
    /// receives every image into a buffer of its own, malloc'd per message and freed once copied into
    /// the slot. glibc gives the memory of freed buffers back to the kernel past a trim threshold
    /// that follows the largest block, and a queue of images that grows and shrinks makes it do so
    /// again and again: each new buffer's pages then fault and are zeroed, a second pass over every
    /// image. Blocks up to 32 MiB come from the heap (not a mapping each) and up to 512 MiB of freed
    /// heap is kept for the next buffers (the high-water mark bounds how much is ever in use).
    /// </summary>
    public static void KeepReceiveBuffers()
    {
        Libc.mallopt(Libc.M.MMAP_THRESHOLD, 32 << 20);
        Libc.mallopt(Libc.M.TRIM_THRESHOLD, 512 << 20);
    }

    /// <summary>The receive high-water mark in images: <paramref name="queuedBytes"/> (256 MiB) worth, at least 4 and at most 1000.</summary>
    public static int HighWaterMark(DetectorConfig config, long queuedBytes = 256L << 20) => (int)Math.Clamp(queuedBytes / config.ImageBytes, 4, 1000);

    public Task RunAsync(CancellationToken ct) =>
        Task.Factory.StartNew(() => Run(ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    public void Run(CancellationToken ct)
    {
        using var lease = _ring.Lease();
        // Whole-image replicas keep the sender's stream position in their slots; part receivers do not.
        if (!_ring.Created && _part == null)
            _previousRun = FindPreviousRun();
        LogStarted(_config.DetectorName, What, _address, _ring.Name, _ring.SlotCount, _ring.Created ? "created" : "reused",
            _publisher != null ? _config.AssemblerEndpoint : "none (part 0's receiver publishes)");
        var time = _options.Time;
        var stats = new StatsPeriod<StreamRecvCounter>(Counters, time, _config.StatsCollectionPeriod);
        while (!ct.IsCancellationRequested)
        {
            int n = _parts is { Pending: true } ? ReceiveSoon() : _pull.Receive(_metaBuffer);
            if (n >= 0)
                OnMessage(n);
            _parts?.Advance();
            while (_monitor.TryRead(out int ev))
                OnConnectionEvent(ev);
            if (stats.TryTake(time.GetTimestamp(), out var change, out double seconds))
                LogStats(_config.DetectorName, _part is { } p ? $"part {p}" : _share.ToString(), change.Format(seconds) + PartsLine);
        }
        _parts?.Clear();
        LogStopped(_config.DetectorName, What, Counters.Read().Format(0) + PartsLine);
    }

    /// <summary>What this receiver takes, for its log lines: "images i/N" or "part i/N".</summary>
    private string What => _part is { } p ? $"part {p}" : $"images {_share}";

    /// <summary>The publisher's missing parts by part, at the end of its stats line.</summary>
    private string PartsLine => _parts != null ? " " + _parts.Format() : "";

    /// <summary>The first frame of the next message within a millisecond (images wait for parts: look again soon), or -1.</summary>
    private int ReceiveSoon() => _pull.WaitReadable(TimeSpan.FromMilliseconds(1)) ? _pull.TryReceive(_metaBuffer) : -1;

    private void OnConnectionEvent(int ev)
    {
        if (ev == Zmq.EVENT_HANDSHAKE_SUCCEEDED)
        {
            Counters[StreamRecvCounter.SenderConnections]++;
            LogConnected(_address);
        }
        else if (ev == Zmq.EVENT_DISCONNECTED)
            LogDisconnected(_address);
    }

    /// <summary>Why a message is not published.</summary>
    private enum Problem { None, Malformed, Corrupt, OutOfOrder, WrongShare, PartLate, PartMismatch }

    /// <summary>Takes the rest of the message whose first frame (<paramref name="n"/> bytes) is in the metadata buffer, and publishes or counts it.</summary>
    private void OnMessage(int n)
    {
        if (!_pull.HasMore)
        {
            Counters[StreamRecvCounter.ImagesMalformed]++;
            return;
        }
        var meta = n == ImageMetadata.Size ? ImageMetadata.Read(_metaBuffer) : default;
        long whole = n == ImageMetadata.Size ? ExpectedPayload(meta) : -1;
        var (partStart, expected) = _part is { } part && whole >= 0 ? part.RangeOf(whole) : (0, whole);
        var problem = expected < 0 ? Problem.Malformed
            : !_share.Includes(meta.Id) ? Problem.WrongShare
            : !IsNext(meta.Id) ? Problem.OutOfOrder
            : Problem.None;

        // Frame 2 straight into the image's slot (opened for writing), or dropped.
        int slot = -1;
        Span<byte> target = default;
        if (problem == Problem.None && _part == null)
        {
            slot = _ring.SlotOf(meta.Id);
            _ring.BeginWrite(slot);
            target = _ring.SlotSpan(slot);
        }
        // Frame 2 stays in libzmq's buffer until the header (frame 3) says how to check it; then it
        // is copied into the slot and hashed in the same pass, with streaming stores: the slot is
        // read when a consumer gets to it, long after this copy, so caching it only evicts.
        int payload = _frame.TryReceive(_pull.Handle);
        int headerBytes = payload >= 0 && _pull.HasMore ? _pull.TryReceive(_headerBuffer) : -1;
        bool extra = headerBytes >= 0 && _pull.HasMore;
        while (extra && _pull.TryReceive(default) >= 0 && _pull.HasMore)
        {
        }

        bool headerOk = headerBytes == StreamHeader.Size && !extra;
        var header = headerOk ? StreamHeader.Read(_headerBuffer) : default;
        headerOk &= header.IsValid;
        if (headerOk)
            Account(header);
        if (problem == Problem.None)
        {
            if (!headerOk || payload != expected || (ulong)payload != header.PayloadBytes || header.Slot.ImageId != meta.Id
                || !PartFits(header))
                problem = Problem.Malformed;
            else if (_part is { } p && ClaimPart(p, meta.Id, (int)partStart, out slot, out target) is var claim and not Problem.None)
                problem = claim;
            else if (!header.HasChecksum)
                StreamingCopy.Copy(_frame.Data, target);
            else if (StreamHeader.CopyStreamingWithChecksum(_frame.Data, target[..payload], _hash) != header.Checksum)
                problem = Problem.Corrupt;
        }
        _frame.Close();

        if (slot >= 0 && _part is { } written)
        {
            if (!SlotParts.Complete(_ring, slot, meta.Id, written, problem == Problem.None) && problem == Problem.None)
                problem = Problem.PartLate;
        }
        else if (slot >= 0)
        {
            if (problem == Problem.None)
            {
                Fill(slot, header.Slot);
                SetStreamPosition(ref _ring.Slot(slot), header.SessionId, header.Sequence);
            }
            else
                MarkEmpty(slot);
            _ring.EndWrite(slot);
        }
        switch (problem)
        {
            case Problem.None when _part != null:
                TookPart(meta, payload, header);
                break;
            case Problem.None:
                Publish(meta, payload);
                break;
            case Problem.PartLate:
                Counters[StreamRecvCounter.PartsLate]++;
                break;
            case Problem.PartMismatch:
                Counters[StreamRecvCounter.PartsMismatched]++;
                break;
            case Problem.Malformed:
                CountLost(StreamRecvCounter.ImagesMalformed, 1);
                break;
            case Problem.Corrupt:
                CountLost(StreamRecvCounter.ImagesCorrupt, 1);
                break;
            case Problem.OutOfOrder:
                Counters[StreamRecvCounter.ImagesOutOfOrder]++;
                break;
            case Problem.WrongShare:
                Counters[StreamRecvCounter.ImagesWrongShare]++;
                break;
        }
    }

    /// <summary>
    /// Bytes the image must have: this detector's image for raw data, user_2 for bitshuffle-LZ4 (at
    /// most a slot); -1 for metadata of another geometry or an unknown encoding.
    /// </summary>
    private long ExpectedPayload(in ImageMetadata meta)
    {
        if (meta.Height != (ulong)_config.ImagePixelHeight || meta.Width != (ulong)_config.ImagePixelWidth
            || meta.Dtype != (ushort)_config.ImageDtype)
            return -1;
        return meta.Encoding switch
        {
            (ushort)ImageEncoding.Raw => _config.ImageBytes,
            (ushort)ImageEncoding.BitshuffleLz4 when meta.User2 <= (ulong)_ring.SlotBytes => (long)meta.User2,
            _ => -1,
        };
    }

    /// <summary>
    /// Whether <paramref name="id"/> may be published next: above the last published id, or so far
    /// below it (more than the ring's slots) that the detector's numbering restarted.
    /// </summary>
    private bool IsNext(ulong id)
    {
        if (!_hasPublished || id > _lastPublished)
            return true;
        if (_lastPublished - id < (ulong)_ring.SlotCount)
            return false;
        Counters[StreamRecvCounter.ImageIdResets]++;
        LogIdReset(_lastPublished, id);
        _hasPublished = false;
        return true;
    }

    /// <summary>Follows the sender's session and numbering: gaps are messages lost.</summary>
    private void Account(in StreamHeader h)
    {
        if (!_hasSession || h.SessionId != _session)
        {
            if (_hasSession)
            {
                // A restarted sender numbers from 0: what it numbered before this one never came.
                Counters[StreamRecvCounter.SenderRestarts]++;
                CountLost(StreamRecvCounter.MessagesLost, (long)h.Sequence);
                _restartSincePublished = true;
                LogSenderRestarted(_session.ToString("x16"), h.SessionId.ToString("x16"), h.Sequence);
            }
            else if (_previousRun is { } p && p.Session == h.SessionId && h.Sequence >= p.NextSequence)
            {
                // The session the previous run on this ring was receiving goes on: what it numbered in between never came.
                CountLost(StreamRecvCounter.MessagesLostReceiverRestart, (long)(h.Sequence - p.NextSequence));
                LogResumed(h.SessionId.ToString("x16"), p.LastId, p.NextSequence, h.Sequence);
            }
            else
            {
                if (_previousRun is { } q)
                    LogPreviousRunUnknown(q.Session.ToString("x16"), q.LastId, h.SessionId.ToString("x16"));
                LogFirstMessage(h.SessionId.ToString("x16"), h.Sequence, $"{h.ShareIndex}/{h.ShareCount}");
            }
            _session = h.SessionId;
            _hasSession = true;
        }
        else if (h.Sequence > _nextSequence)
            CountLost(StreamRecvCounter.MessagesLost, (long)(h.Sequence - _nextSequence));
        _nextSequence = h.Sequence + 1;
    }

    /// <summary>Counts <paramref name="n"/> images not published under <paramref name="cause"/>, also as explained for the next gap in published ids.</summary>
    private void CountLost(StreamRecvCounter cause, long n)
    {
        Counters[cause] += n;
        _lossSincePublished += n;
    }

    /// <summary>A sender's session and the next sequence number expected of it, and the image id published last.</summary>
    private readonly record struct StreamPosition(ulong Session, ulong NextSequence, ulong LastId);

    /// <summary>
    /// The sender position of the newest image a previous receiver published into this ring (its
    /// slot header's stream position, <see cref="SetStreamPosition"/>); null if none is there. A
    /// slot left odd by a killed receiver was never published and is passed over. Newest by the
    /// source's receive time, then by id: after the detector's numbering restarted, older images
    /// with higher ids may still be in the ring.
    /// </summary>
    private StreamPosition? FindPreviousRun()
    {
        StreamPosition? newest = null;
        (long Time, ulong Id) newestAt = default;
        for (int slot = 0; slot < _ring.SlotCount; slot++)
        {
            ref SlotHeader h = ref _ring.Slot(slot);
            if ((_ring.ReadSequence(slot) & 1) != 0 || h.Status == SlotStatus.Empty || h.ImageId == 0)
                continue;
            ReadOnlySpan<byte> r = h.Reserved;
            ulong session = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(r);
            if (session != 0 && (newest == null || (h.ReceiveTimeNs, h.ImageId).CompareTo(newestAt) > 0))
            {
                newest = new StreamPosition(session, System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(r[8..]) + 1, h.ImageId);
                newestAt = (h.ReceiveTimeNs, h.ImageId);
            }
        }
        return newest;
    }

    /// <summary>
    /// Replica slots keep the sender's session @68 and sequence @76 (the first 16 of the slot
    /// header's reserved bytes), so a restarted receiver knows where the previous run stopped.
    /// </summary>
    private static void SetStreamPosition(ref SlotHeader h, ulong session, ulong sequence)
    {
        Span<byte> r = h.Reserved;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(r, session);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(r[8..], sequence);
    }

    /// <summary>The slot's header as the source's was (the sequence lock aside).</summary>
    private void Fill(int slot, in SlotHeader source)
    {
        ref SlotHeader h = ref _ring.Slot(slot);
        h.ImageId = source.ImageId;
        h.FrameIndex = source.FrameIndex;
        h.NReceivedPackets = source.NReceivedPackets;
        h.NMissingPackets = source.NMissingPackets;
        h.Detector1 = source.Detector1;
        h.Detector2 = source.Detector2;
        h.ReceiveTimeNs = source.ReceiveTimeNs;
        h.ModuleId = source.ModuleId;
        h.BitDepth = source.BitDepth;
        h.Status = source.Status;
        h.NMissingModules = source.NMissingModules;
        h.Reserved = default;
        h.ReceivedBitmap = source.ReceivedBitmap;
    }

    /// <summary>A slot whose bytes were overwritten by a message that is not published: zeroed, no image in it.</summary>
    private void MarkEmpty(int slot)
    {
        _ring.SlotSpan(slot).Clear();
        ref SlotHeader h = ref _ring.Slot(slot);
        Fill(slot, default);
        h.Status = SlotStatus.Empty;
    }

    private void Publish(in ImageMetadata meta, int payload)
    {
        Took(meta.Id);
        Counters[StreamRecvCounter.ImagesPublished]++;
        Counters[StreamRecvCounter.BytesReceived] += payload;
        if (!_publisher!.TrySend(_metaBuffer.AsSpan(0, ImageMetadata.Size)))
            Counters[StreamRecvCounter.MetadataDropped]++;
    }

    /// <summary>Image <paramref name="id"/> came whole from the stream: the ids of this share since the last one did not.</summary>
    private void Took(ulong id)
    {
        if (_hasPublished && id > _lastPublished)
        {
            long skipped = (long)_share.CountBetween(_lastPublished, id);
            Counters[StreamRecvCounter.ImagesSkipped] += skipped;
            // Across a sender restart, ids that neither session's numbering accounts for: the old
            // sender's tail (queued at its stop, dropped after its last message that came) and ids
            // published while no sender ran.
            if (_restartSincePublished && skipped > _lossSincePublished)
                Counters[StreamRecvCounter.ImagesLostSenderRestart] += skipped - _lossSincePublished;
        }
        _restartSincePublished = false;
        _lossSincePublished = 0;
        _hasPublished = true;
        _lastPublished = id;
    }

    /// <summary>Whether the header says the message is what this receiver takes: a part of its --part, or (without) a whole image.</summary>
    private bool PartFits(in StreamHeader h) => _part is { } p ? h.IsPartOf(p) : !h.IsPart;

    /// <summary>
    /// Claims the image's slot for this receiver's part (<see cref="SlotParts.Claim"/>) with the
    /// image's key (its metadata and source slot header, as every part brings them) and gives the
    /// range to write; PartLate or PartMismatch if the part must not be written.
    /// </summary>
    private Problem ClaimPart(ImagePart part, ulong id, int start, out int slot, out Span<byte> target)
    {
        slot = _ring.SlotOf(id);
        target = default;
        switch (SlotParts.Claim(_ring, slot, id, ImageKey(), part))
        {
            case SlotParts.ClaimResult.Late:
                slot = -1;
                return Problem.PartLate;
            case SlotParts.ClaimResult.Mismatch:
                slot = -1;
                return Problem.PartMismatch;
        }
        target = _ring.SlotSpan(slot)[start..];
        return Problem.None;
    }

    /// <summary>
    /// The key every part of one source image has: xxHash3-64 of its ImageMetadata (frame 1) and the
    /// source slot header (in frame 3), so parts of two images with one id (a restarted detector
    /// numbering) never make one image.
    /// </summary>
    private ulong ImageKey()
    {
        Span<byte> both = stackalloc byte[ImageMetadata.Size + SlotHeader.Size];
        _metaBuffer.AsSpan(0, ImageMetadata.Size).CopyTo(both);
        _headerBuffer.AsSpan(StreamHeader.Size - SlotHeader.Size, SlotHeader.Size).CopyTo(both[ImageMetadata.Size..]);
        return System.IO.Hashing.XxHash3.HashToUInt64(both);
    }

    /// <summary>A part written and checked into its slot; part 0's receiver then waits for the image's other parts.</summary>
    private void TookPart(in ImageMetadata meta, int payload, in StreamHeader header)
    {
        Took(meta.Id);
        Counters[StreamRecvCounter.PartsReceived]++;
        Counters[StreamRecvCounter.BytesReceived] += payload;
        _parts?.Add(meta, header.Slot, ImageKey());
        _parts?.Advance();
    }

    /// <summary>Publishes an image whose parts are all in its sealed slot (part 0's receiver).</summary>
    private void PublishSealed(in ImageMetadata meta)
    {
        Counters[StreamRecvCounter.ImagesPublished]++;
        Span<byte> bytes = stackalloc byte[ImageMetadata.Size];
        meta.Write(bytes);
        if (!_publisher!.TrySend(bytes))
            Counters[StreamRecvCounter.MetadataDropped]++;
    }

    public void Dispose()
    {
        _publisher?.Dispose();
        _monitor.Dispose();
        _frame.Dispose();
        _pull.Dispose();
        _ring.Dispose();
        Counters.Dispose();
        _role?.Dispose();
        _partRole?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "StdStreamRecv {Detector} {Share}: from {Address} into /dev/shm/{Ring} ({Slots} slots, {How}), metadata on {Endpoint}")]
    private partial void LogStarted(string detector, string share, string address, string ring, int slots, string how, string endpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "connected to the sender at {Address}")]
    private partial void LogConnected(string address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the sender at {Address} went away; reconnecting")]
    private partial void LogDisconnected(string address);

    [LoggerMessage(Level = LogLevel.Information, Message = "first message from sender session {Session}: sequence {Sequence}, images {Share}")]
    private partial void LogFirstMessage(string session, ulong sequence, string share);

    [LoggerMessage(Level = LogLevel.Warning, Message = "resumed sender session {Session} where the previous receiver run stopped (image {LastId}, sequence {Next} expected): {Sequence} came first, the messages between never came")]
    private partial void LogResumed(string session, ulong lastId, ulong next, ulong sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the previous receiver run here stopped in sender session {Old} after image {LastId}; this run gets session {New}: what was sent in between is not known here (the senders' logs and counters say)")]
    private partial void LogPreviousRunUnknown(string old, ulong lastId, string @new);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the sender restarted (session {Old} -> {New}); it resumes at sequence {Sequence}")]
    private partial void LogSenderRestarted(string old, string @new, ulong sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "image id {Id} far below the last published {Last}: the detector's numbering restarted")]
    private partial void LogIdReset(ulong last, ulong id);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Message}")]
    private partial void LogWaiting(string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "stats {Detector} stream_recv {Share}: {Line}")]
    private partial void LogStats(string detector, string share, string line);

    [LoggerMessage(Level = LogLevel.Information, Message = "StdStreamRecv {Detector} {Share} stopped; totals: {Line}")]
    private partial void LogStopped(string detector, string share, string line);
}
