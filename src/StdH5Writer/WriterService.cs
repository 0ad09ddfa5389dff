using Microsoft.Extensions.Logging;
using StdDaq.Shared.Compression;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Metrics;
using StdDaq.Shared.Streams;

namespace StdDaq.Writer;

public sealed record WriterOptions
{
    /// <summary>The config file's text, stored in every file as the <c>config</c> attribute.</summary>
    public string? ConfigText { get; init; }
    /// <summary>Called before each image is written (index in the run); lets a test make the writer slow.</summary>
    internal Action<long>? BeforeImage { get; init; }
    /// <summary>The clock of the flush interval and the stats period (tests give a fake one).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// StdH5Writer: consumes StoreStream messages (DESIGN §6), opens the run's file on its first image,
/// writes each image straight from its ImageBuffer slot as one HDF5 chunk, checks the slot's
/// sequence lock after reading it (an overwritten slot is recorded as missing, never written as
/// good), flushes every writer_flush_interval_s, closes on the close message and acknowledges each
/// step to the WriterAgent. A failing file fails its run only; the writer goes on with the next.
/// </summary>
public sealed partial class WriterService : IDisposable
{
    private readonly DetectorConfig _config;
    private readonly WriterOptions _options;
    private readonly ILogger _logger;
    private readonly int _height, _width, _elemSize;
    private readonly long _imageBytes;
    private readonly byte[] _message = new byte[StoreStreamMessage.MaxBytes];
    private readonly RoleLock _role;
    private readonly ImageBufferAttachment _images;
    private Run? _run;
    private byte[]? _compressed;
    private byte[]? _zeros;
    private readonly List<int> _lacking = [];
    private readonly NxmxDetector _detector;

    public CounterSet<WriterCounter> Counters { get; }

    public WriterService(DetectorConfig config, WriterOptions options, ILogger logger)
    {
        _config = config;
        _options = options;
        _logger = logger;
        _height = config.ImagePixelHeight;
        _width = config.ImagePixelWidth;
        _elemSize = ImageMetadata.BytesPerPixel(config.ImageDtype);
        _imageBytes = config.ImageBytes;
        _detector = NxmxDetector.From(config); // reads the calibration's pixel mask once, at start
        if (config.Kind == DetectorKind.Gigafrost && (config.Nexus.PixelSizeUm == null || config.Nexus.SensorThicknessUm == null))
            LogGigafrostNexus(_logger);
        // One writer per detector: two would both write every requested file.
        _role = ServiceRoles.Writer(config);
        Counters = WriterStats.Create(config.DetectorName);
        Counters.AddGauge("run_open", () => _run != null ? 1 : 0, "writer: 1 while a run's file is open");
        _images = new ImageBufferAttachment(config, m => LogWaiting(_logger, m), e => LogNoRing(_logger, e));
        RecoverLeftOpen();
    }

    /// <summary>
    /// A writer that died (SIGKILL, OOM, power) left the file it wrote flagged as open for SWMR
    /// writing, which only SWMR readers open; it noted the file in its role lock. Holding the role
    /// now, this writer knows nobody writes it any more and clears the flag, so every reader opens
    /// it again (as at its last flush, marked interrupted, "not closed").
    /// </summary>
    private void RecoverLeftOpen()
    {
        if (_role.PreviousNote is not { } path)
            return;
        try
        {
            if (NexusImageFile.Recover(path))
                LogRecovered(_logger, path);
        }
        catch (Exception e) when (e is Hdf5Exception or IOException or InvalidDataException or UnauthorizedAccessException)
        {
            LogNotRecovered(_logger, path, e.Message);
        }
    }

    /// <summary>The run being written: its file, where it is, what is missing so far.</summary>
    private sealed class Run(StoreStreamMessage first, ImageCompression defaultCompression)
    {
        public long RunId { get; } = first.RunId;
        public string? RequestId { get; } = first.RequestId;
        public string OutputFile { get; } = first.OutputFile;
        public long NImages { get; } = first.NImages;
        /// <summary>The message's compression, else writer_compression (a std-daq writer agent names none).</summary>
        public bool Compressed { get; } = (first.Compression is { } named && Choices.Compression.TryParse(named, out var c) ? c : defaultCompression)
            == ImageCompression.BitshuffleLz4;
        public NexusImageFile? File { get; set; }
        /// <summary>Set when the run failed or ended early: later messages of the run are ignored.</summary>
        public bool Ended { get; set; }
        public long NextIImage { get; set; }
        public long Written { get; set; }
        public List<MissingImage> Missing { get; } = [];
        /// <summary>Images written with status incomplete (1) or id mismatch (2).</summary>
        public long Incomplete { get; set; }
        /// <summary>Module → images written without it.</summary>
        public Dictionary<string, long> ModulesMissing { get; } = [];
        /// <summary>When the file was last flushed (a timestamp of the writer's clock).</summary>
        public long LastFlush { get; set; }
    }

    public Task RunAsync(CancellationToken ct) =>
        Task.Factory.StartNew(() => Loop(ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Loop(CancellationToken ct)
    {
        _images.Wait(ct);
        using var store = ZmqSocket.Subscriber(_config.WriterAgentEndpoint, receiveHwm: 100_000, receiveTimeoutMs: 50);
        // The agent's process going away (killed, crashed) closes its connection: a run it left open
        // is closed as interrupted once its last messages are handled, not kept open until the next run.
        using var agent = new ZmqMonitor(store, Zmq.EVENT_DISCONNECTED);
        bool agentLost = false;
        using var acks = ZmqSocket.Pusher(_config.WriterStatusEndpoint);
        LogStarting(_logger, _config.DetectorName, _config.WriterAgentEndpoint, _config.WriterStatusEndpoint, _config.ImageBufferName,
            _config.WriterFlushIntervalS);
        var time = _options.Time;
        var stats = new StatsPeriod<WriterCounter>(Counters, time, _config.StatsCollectionPeriod);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                int n = store.Receive(_message);
                while (agent.TryRead(out int ev))
                    agentLost |= ev == Zmq.EVENT_DISCONNECTED;
                if (n < 0 && agentLost)
                {
                    // Nothing of the departed agent is left to read.
                    agentLost = false;
                    if (_run is { Ended: false } orphan)
                    {
                        Counters[WriterCounter.RunsOrphaned]++;
                        End(orphan, acks, "the writer agent went away during the run (its StoreStream connection closed)");
                        _run = null;
                    }
                }
                if (n >= 0)
                {
                    try
                    {
                        Handle(n, acks);
                    }
                    catch (Exception e) when (e is not OutOfMemoryException && _run is { Ended: false } failing)
                    {
                        // A fault this code did not foresee fails the run, loudly, not the writer.
                        Fail(failing, acks, $"writer error on '{failing.OutputFile}': {e.GetType().Name}: {e.Message}");
                    }
                }
                if (_run is { File: not null, Ended: false } run && time.GetElapsedTime(run.LastFlush).TotalSeconds >= _config.WriterFlushIntervalS)
                    Flush(run, acks);
                // Totals, as the writer's line always gave them.
                if (stats.TryTake(time.GetTimestamp(), out _, out _))
                    LogStats(_logger, Counters.Read().Format());
            }
        }
        finally
        {
            if (_run is { } open)
                End(open, acks, "the writer was stopped");
        }
    }

    private void Handle(int n, ZmqSocket acks)
    {
        if (n > _message.Length)
        {
            Counters[WriterCounter.MalformedMessages]++;
            LogMalformed(_logger, $"message of {n} bytes is larger than {_message.Length}");
            return;
        }
        var m = StoreStreamMessage.Parse(_message.AsSpan(0, n), out string? error);
        if (m == null)
        {
            Counters[WriterCounter.MalformedMessages]++;
            LogMalformed(_logger, error!);
            return;
        }
        if (m.Master is { } master)
        {
            WriteMaster(m, master, acks);
            return;
        }
        if (_run is { } current && current.RunId != m.RunId)
        {
            if (!current.Ended)
                End(current, acks, $"run {m.RunId} started before run {current.RunId} was closed");
            _run = null;
        }
        if (m.IsClose)
        {
            if (_run is { Ended: false } run)
                End(run, acks, m.Interrupted);
            else if (_run == null)
                // None of the run's images reached this writer (it started late, or they were lost):
                // say so now rather than leave the agent waiting for a file that never was.
                Ack(acks, new Run(m, _config.WriterCompression) { Ended = true }, WriterAck.Error, $"no image of run {m.RunId} reached the writer; no file was written");
            _run = null;
            return;
        }
        if (_run == null)
        {
            _run = new Run(m, _config.WriterCompression);
            if (m.IImage != 0)
            {
                // The first message of the run was lost: nothing safe to write; say so once.
                _run.Ended = true;
                Ack(acks, _run, WriterAck.Error, $"StoreStream messages lost: the run's first message was i_image {m.IImage}, not 0");
                return;
            }
            Open(_run, m, acks);
        }
        var r = _run;
        if (r.Ended)
            return;
        if (m.IImage != r.NextIImage)
        {
            Counters[WriterCounter.StreamGaps]++;
            End(r, acks, $"StoreStream messages lost: expected i_image {r.NextIImage}, got {m.IImage}");
            return;
        }
        r.NextIImage++;
        WriteImage(r, m.IImage, m.ImageId!.Value, acks);
    }

    private void Open(Run r, StoreStreamMessage m, ZmqSocket acks)
    {
        var attributes = FileAttributes(m, r.RequestId);
        try
        {
            r.File = NexusImageFile.Create(r.OutputFile,
                new NexusFileOptions(r.NImages, _height, _width, (ushort)_config.ImageDtype, r.Compressed, attributes)
                {
                    Detector = _detector,
                    Run = m.Nxmx ?? NxmxRun.None,
                }, m.Overwrite, _config.WriterOutputRoots);
        }
        catch (Exception e) when (e is Hdf5Exception or IOException or UnauthorizedAccessException or ArgumentException)
        {
            Fail(r, acks, $"cannot create '{r.OutputFile}': {e.Message}");
            return;
        }
        _role.SetNote(Path.GetFullPath(r.OutputFile)); // for the next writer, should this one die with the file open
        r.LastFlush = _options.Time.GetTimestamp();
        Counters[WriterCounter.FilesOpened]++;
        LogOpened(_logger, r.OutputFile, r.RunId, r.NImages,
            Choices.Compression.Name(r.Compressed ? ImageCompression.BitshuffleLz4 : ImageCompression.None));
        Ack(acks, r, WriterAck.Opened, null);
    }

    private void WriteImage(Run r, long index, ulong id, ZmqSocket acks)
    {
        _options.BeforeImage?.Invoke(index);
        var file = r.File!;
        var ring = _images.Ring;
        try
        {
            if (ring == null)
            {
                Missing(r, index, id, $"image buffer /dev/shm/{_config.ImageBufferName} not found");
                return;
            }
            if (!ring.TryBeginRead(id, out int slot, out ulong seq))
            {
                Missing(r, index, id, "overwritten in the image buffer before it was written");
                return;
            }
            var image = ring.SlotSpan(slot)[..(int)_imageBytes];
            ref readonly var header = ref ring.Slot(slot);
            ushort status = (ushort)header.Status;
            ulong frameIndex = header.FrameIndex;
            long receivedAt = header.ReceiveTimeNs;
            // Which modules the image lacks, read with the pixels (the sequence lock covers both).
            _lacking.Clear();
            if (status != (ushort)ImageStatus.Good && header.NMissingModules != 0)
                for (int m = 0; m < _config.NModules && m < SlotHeader.MaxModules; m++)
                    if (!header.HasModule(m))
                        _lacking.Add(m);
            if (r.Compressed)
            {
                _compressed ??= new byte[BitshuffleLz4.MaxCompressedSize((int)_imageBytes, _elemSize)];
                int n = BitshuffleLz4.Compress(image, _elemSize, _compressed);
                // Compressed from a slot that was overwritten meanwhile: do not write it at all.
                if (!ring.Validate(slot, seq))
                {
                    Missing(r, index, id, "overwritten in the image buffer while it was written");
                    return;
                }
                file.WriteImage(index, _compressed.AsSpan(0, n), id, status, frameIndex, receivedAt);
                Counters[WriterCounter.BytesWritten] += n;
            }
            else
            {
                // Straight from the slot to the file; if the slot changed meanwhile, what went to
                // the file is torn: replace it with zeros and record the image as missing.
                file.WriteImage(index, image, id, status, frameIndex, receivedAt);
                if (!ring.Validate(slot, seq))
                {
                    _zeros ??= new byte[_imageBytes];
                    file.Unwrite(index, _zeros);
                    AddMissing(r, index, id, "overwritten in the image buffer while it was written");
                    return;
                }
                Counters[WriterCounter.BytesWritten] += _imageBytes;
            }
            r.Written++;
            Counters[WriterCounter.ImagesWritten]++;
            if (status != (ushort)ImageStatus.Good)
            {
                r.Incomplete++;
                foreach (int m in _lacking)
                    r.ModulesMissing[m.ToString()] = r.ModulesMissing.GetValueOrDefault(m.ToString()) + 1;
            }
        }
        catch (Exception e) when (e is Hdf5Exception or IOException)
        {
            Fail(r, acks, $"writing image {id} (i_image {index}) to '{r.OutputFile}' failed: {e.Message}");
        }
        catch (InvalidOperationException e)
        {
            // The file refuses writes after an earlier error; that error was reported already.
            Fail(r, acks, $"'{r.OutputFile}': {e.Message}");
        }
    }

    private void Missing(Run r, long index, ulong id, string reason)
    {
        r.File!.MarkMissing(index, id);
        AddMissing(r, index, id, reason);
    }

    private void AddMissing(Run r, long index, ulong id, string reason)
    {
        r.Missing.Add(new MissingImage(index, id, reason));
        Counters[WriterCounter.ImagesMissing]++;
    }

    private void Flush(Run r, ZmqSocket acks)
    {
        r.LastFlush = _options.Time.GetTimestamp();
        try
        {
            r.File!.Flush();
        }
        catch (Exception e) when (e is Hdf5Exception or IOException)
        {
            Fail(r, acks, $"flushing '{r.OutputFile}' failed: {e.Message}");
            return;
        }
        Ack(acks, r, WriterAck.Progress, null);
    }

    /// <summary>Closes the run's file (interrupted when <paramref name="interrupted"/> says why) and acknowledges.</summary>
    private void End(Run r, ZmqSocket acks, string? interrupted)
    {
        r.Ended = true;
        if (r.File == null)
            return;
        if (interrupted == null && r.NextIImage < r.NImages)
            interrupted = $"closed after {r.NextIImage} of {r.NImages} images";
        try
        {
            r.File.Close(interrupted != null, interrupted);
        }
        catch (Exception e) when (e is Hdf5Exception or IOException)
        {
            Release(r);
            Fail(r, acks, $"closing '{r.OutputFile}' failed: {e.Message}");
            return;
        }
        Release(r);
        Counters[WriterCounter.FilesClosed]++;
        if (interrupted != null)
            Counters[WriterCounter.FilesInterrupted]++;
        LogClosed(_logger, r.OutputFile, r.Written, r.NImages, r.Missing.Count, interrupted ?? "complete");
        Ack(acks, r, WriterAck.Closed, null, interrupted);
    }

    private void Fail(Run r, ZmqSocket acks, string message)
    {
        r.Ended = true;
        Counters[WriterCounter.FilesFailed]++;
        if (r.File != null)
        {
            try
            {
                r.File.Close(true, message);
            }
            catch (Exception e) when (e is Hdf5Exception or IOException)
            {
                // The file is already broken (full disk); Dispose releases what is left.
            }
            Release(r);
        }
        LogFailed(_logger, message);
        Ack(acks, r, WriterAck.Error, message);
    }

    /// <summary>Releases the run's file (closed or not) and the note of it in the role lock.</summary>
    private void Release(Run r)
    {
        r.File?.Dispose();
        r.File = null;
        _role.SetNote(null);
    }

    /// <summary>
    /// Scale-out writing: the master file over the share files of a request (its lead's agent asks
    /// once every share file is closed); answered with a "master" or "error" acknowledgement.
    /// </summary>
    private void WriteMaster(StoreStreamMessage m, MasterSpec spec, ZmqSocket acks)
    {
        var attributes = FileAttributes(m, m.RequestId);
        var ack = new WriterAck { Event = WriterAck.Master, RunId = m.RunId, RequestId = m.RequestId, OutputFile = m.OutputFile };
        try
        {
            var options = new NexusFileOptions(m.NImages, _height, _width, (ushort)_config.ImageDtype, false, attributes)
            {
                Detector = _detector,
                Run = m.Nxmx ?? NxmxRun.None,
            };
            var result = NexusMasterFile.Write(m.OutputFile, options, spec, m.Interrupted, m.Overwrite, _config.WriterOutputRoots);
            ack = ack with { NImagesWritten = result.ImagesWritten };
            Counters[WriterCounter.FilesOpened]++;
            Counters[WriterCounter.FilesClosed]++;
            LogMaster(_logger, m.OutputFile, spec.Files.Count, result.ImagesWritten, m.NImages);
        }
        catch (Exception e) when (e is Hdf5Exception or IOException or UnauthorizedAccessException or ArgumentException or InvalidDataException)
        {
            ack = ack with { Event = WriterAck.Error, Message = $"cannot write the master file '{m.OutputFile}': {e.Message}" };
            Counters[WriterCounter.FilesFailed]++;
            LogMasterFailed(_logger, m.OutputFile, e.Message);
        }
        if (!acks.TrySend(ack.ToJson()))
            Counters[WriterCounter.AcksDropped]++;
    }

    /// <summary>A file's root attributes: the message's, the config, the request id.</summary>
    private List<KeyValuePair<string, string>> FileAttributes(StoreStreamMessage m, string? requestId)
    {
        var attributes = new List<KeyValuePair<string, string>>();
        if (m.Attributes != null)
            attributes.AddRange(m.Attributes);
        if (_options.ConfigText != null)
            attributes.Add(new("config", _options.ConfigText));
        if (requestId != null && m.Attributes?.ContainsKey("request_id") != true)
            attributes.Add(new("request_id", requestId));
        return attributes;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "master file {File}: {Shares} share files, {Written} of {N} images")]
    private static partial void LogMaster(ILogger logger, string file, int shares, long written, long n);

    [LoggerMessage(Level = LogLevel.Warning, Message = "master file {File} not written: {Reason}")]
    private static partial void LogMasterFailed(ILogger logger, string file, string reason);

    private void Ack(ZmqSocket acks, Run r, string ev, string? message, string? interrupted = null)
    {
        var ack = new WriterAck
        {
            Event = ev,
            RunId = r.RunId,
            RequestId = r.RequestId,
            OutputFile = r.OutputFile,
            NImagesWritten = r.Written,
            Missing = ev is WriterAck.Closed or WriterAck.Error ? r.Missing : null,
            NImagesIncomplete = r.Incomplete,
            ModulesMissing = ev is WriterAck.Closed or WriterAck.Error && r.ModulesMissing.Count > 0 ? r.ModulesMissing : null,
            Interrupted = interrupted,
            Message = message,
        };
        if (!acks.TrySend(ack.ToJson()))
            Counters[WriterCounter.AcksDropped]++;
    }

    public void Dispose()
    {
        _images.Dispose();
        _role.Dispose();
        Counters.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "StdH5Writer {Detector}: StoreStream from {Store}, acks to {Acks}, images from /dev/shm/{Ring}, flush every {Flush} s")]
    private static partial void LogStarting(ILogger logger, string detector, string store, string acks, string ring, double flush);

    [LoggerMessage(Level = LogLevel.Information, Message = "opened {File} for run {RunId}: {N} images, compression {Compression}")]
    private static partial void LogOpened(ILogger logger, string file, long runId, long n, string compression);

    [LoggerMessage(Level = LogLevel.Information, Message = "closed {File}: {Written} of {N} images written, {Missing} missing ({How})")]
    private static partial void LogClosed(ILogger logger, string file, long written, long n, int missing, string how);

    [LoggerMessage(Level = LogLevel.Warning, Message = "config: nexus.pixel_size_um or nexus.sensor_thickness_um not set: "
        + "gigafrost files then say 11 µm pixels, the sensor's pitch rather than the pixel size behind the optics, and have no sensor_thickness, without which DIALS does not read them")]
    private static partial void LogGigafrostNexus(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "recovered {File}: the writer before this one died writing it; every reader opens it now, as at that writer's last flush (interrupted, not closed)")]
    private static partial void LogRecovered(ILogger logger, string file);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cannot recover {File}, which the writer before this one had open when it died: {Error}; 'h5clear -s' on the file makes it readable")]
    private static partial void LogNotRecovered(ILogger logger, string file, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Message}")]
    private static partial void LogFailed(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "StoreStream message ignored: {Error}")]
    private static partial void LogMalformed(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Message}")]
    private static partial void LogWaiting(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "image buffer not available: {Error}")]
    private static partial void LogNoRing(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "stats: {Stats}")]
    private static partial void LogStats(ILogger logger, string stats);
}
