using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Metrics;
using StdDaq.Shared.Streams;

namespace StdDaq.StreamSend;

public sealed record StreamSendOptions
{
    /// <summary>Send only the images of this share (--images i/N).</summary>
    public ImageShare Images { get; init; } = ImageShare.All;
    /// <summary>Send only this byte range of every image (--part i/N; not with <see cref="Images"/>).</summary>
    public ImagePart? Part { get; init; }
    /// <summary>Compute the xxHash3-64 of every image (--no-checksum: false, the header then carries 0).</summary>
    public bool Checksum { get; init; } = true;
    /// <summary>How long one image may wait for room at the high-water mark before it is dropped (--send-timeout-ms).</summary>
    public int SendTimeoutMs { get; init; } = 200;
    /// <summary>Bytes of images the high-water mark allows (<see cref="StreamSender.QueuedBytes"/>; benchmarks try others).</summary>
    public long QueuedBytes { get; init; } = StreamSender.QueuedBytes;
    /// <summary>With a checksum, lend the slot's bytes to libzmq instead of copying them (false: copy, as without; benchmarks compare).</summary>
    public bool Lend { get; init; } = true;
    /// <summary>The clock of the stats period.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
    /// <summary>Called after an image's bytes were copied out of its slot, before the sequence lock is checked (tests overwrite the slot there).</summary>
    internal Action<ulong>? AfterCopy { get; init; }
}

/// <summary>
/// StdStreamSend: for each ImageMetadata the assembler publishes (of its share of the ids), reads
/// the image from the ImageBuffer under the slot's sequence lock and sends one three-frame message
/// on a bound PUSH socket: the metadata as received, the image bytes, and a
/// <see cref="StreamHeader"/> (session, sequence number, share, size, xxHash3-64, the slot header).
/// </summary>
/// <remarks>
/// The bytes go from the slot straight into the libzmq message that is sent (one copy); the
/// sequence lock is checked after that copy, and an image overwritten before or during it is
/// counted (images_overrun) and never sent. The ring does not wait for this sender: a send waits at
/// most the send timeout for room at the high-water mark, and after one timed-out send the next
/// ones do not wait at all until one goes through, so a stalled or absent receiver costs one
/// timeout, not one per image, and the sender keeps up with the metadata stream.
/// </remarks>
public sealed partial class StreamSender : IDisposable
{
    /// <summary>Longest wait for metadata, so cancellation, connection events and the stats line are not held up.</summary>
    private const int ReceiveTimeoutMs = 50;
    /// <summary>Images smaller than this are copied into the message: lending saves nothing there.</summary>
    private const int LendMinBytes = 64 * 1024;
    /// <summary>Most images lent to libzmq at once (the high-water mark's at most 1000, and those the I/O thread is writing); more are copied.</summary>
    private const int LoansOut = 2048;

    /// <summary>A slot version lent to libzmq, and whether the image was sent (else it was dropped and its bytes do not matter).</summary>
    private readonly record struct Loan(int Slot, ulong Sequence, bool Sent);

    /// <summary>Bytes of queued images the high-water mark allows, on each side: it is counted in messages.</summary>
    public const long QueuedBytes = 256L << 20;
    /// <summary>How long the service's stop may go on handing queued images to TCP (<see cref="DisposeFlushing"/>): bounded, so a stalled receiver cannot hold a stop up.</summary>
    public const int StopLingerMs = 2000;

    private readonly DetectorConfig _config;
    private readonly string _address;
    private readonly StreamSendOptions _options;
    private readonly ILogger _logger;
    private readonly ImageShare _share;
    private readonly RoleLock _role;
    private readonly ZmqSocket _metadata;
    private readonly ZmqSocket _push;
    private readonly ZmqMonitor _monitor;
    private readonly ZmqOutMessage _image = new();
    /// <summary>Slot versions lent to libzmq (sent without a copy), checked again when libzmq gives them back.</summary>
    private readonly ZmqLoans<Loan> _loans = new(LoansOut);
    private readonly byte[] _metaBuffer = new byte[ImageMetadata.Size + 1];
    private readonly byte[] _headerBuffer = new byte[StreamHeader.Size];
    private readonly System.IO.Hashing.XxHash3 _hash = new();
    private readonly ulong _session;
    private readonly ImageBufferAttachment _images;
    private ulong _sequence;
    private bool _hasLast;
    private ulong _lastId;
    private bool _stalled;
    private bool _disposed;

    public CounterSet<StreamSendCounter> Counters { get; }

    /// <summary>The random id of this sender's session (<see cref="StreamHeader.SessionId"/>).</summary>
    public ulong SessionId => _session;

    /// <summary>Takes the sender's role, subscribes to the assembler's metadata and binds <paramref name="address"/>.</summary>
    public StreamSender(DetectorConfig config, string address, StreamSendOptions options, ILogger logger)
    {
        _config = config;
        _address = address;
        _options = options;
        _logger = logger;
        _share = options.Images;
        if (options.Part.HasValue && _share != ImageShare.All)
            throw new ArgumentException($"a sender sends either a part of every image or a share of the images, not both (part {options.Part}, images {_share})");
        _session = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong)));
        _role = options.Part is { } part ? ServiceRoles.StreamPartSender(config, address, part) : ServiceRoles.StreamSender(config, address, _share);
        Counters = StreamSendStats.Create(config.DetectorName, _share, options.Part);
        _images = new ImageBufferAttachment(config, LogWaiting, LogNoRing);
        try
        {
            _metadata = ZmqSocket.Subscriber(config.AssemblerEndpoint, receiveHwm: 100_000, receiveTimeoutMs: ReceiveTimeoutMs);
            (_push, _monitor) = ZmqSocket.BoundPusher(address, SendHighWaterMark(config, options), options.SendTimeoutMs,
                Zmq.EVENT_HANDSHAKE_SUCCEEDED | Zmq.EVENT_DISCONNECTED);
        }
        catch
        {
            _monitor?.Dispose();
            _push?.Dispose();
            _metadata?.Dispose();
            _image.Dispose();
            Counters.Dispose();
            _role.Dispose();
            throw;
        }
    }

    /// <summary>
    /// This sender's high-water mark: <see cref="HighWaterMark"/>, and when it lends images (checksums
    /// on) at most half the ImageBuffer's slots (at least 4): a lent image is read from its slot when
    /// libzmq sends it, so one queued longer than the ring takes to come round would go out torn
    /// (caught by the checksum, images_rewritten_in_flight) instead of being dropped at the mark.
    /// </summary>
    public static int SendHighWaterMark(DetectorConfig config, StreamSendOptions options)
    {
        int hwm = HighWaterMark(config, options.QueuedBytes);
        return options.Lend && options.Checksum ? Math.Clamp(config.ImageBufferSlotCount / 2, 4, hwm) : hwm;
    }

    /// <summary>The high-water mark in images: <paramref name="queuedBytes"/> (<see cref="QueuedBytes"/>) worth, at least 4 and at most 1000.</summary>
    public static int HighWaterMark(DetectorConfig config, long queuedBytes = QueuedBytes) => (int)Math.Clamp(queuedBytes / config.ImageBytes, 4, 1000);

    public Task RunAsync(CancellationToken ct) =>
        Task.Factory.StartNew(() => Run(ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    public void Run(CancellationToken ct)
    {
        _images.Wait(ct);
        LogStarted(_config.DetectorName, What, _config.AssemblerEndpoint, _config.ImageBufferName, _address,
            _options.Checksum ? "xxh3-64" : "off", _session.ToString("x16"));
        var time = _options.Time;
        var stats = new StatsPeriod<StreamSendCounter>(Counters, time, _config.StatsCollectionPeriod);
        while (!ct.IsCancellationRequested)
        {
            int n = _metadata.Receive(_metaBuffer);
            if (n >= 0)
                OnMetadata(n);
            TakeLoansBack();
            while (_monitor.TryRead(out int ev))
                OnConnectionEvent(ev);
            if (stats.TryTake(time.GetTimestamp(), out var change, out double seconds))
                LogStats(_config.DetectorName, _options.Part is { } part ? $"part {part}" : _share.ToString(), change.Format(seconds));
        }
        LogStopped(_config.DetectorName, What, Counters.Read().Format(0));
    }

    /// <summary>What this sender sends, for its log lines: "images i/N" or "part i/N".</summary>
    private string What => _options.Part is { } part ? $"part {part}" : $"images {_share}";

    private void OnConnectionEvent(int ev)
    {
        if (ev == Zmq.EVENT_HANDSHAKE_SUCCEEDED)
        {
            Counters[StreamSendCounter.ReceiverConnections]++;
            LogReceiverConnected(_address);
        }
        else if (ev == Zmq.EVENT_DISCONNECTED)
            LogReceiverGone(_address);
    }

    private void OnMetadata(int n)
    {
        Counters[StreamSendCounter.ImagesReceived]++;
        if (n != ImageMetadata.Size)
        {
            Counters[StreamSendCounter.MetadataMalformed]++;
            return;
        }
        var meta = ImageMetadata.Read(_metaBuffer);
        ulong id = meta.Id;
        if (_hasLast && id > _lastId)
            Counters[StreamSendCounter.MetadataGaps] += (long)_share.CountBetween(_lastId, id);
        _hasLast = true;
        _lastId = id;
        if (!_share.Includes(id))
        {
            Counters[StreamSendCounter.ImagesOtherShare]++;
            return;
        }
        var ring = _images.Ring;
        if (ring == null)
        {
            Counters[StreamSendCounter.ImagesNoBuffer]++;
            return;
        }
        long payload = PayloadBytes(meta);
        if (payload < 0 || payload > ring.SlotBytes)
        {
            Counters[StreamSendCounter.MetadataMalformed]++;
            return;
        }
        if (!ring.TryBeginRead(id, out int slot, out ulong seq))
        {
            Counters[StreamSendCounter.ImagesOverrun]++;
            return;
        }
        // The slot header and the bytes are read under the same lock; checked after both are copied.
        SlotHeader slotHeader = ring.Slot(slot);
        var (start, length) = _options.Part?.RangeOf(payload) ?? (0, payload);
        var bytes = ring.SlotSpan(slot).Slice((int)start, (int)length);
        // With a checksum the image is not copied: hashed in place, then lent to libzmq, which
        // writes it to the socket from the slot; bytes that change on the way (the slot rewritten
        // meanwhile) no longer match the checksum, so the receiver never takes them for the image.
        bool lend = _options.Lend && _options.Checksum && length >= LendMinBytes && _loans.CanLend;
        ulong? checksum = null;
        if (lend)
            checksum = StreamHeader.ChecksumOf(bytes);
        else
        {
            _image.Init((int)length);
            if (_options.Checksum)
                checksum = StreamHeader.CopyWithChecksum(bytes, _image.Data, _hash);
            else
                bytes.CopyTo(_image.Data);
        }
        _options.AfterCopy?.Invoke(id);
        if (!ring.Validate(slot, seq))
        {
            _image.Close();
            Counters[StreamSendCounter.ImagesOverrun]++;
            return;
        }
        if (lend)
            _image.InitLent(ring, slot, (int)start, (int)length, _loans, new Loan(slot, seq, Sent: true));
        new StreamHeader(_session, _sequence++, _share, (ulong)length, checksum, slotHeader, _options.Part).Write(_headerBuffer);
        if (Send(length))
        {
            Counters[StreamSendCounter.ImagesSent]++;
            Counters[StreamSendCounter.BytesSent] += length;
        }
        else
        {
            Counters[StreamSendCounter.ImagesDroppedHwm]++;
            if (lend)
                _loans.ReplaceLatest(new Loan(slot, seq, Sent: false));
        }
        _image.Close();
    }

    /// <summary>The images libzmq has given back since: a sent one whose slot had another version by then may have gone out torn (the receiver's checksum tells).</summary>
    private void TakeLoansBack()
    {
        while (_loans.TryTakeReturned(out var loan, out ulong sequenceThen))
            if (loan.Sent && sequenceThen != loan.Sequence)
                Counters[StreamSendCounter.ImagesRewrittenInFlight]++;
    }

    /// <summary>
    /// Sends [metadata, image, header] as one message. The first frame decides: it waits for room
    /// (once it found none: send_blocked) at most the send timeout, not at all while the stream is
    /// stalled. Once it is queued the others follow into the same pipe (libzmq counts whole messages
    /// against the high-water mark).
    /// </summary>
    private bool Send(long payload)
    {
        var meta = _metaBuffer.AsSpan(0, ImageMetadata.Size);
        bool queued = _push.TrySend(meta, more: true);
        if (!queued && !_stalled)
        {
            Counters[StreamSendCounter.SendBlocked]++;
            queued = _push.Send(meta, more: true);
            if (!queued)
                LogStalled(_address, _options.SendTimeoutMs);
        }
        if (!queued)
        {
            _stalled = true;
            return false;
        }
        if (_stalled)
            LogFlowing(_address);
        _stalled = false;
        bool whole = _image.Send(_push.Handle, Zmq.SNDMORE);
        // The last frame ends the message even if the image did not go (libzmq then drops the rest of it).
        whole &= _push.Send(_headerBuffer);
        return whole;
    }

    /// <summary>Bytes of the image in its slot: user_2 for bitshuffle-LZ4, else height x width x bytes per pixel; -1 if the metadata says nothing sensible.</summary>
    private static long PayloadBytes(in ImageMetadata meta)
    {
        if (meta.Encoding == (ushort)ImageEncoding.BitshuffleLz4)
            return meta.User2 <= int.MaxValue ? (long)meta.User2 : -1;
        if (meta.Encoding != (ushort)ImageEncoding.Raw || !Enum.IsDefined((ImageDtype)meta.Dtype)
            || meta.Height > int.MaxValue || meta.Width > int.MaxValue)
            return -1;
        ulong bytes = meta.Height * meta.Width * (ulong)ImageMetadata.BytesPerPixel((ImageDtype)meta.Dtype);
        return bytes <= int.MaxValue ? (long)bytes : -1;
    }

    /// <summary>
    /// For a program about to exit after <see cref="Run"/>: disposes the sender with its socket's
    /// linger set to <paramref name="lingerMs"/>, then ends the process's ZMQ context, which waits
    /// while libzmq hands the images still queued to TCP (at most the linger), and logs whether they
    /// all went. (Disposed as usual, the queue is dropped at once.) libzmq does not say how many it
    /// dropped when the linger ran out; the receiver counts them (images_lost_sender_restart) when a
    /// sender starts again. Not for a process that goes on using ZMQ.
    /// </summary>
    public bool DisposeFlushing(int lingerMs)
    {
        if (!_disposed)
            _push.SetInt(Zmq.LINGER, lingerMs);
        // Timed from here: Dispose waits for libzmq to give back the images lent to it, which it
        // does as it sends them (or drops them when the linger ends).
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        Dispose();
        bool ended = ZmqSocket.TerminateContext(TimeSpan.FromMilliseconds(lingerMs + 1000));
        var took = System.Diagnostics.Stopwatch.GetElapsedTime(start);
        bool flushed = ended && took < TimeSpan.FromMilliseconds(lingerMs);
        if (flushed)
            LogFlushed((long)took.TotalMilliseconds);
        else
            LogNotFlushed(lingerMs);
        return flushed;
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _monitor.Dispose();
        _push.Dispose();
        _metadata.Dispose();
        _image.Dispose();
        // libzmq drops what it still holds once the socket is closed; the slots it reads from
        // stay mapped until it has given them all back (else the mapping is left, not unmapped under it).
        if (_loans.WaitAllReturned(TimeSpan.FromSeconds(5)))
            _images.Dispose();
        _loans.Dispose();
        Counters.Dispose();
        _role.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "StdStreamSend {Detector} {Share}: metadata from {Metadata}, images from /dev/shm/{Ring}, sending on {Address} (checksum {Checksum}, session {Session})")]
    private partial void LogStarted(string detector, string share, string metadata, string ring, string address, string checksum, string session);

    [LoggerMessage(Level = LogLevel.Information, Message = "a receiver connected to {Address}")]
    private partial void LogReceiverConnected(string address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "a receiver of {Address} went away")]
    private partial void LogReceiverGone(string address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Address}: no room for an image within {TimeoutMs} ms (receiver slow or absent); dropping images until it takes one")]
    private partial void LogStalled(string address, int timeoutMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Address}: images flow again")]
    private partial void LogFlowing(string address);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Message}")]
    private partial void LogWaiting(string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "image buffer not available: {Error}")]
    private partial void LogNoRing(string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "stats {Detector} stream_send {Share}: {Line}")]
    private partial void LogStats(string detector, string share, string line);

    [LoggerMessage(Level = LogLevel.Information, Message = "queue flushed at stop: every image sent was handed to TCP ({Ms} ms)")]
    private partial void LogFlushed(long ms);

    [LoggerMessage(Level = LogLevel.Warning, Message = "queue not flushed at stop: images still queued after {LingerMs} ms were dropped (receiver slow or gone; it counts them as images_lost_sender_restart when a sender starts again)")]
    private partial void LogNotFlushed(int lingerMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "StdStreamSend {Detector} {Share} stopped; totals: {Line}")]
    private partial void LogStopped(string detector, string share, string line);
}
