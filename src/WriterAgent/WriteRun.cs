using System.Text.Json;
using System.Text.Json.Nodes;
using StdDaq.Shared.Config;
using StdDaq.Shared.Streams;

namespace StdDaq.Agent;

/// <summary>How a write request ended: the status action and the message the user sees, and the numbers as JSON (null: none, e.g. it failed before writing).</summary>
public sealed record RunOutcome(bool Success, string Message, long ImagesWritten)
{
    public JsonObject? Summary { get; init; }
}

/// <summary>
/// A run that writes one share of a request (scale-out writing, <c>--images i/N</c>): the request's
/// images are the ids First .. First + n_images - 1, and this share writes those with id % N == i,
/// in id order, into its own file (<see cref="FileOf"/>), one row per id whether it came or not.
/// </summary>
/// <param name="Share">This agent's share i/N.</param>
/// <param name="First">
/// Fixes the request's first image id and run id: called with each id the stream shows (null when
/// none came) until it returns them; the lead (share 0) takes them from its stream, the others from
/// the lead's announcement.
/// </param>
public sealed record ShareMode(ImageShare Share, Func<ulong?, (ulong First, long RunId)?> First)
{
    /// <summary>The file of share i/N of a request for <paramref name="outputFile"/>: "run.h5" → "run_share0of2.h5".</summary>
    public static string FileOf(string outputFile, ImageShare share)
    {
        string dir = Path.GetDirectoryName(outputFile) ?? "";
        string ext = Path.GetExtension(outputFile);
        return Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(outputFile)}_share{share.Index}of{share.Count}{ext}");
    }

    /// <summary>The first id of share <paramref name="share"/> at or after <paramref name="first"/>.</summary>
    public static ulong FirstOf(ulong first, ImageShare share) =>
        first + ((ulong)share.Index + (ulong)share.Count - first % (ulong)share.Count) % (ulong)share.Count;

    /// <summary>How many of the ids first .. first + n - 1 are in <paramref name="share"/>.</summary>
    public static long CountOf(ulong first, long n, ImageShare share)
    {
        long offset = (long)(FirstOf(first, share) - first);
        return offset >= n ? 0 : (n - offset + share.Count - 1) / share.Count;
    }
}

/// <summary>
/// One write request on the data side: subscribes to the assembler's ImageMetadata, forwards the
/// next n_images images to the writer as StoreStream messages, sends the close message, and waits
/// for the writer's "closed" acknowledgement. Runs on one thread (it owns no sockets; the agent's
/// PUB and PULL are lent to it for the run).
/// </summary>
public sealed class WriteRun
{
    private readonly DetectorConfig _config;
    private readonly WriteRequest _request;
    private readonly string _requestId;
    private long _runId;
    private readonly ShareMode? _mode;
    private long _nImages;
    private string _outputFile;
    private readonly StorePublisher _store;
    private readonly ZmqSocket _acks;
    private readonly WriteRunTimeouts _timeouts;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly TimeProvider _time;

    public WriteRun(DetectorConfig config, WriteRequest request, string requestId, long runId,
        StorePublisher store, ZmqSocket acks, WriteRunTimeouts timeouts, TimeProvider? time = null, ShareMode? mode = null)
    {
        _mode = mode;
        _nImages = mode == null ? request.NImages : -1; // a share's count is known once its first id is
        _outputFile = mode == null ? request.OutputFile : ShareMode.FileOf(request.OutputFile, mode.Share);
        _time = time ?? TimeProvider.System;
        _config = config;
        _request = request;
        _requestId = requestId;
        _runId = runId;
        _store = store;
        _acks = acks;
        _timeouts = timeouts;
    }

    /// <summary>Images forwarded to the writer so far.</summary>
    public long Forwarded => Volatile.Read(ref _forwarded);
    private long _forwarded;

    /// <summary>Images the writer reported written so far.</summary>
    public long Written => Volatile.Read(ref _written);
    private long _written;

    /// <summary>Image ids the stream skipped between two forwarded images (assembler drops, HWM).</summary>
    public long StreamGaps { get; private set; }

    /// <summary>Images this run writes: the request's n_images, or a share's part of them (-1 until its first id is fixed).</summary>
    public long ImagesToWrite => Volatile.Read(ref _nImages);

    /// <summary>The file this run writes (a share's own file in scale-out writing).</summary>
    public string OutputFile => _outputFile;

    /// <summary>A share's run: the request's first image id, once fixed.</summary>
    public ulong? FirstImageId { get; private set; }

    /// <summary>The run id (a share takes the lead's).</summary>
    public long RunId => _runId;

    // A share's run: the next id to forward, the highest id the stream showed, the first it showed,
    // and the ids it showed before the first id was fixed (so they do not count as gaps).
    private ulong _next;
    private ulong? _highest, _firstSeen;
    private readonly HashSet<ulong> _seenEarly = [];

    /// <summary>Runs the request; <paramref name="kill"/> ends it early (file closed as interrupted).</summary>
    public RunOutcome Execute(Func<string?> killReason, CancellationToken stopping)
    {
        DrainStaleAcks();
        if (!_store.WaitForWriter(_timeouts.Open, stopping))
            return new RunOutcome(false,
                $"no StdH5Writer is connected to {_config.WriterAgentEndpoint} (is it running for detector '{_config.DetectorName}'?)", 0);
        using var images = ZmqSocket.Subscriber(_config.AssemblerEndpoint, receiveTimeoutMs: 50);
        var meta = new byte[ImageMetadata.Size + 8];
        ulong? lastId = null;
        string? interrupted = null;
        WriterAck? terminal = null;
        long? firstSent = null; // when the first image went to the writer (timestamp)
        bool opened = false;

        while (_nImages < 0 || _forwarded < _nImages)
        {
            if (killReason() is { } reason)
            {
                interrupted = reason;
                break;
            }
            if (stopping.IsCancellationRequested)
            {
                interrupted = "the writer agent is shutting down";
                break;
            }
            while (TryReadAck(0) is { } ack)
            {
                if (ack.Event == WriterAck.Opened)
                    opened = true;
                else if (ack.Event is WriterAck.Closed or WriterAck.Error)
                    terminal = ack;
            }
            if (terminal != null)
                break;
            if (!opened && firstSent is { } first && _time.GetElapsedTime(first) > _timeouts.Open)
            {
                SendClose("the writer did not answer");
                return new RunOutcome(false,
                    $"StdH5Writer did not acknowledge opening '{_outputFile}' within {_timeouts.Open.TotalSeconds:F0} s " +
                    $"(is StdH5Writer running for detector '{_config.DetectorName}'?)", 0);
            }
            int n = images.Receive(meta);
            if (_mode != null)
            {
                ForwardShare(n == ImageMetadata.Size ? ImageMetadata.Read(meta).Id : null);
                if (_forwarded > 0)
                    firstSent ??= _time.GetTimestamp();
                continue;
            }
            if (n < 0)
                continue;
            if (n != ImageMetadata.Size)
                continue; // not an ImageMetadata; the assembler's stream has only those
            var m = ImageMetadata.Read(meta);
            if (m.Id < _request.StartImageId)
                continue;
            if (lastId is { } last && m.Id > last + 1)
                StreamGaps += (long)(m.Id - last - 1);
            lastId = m.Id;
            Send(Message(_forwarded, m.Id));
            if (_forwarded == 0)
                firstSent = _time.GetTimestamp();
            Interlocked.Increment(ref _forwarded);
        }

        if (_nImages == 0 && interrupted == null)
        {
            // A share with none of the request's ids (n_images < N): nothing to write, no file.
            var none = new JsonObject { ["output_file"] = null, ["run_id"] = _runId, ["n_images_requested"] = 0, ["n_images_written"] = 0 };
            return new RunOutcome(true, none.ToJsonString(), 0) { Summary = none };
        }
        if (terminal == null)
        {
            SendClose(interrupted);
            terminal = WaitClosed(out string? waitError);
            if (terminal == null)
                return new RunOutcome(false, waitError!, Written);
        }
        else
        {
            // The writer ended the run on its own (error, lost messages): reset its state for the run.
            SendClose(terminal.Interrupted ?? terminal.Message ?? "writer ended the run");
        }
        return Outcome(terminal, interrupted);
    }

    private RunOutcome Outcome(WriterAck ack, string? interrupted)
    {
        Volatile.Write(ref _written, ack.NImagesWritten);
        if (ack.Event == WriterAck.Error)
            return new RunOutcome(false, $"writing '{_outputFile}' failed: {ack.Message}", ack.NImagesWritten);
        var missing = ack.Missing ?? [];
        var summary = new JsonObject
        {
            ["output_file"] = _outputFile,
            ["run_id"] = _runId,
            ["n_images_requested"] = _nImages,
            ["n_images_written"] = ack.NImagesWritten,
            ["n_images_missing"] = missing.Count,
            ["missing_image_ids"] = new JsonArray(missing.Select(x => (JsonNode)x.ImageId).ToArray()),
            ["missing_reasons"] = Reasons(missing),
            ["stream_gaps"] = StreamGaps,
            ["n_images_incomplete"] = ack.NImagesIncomplete,
            ["modules_missing"] = ModulesMissing(ack.ModulesMissing),
        };
        string? why = interrupted ?? ack.Interrupted;
        if (why != null)
        {
            summary["interrupted"] = why;
            return new RunOutcome(false,
                $"interrupted ({why}): '{_outputFile}' closed with {ack.NImagesWritten} of {_nImages} images and marked interrupted; " +
                summary.ToJsonString(), ack.NImagesWritten) { Summary = summary };
        }
        if (ack.NImagesIncomplete > 0 && _config.WriterIncompletePolicy == WriterIncompletePolicy.Fail)
            return new RunOutcome(false,
                $"incomplete: {ack.NImagesIncomplete} of {ack.NImagesWritten} images written to '{_outputFile}' are incomplete "
                + $"(writer_incomplete_policy is fail); " + summary.ToJsonString(), ack.NImagesWritten) { Summary = summary };
        return new RunOutcome(true, summary.ToJsonString(), ack.NImagesWritten) { Summary = summary };
    }

    /// <summary>{"module id": images without it}, in module order.</summary>
    private static JsonObject ModulesMissing(Dictionary<string, long>? modules)
    {
        var o = new JsonObject();
        foreach (var (m, n) in (modules ?? []).OrderBy(kv => int.TryParse(kv.Key, out int i) ? i : int.MaxValue))
            o[m] = n;
        return o;
    }

    /// <summary>Missing images grouped by reason: {"reason": count}.</summary>
    private static JsonObject Reasons(List<MissingImage> missing)
    {
        var o = new JsonObject();
        foreach (var g in missing.GroupBy(x => x.Reason))
            o[g.Key] = g.Count();
        return o;
    }

    private WriterAck? WaitClosed(out string? error)
    {
        // The writer may still be behind by a whole ring of images; every acknowledgement (progress
        // comes at each flush) shows it is alive, so only silence counts against the timeout.
        long silentSince = _time.GetTimestamp();
        while (_time.GetElapsedTime(silentSince) < _timeouts.Close)
        {
            if (TryReadAck(100) is not { } ack)
                continue;
            silentSince = _time.GetTimestamp();
            if (ack.Event is WriterAck.Closed or WriterAck.Error)
            {
                error = null;
                return ack;
            }
        }
        error = $"StdH5Writer did not confirm closing '{_outputFile}' within {_timeouts.Close.TotalSeconds:F0} s " +
                $"of silence ({Forwarded} images forwarded, {Written} confirmed written); the file may be incomplete";
        return null;
    }

    /// <summary>The run's next acknowledgement, waiting up to <paramref name="timeoutMs"/> for it (0: only one already queued).</summary>
    private WriterAck? TryReadAck(int timeoutMs)
    {
        long start = _time.GetTimestamp();
        while (true)
        {
            int n = _acks.Receive(_buffer);
            if (n > 0 && n <= _buffer.Length && WriterAck.Parse(_buffer.AsSpan(0, n)) is { } ack && ack.RunId == _runId)
            {
                if (ack.NImagesWritten > Written)
                    Volatile.Write(ref _written, ack.NImagesWritten);
                return ack;
            }
            if (n < 0)
            {
                var left = TimeSpan.FromMilliseconds(timeoutMs) - _time.GetElapsedTime(start);
                if (left <= TimeSpan.Zero || !_acks.WaitReadable(left))
                    return null;
            }
        }
    }

    private void DrainStaleAcks()
    {
        while (_acks.Receive(_buffer) >= 0)
        {
        }
    }

    private byte[] Message(long iImage, ulong? imageId, string? interrupted = null) => Build(iImage, imageId, interrupted).ToJson();

    /// <summary>The run's StoreStream message for i_image <paramref name="iImage"/> (the request's attributes and NXmx values with i_image 0).</summary>
    private StoreStreamMessage Build(long iImage, ulong? imageId, string? interrupted) => new()
    {
        OutputFile = _outputFile,
        RunId = _runId,
        NImages = _nImages,
        UserId = _request.UserId,
        ImageId = imageId,
        IImage = iImage,
        RequestId = _requestId,
        Compression = Choices.Compression.Name(_request.Compression),
        Overwrite = _request.Overwrite,
        Attributes = iImage == 0 ? Attributes() : null,
        Nxmx = iImage == 0 ? _request.Nxmx : null,
        Interrupted = interrupted,
    };

    private Dictionary<string, string> Attributes()
    {
        var a = new Dictionary<string, string>(_request.Metadata)
        {
            ["detector_name"] = _config.DetectorName,
            ["detector_type"] = _config.DetectorType,
            ["run_id"] = _runId.ToString(),
            ["request_id"] = _requestId,
        };
        if (_request.UserId is { } u)
            a["user_id"] = u.ValueKind == JsonValueKind.String ? u.GetString()! : u.GetRawText();
        return a;
    }

    /// <summary>
    /// Scale-out lead, after every share ended: asks the writer for the master file over
    /// <paramref name="spec"/>'s share files and waits for its answer (at most the close timeout);
    /// null when it is written, else what went wrong.
    /// </summary>
    public string? WriteMaster(MasterSpec spec, string? interrupted)
    {
        // The first message's fields (attributes, NXmx values), for the whole request's file.
        Send((Build(0, null, interrupted) with
        {
            OutputFile = _request.OutputFile,
            NImages = _request.NImages,
            IImage = _request.NImages,
            Compression = null,
            Master = spec,
        }).ToJson());
        long since = _time.GetTimestamp();
        while (_time.GetElapsedTime(since) < _timeouts.Close)
        {
            if (TryReadAck(100) is not { } ack)
                continue;
            if (ack.Event == WriterAck.Master)
                return null;
            if (ack.Event == WriterAck.Error)
                return ack.Message ?? "the writer could not write it";
        }
        return $"StdH5Writer did not answer within {_timeouts.Close.TotalSeconds:F0} s";
    }

    private void SendClose(string? interrupted) => Send(Message(Math.Max(_nImages, 0), null, interrupted));

    /// <summary>
    /// A share's run, for each id the stream shows (<paramref name="seen"/>; null: none came):
    /// fixes the first id when it can, then forwards every id of the share the stream has reached,
    /// in order, one row each. An id the stream passed is forwarded too: the writer takes it from
    /// the ImageBuffer if it is there (it came before this run subscribed) and records it as
    /// missing if not; one passed after this run subscribed is a stream gap.
    /// </summary>
    private void ForwardShare(ulong? seen)
    {
        if (seen is { } s)
        {
            _firstSeen ??= s;
            if (_highest is not { } h || s > h)
                _highest = s;
            if (FirstImageId == null && _seenEarly.Count < 1_000_000)
                _seenEarly.Add(s);
        }
        var share = _mode!.Share;
        if (FirstImageId == null)
        {
            if (_mode.First(seen) is not { } fixedAt)
                return;
            FirstImageId = fixedAt.First;
            _runId = fixedAt.RunId;
            _next = ShareMode.FirstOf(fixedAt.First, share);
            Volatile.Write(ref _nImages, ShareMode.CountOf(fixedAt.First, _request.NImages, share));
        }
        while (_forwarded < _nImages && _highest is { } highest && highest >= _next)
        {
            bool came = seen == _next || _seenEarly.Contains(_next);
            if (!came && _firstSeen is { } first && first <= _next)
                StreamGaps++;
            Send(Message(_forwarded, _next));
            Interlocked.Increment(ref _forwarded);
            _next += (ulong)share.Count;
        }
    }

    private void Send(byte[] message)
    {
        // PUB never blocks: a full queue drops, and the writer sees the i_image jump and says so.
        _store.Send(message);
    }
}

/// <summary>How long the agent waits for the writer.</summary>
public sealed record WriteRunTimeouts
{
    /// <summary>From the first image forwarded to the writer's "opened".</summary>
    public TimeSpan Open { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Silence from the writer after the close message before the run fails.</summary>
    public TimeSpan Close { get; init; } = TimeSpan.FromSeconds(30);
}
