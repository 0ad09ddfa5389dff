using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using StdDaq.Agent.Broker;
using StdDaq.Shared.Streams;

namespace StdDaq.Agent;

/// <summary>
/// Scale-out writing: N agents on N servers (each with <c>--images i/N</c>, each behind a
/// StdStreamRecv of the same share) serve one request together. Every agent gets the request (its
/// own queue bound with its tag); each writes the request's ids with id % N == i into its own file
/// (<see cref="ShareMode.FileOf"/>). Share 0, the lead, fixes the request's first image id (the
/// request's start_image_id, else the first id its stream shows, rounded up to a multiple of N)
/// and the run id, and announces them; it alone publishes the request's statuses. The others
/// publish nothing on the status exchange: they report progress and their end to the lead on
/// <see cref="BrokerProtocol.SharesExchange"/>. When every share has ended, the lead writes the
/// master file (the requested output_file, <see cref="ShareMasterFile"/>) and ends the request:
/// success only if every share succeeded, with their numbers summed.
/// </summary>
public sealed partial class WriterAgentService
{
    /// <summary>First image id and run id the lead announced, by request id (kept an hour: a share may be busy when it comes).</summary>
    private readonly ConcurrentDictionary<string, (ulong First, long RunId, DateTimeOffset At)> _firsts = new();
    /// <summary>When the lead last said something of a request (waiting for its first image, first id, done), by request id.</summary>
    private readonly ConcurrentDictionary<string, DateTimeOffset> _leadHeard = new();
    /// <summary>Requests whose lead ended its own share, by request id.</summary>
    private readonly ConcurrentDictionary<string, DateTimeOffset> _leadDone = new();
    /// <summary>The lead: what the other shares reported, by request id.</summary>
    private readonly ConcurrentDictionary<string, ShareBoard> _boards = new();

    private sealed class ShareBoard
    {
        /// <summary>When each share was last heard of, and the images it had written then.</summary>
        public readonly ConcurrentDictionary<int, (DateTimeOffset At, long Written)> Heard = new();
        /// <summary>Each share's end report.</summary>
        public readonly ConcurrentDictionary<int, JsonObject> Ends = new();
    }

    private bool IsLead => _options.Share.Count > 1 && _options.Share.Index == 0;
    private bool IsFollower => _options.Share.Count > 1 && _options.Share.Index != 0;

    private async Task DeclareSharesAsync(IChannel channel, CancellationToken ct)
    {
        var queue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct)).QueueName;
        foreach (var key in IsLead ? ["share.#"] : new[] { "first.#", "done.#" })
            await channel.QueueBindAsync(queue, BrokerProtocol.SharesExchange, key, cancellationToken: ct);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, e) => OnShareMessage(e);
        await channel.BasicConsumeAsync(queue, autoAck: true, consumer, ct);
    }

    /// <summary>
    /// A status of this agent: as it is for a whole request or the lead; a follower share sends
    /// no request_start, and its progress and end go to the lead instead (<see cref="BrokerProtocol.SharesExchange"/>).
    /// </summary>
    private Task Status(Delivery d, string action, string? message, JsonObject? summary = null)
    {
        if (!IsFollower)
            return _outbox.Enqueue(d.RequestId, action, message, d.Body, d.RoutingKey);
        string key = $"share.{d.RequestId}";
        if (action == BrokerProtocol.ActionStart)
            return Task.CompletedTask;
        if (action == BrokerProtocol.ActionProgress)
            return _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionShareProgress, message, d.Body, key);
        var end = new JsonObject
        {
            ["share"] = _options.Share.ToString(),
            ["success"] = action == BrokerProtocol.ActionSuccess,
            ["message"] = message,
            ["summary"] = Reparsed(summary),
        };
        return _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionShareEnd, end.ToJsonString(), d.Body, key);
    }

    private Task OnShareMessage(BasicDeliverEventArgs e)
    {
        string id = e.BasicProperties.CorrelationId ?? "";
        string? action = BrokerProtocol.Header(e.BasicProperties, "action");
        string? message = BrokerProtocol.Header(e.BasicProperties, "message");
        var now = _options.Time.GetUtcNow();
        Expire(now);
        JsonObject? o = null;
        try
        {
            o = message == null ? null : JsonNode.Parse(message) as JsonObject;
        }
        catch (JsonException)
        {
        }
        if (o == null || id.Length == 0)
        {
            LogShareMessageBad(_logger, action ?? "?", id);
            return Task.CompletedTask;
        }
        if (!IsLead && action is BrokerProtocol.ActionShareFirst or BrokerProtocol.ActionShareDone)
            _leadHeard[id] = now;
        switch (action)
        {
            case BrokerProtocol.ActionShareFirst when o["first_image_id"] == null && Number(o, "shares") == _options.Share.Count:
                break; // the lead is waiting for its first image
            case BrokerProtocol.ActionShareFirst when Number(o, "first_image_id") is { } first && Number(o, "run_id") is { } runId
                                                     && Number(o, "shares") == _options.Share.Count:
                _firsts[id] = ((ulong)first, runId, now);
                break;
            case BrokerProtocol.ActionShareFirst:
                LogShareMessageBad(_logger, action, id);
                break;
            case BrokerProtocol.ActionShareDone:
                _leadDone[id] = now;
                // The lead ended before fixing the first image (it failed or was killed): nothing to write.
                if (_running is { } r && r.RequestId == id && r.Run is { FirstImageId: null })
                    r.Kill = "the lead share ended the request before its first image was fixed";
                break;
            case BrokerProtocol.ActionShareProgress or BrokerProtocol.ActionShareEnd when IsLead
                && o["share"]?.GetValue<string>() is { } text && ImageShare.TryParse(text, out var share)
                && share.Count == _options.Share.Count && share.Index > 0:
                var board = _boards.GetOrAdd(id, _ => new ShareBoard());
                long written = Number(o, "n_images_written") ?? Number(o["summary"] as JsonObject, "n_images_written") ?? 0;
                board.Heard[share.Index] = (now, written);
                if (action == BrokerProtocol.ActionShareEnd)
                    board.Ends[share.Index] = o;
                break;
            default:
                LogShareMessageBad(_logger, action ?? "?", id);
                break;
        }
        return Task.CompletedTask;
    }

    private void Expire(DateTimeOffset now)
    {
        foreach (var (k, v) in _firsts)
            if (now - v.At > TimeSpan.FromHours(1))
                _firsts.TryRemove(k, out _);
        foreach (var (k, v) in _leadDone)
            if (now - v > TimeSpan.FromHours(1))
                _leadDone.TryRemove(k, out _);
        foreach (var (k, v) in _leadHeard)
            if (now - v > TimeSpan.FromHours(1))
                _leadHeard.TryRemove(k, out _);
    }

    /// <summary>The object as a share's report carries it (parsed JSON: its numbers read alike, whatever type they were made of).</summary>
    private static JsonNode? Reparsed(JsonObject? o) => o == null ? null : JsonNode.Parse(o.ToJsonString());

    private static long? Number(JsonObject? o, string key) =>
        o?[key] is JsonValue v && v.TryGetValue(out long n) ? n : null;

    /// <summary>The lead: images the other shares of a request reported written so far.</summary>
    private long SharesWritten(string requestId) =>
        IsLead && _boards.TryGetValue(requestId, out var b) ? b.Heard.Values.Sum(h => h.Written) : 0;

    /// <summary>How a share's run learns the request's first image id and run id.</summary>
    private ShareMode ShareModeOf(Delivery d, WriteRequest request, long runId, Running running)
    {
        var share = _options.Share;
        if (IsLead)
            return new ShareMode(share, seen =>
            {
                ulong? first = request.StartImageId > 0 ? request.StartImageId
                    : seen is { } s ? (s + (ulong)share.Count - 1) / (ulong)share.Count * (ulong)share.Count : null;
                if (first is not { } f)
                    return null;
                var announce = new JsonObject { ["first_image_id"] = f, ["run_id"] = runId, ["shares"] = share.Count };
                _ = _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionShareFirst, announce.ToJsonString(), d.Body, $"first.{d.RequestId}");
                LogFirstFixed(_logger, d.RequestId, f, runId);
                return (f, runId);
            });
        var since = _options.Time.GetUtcNow();
        return new ShareMode(share, _ =>
        {
            if (_firsts.TryGetValue(d.RequestId, out var f))
                return (f.First, f.RunId);
            if (_leadDone.ContainsKey(d.RequestId))
                running.Kill ??= "the lead share ended the request before its first image was fixed";
            // The lead says it is waiting every progress interval; silence means it is gone or
            // ended the request while this agent was down (a request left in this agent's queue).
            var heard = _leadHeard.TryGetValue(d.RequestId, out var at) && at > since ? at : since;
            if (_options.Time.GetUtcNow() - heard > _options.LeadSilence)
                running.Kill ??= $"the lead share (0/{share.Count}) said nothing of this request for {_options.LeadSilence.TotalSeconds:F0} s";
            return null;
        });
    }

    /// <summary>
    /// The lead, every progress interval: tells the other shares it holds each request whose first
    /// image id it has not fixed yet (queued behind another, or waiting for images), so they wait
    /// for it as long as it lives. Best effort, like progress: skipped while the broker is away.
    /// </summary>
    private async Task LeadHeartbeatAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(_options.ProgressInterval, _options.Time, ct);
                // Skipped while the broker is away or statuses pile up, so heartbeats never queue behind them.
                if (!_link.IsConnected || _outbox.Pending > 16)
                    continue;
                List<string> waiting;
                lock (_held)
                    waiting = [.. _held.Where(h => h.Value.Final == null).Select(h => h.Key)];
                var running = _running;
                foreach (var id in waiting)
                {
                    if (running is { RequestId: var r, Run.FirstImageId: not null } && r == id)
                        continue;
                    var message = new JsonObject { ["first_image_id"] = null, ["shares"] = _options.Share.Count };
                    _ = _outbox.Enqueue(id, BrokerProtocol.ActionShareFirst, message.ToJsonString(), ReadOnlyMemory<byte>.Empty, $"first.{id}");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The lead tells the other shares its own share ended (once per request).</summary>
    private void AnnounceDone(Delivery d, Running running)
    {
        if (running.DoneAnnounced)
            return;
        running.DoneAnnounced = true;
        _ = _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionShareDone, "{}", d.Body, $"done.{d.RequestId}");
    }

    /// <summary>
    /// The lead, after its own share: waits for every other share's end (a share silent for the
    /// close timeout counts as failed), writes the master file over the share files, and returns
    /// the request's outcome with the shares' numbers summed.
    /// </summary>
    private async Task<RunOutcome> CombineAsync(Delivery d, WriteRequest request, WriteRun run, RunOutcome own, CancellationToken ct)
    {
        int n = _options.Share.Count;
        var board = _boards.GetOrAdd(d.RequestId, _ => new ShareBoard());
        var ownEnd = _options.Time.GetUtcNow();
        var results = new JsonObject?[n];
        var failures = new List<string>();
        results[0] = new JsonObject { ["share"] = _options.Share.ToString(), ["success"] = own.Success, ["message"] = own.Message, ["summary"] = Reparsed(own.Summary) };
        if (run.FirstImageId == null)
        {
            // The lead never fixed the first image: the others wrote nothing (they stop on its "done").
            return own;
        }
        try
        {
            while (true)
            {
                var now = _options.Time.GetUtcNow();
                bool waiting = false;
                for (int i = 1; i < n; i++)
                {
                    if (results[i] != null)
                        continue;
                    if (board.Ends.TryGetValue(i, out var end))
                    {
                        results[i] = end;
                        continue;
                    }
                    var heard = board.Heard.TryGetValue(i, out var h) && h.At > ownEnd ? h.At : ownEnd;
                    if (now - heard > _options.Timeouts.Close)
                    {
                        results[i] = new JsonObject
                        {
                            ["share"] = $"{i}/{n}", ["success"] = false,
                            ["message"] = $"sent nothing for {_options.Timeouts.Close.TotalSeconds:F0} s (is its WriterAgent running with --images {i}/{n}?)",
                        };
                        continue;
                    }
                    waiting = true;
                }
                if (!waiting)
                    break;
                await Task.Delay(TimeSpan.FromMilliseconds(100), _options.Time, ct);
            }
        }
        catch (OperationCanceledException)
        {
            return own with { Success = false, Message = "the writer agent is shutting down while the other shares were writing" };
        }
        _boards.TryRemove(d.RequestId, out _);

        ulong first = run.FirstImageId.Value;
        var summary = new JsonObject
        {
            ["output_file"] = request.OutputFile,
            ["run_id"] = run.RunId,
            ["first_image_id"] = first,
            ["shares"] = n,
        };
        long written = 0, missingCount = 0, gaps = 0, incomplete = 0;
        var missingIds = new List<long>();
        var reasons = new JsonObject();
        var modules = new SortedDictionary<int, long>();
        var files = new List<MasterShareFile>();
        var shareFiles = new JsonArray();
        string? interrupted = null;
        for (int i = 0; i < n; i++)
        {
            var r = results[i]!;
            bool ok = r["success"]?.GetValue<bool>() == true;
            var s = r["summary"] as JsonObject;
            if (!ok)
                failures.Add($"share {i}/{n}: {r["message"]?.GetValue<string>()}");
            if (s == null)
                continue;
            written += Number(s, "n_images_written") ?? 0;
            missingCount += Number(s, "n_images_missing") ?? 0;
            gaps += Number(s, "stream_gaps") ?? 0;
            incomplete += Number(s, "n_images_incomplete") ?? 0;
            if (s["missing_image_ids"] is JsonArray ids)
                missingIds.AddRange(ids.Select(x => x!.GetValue<long>()));
            if (s["missing_reasons"] is JsonObject rs)
                foreach (var (k, v) in rs)
                    reasons[k] = (Number(reasons, k) ?? 0) + (v?.GetValue<long>() ?? 0);
            if (s["modules_missing"] is JsonObject ms)
                foreach (var (k, v) in ms)
                    if (int.TryParse(k, out int m))
                        modules[m] = modules.GetValueOrDefault(m) + (v?.GetValue<long>() ?? 0);
            if (s["interrupted"]?.GetValue<string>() is { } why)
                interrupted ??= $"share {i}/{n}: {why}";
            if (s["output_file"]?.GetValue<string>() is { } file)
            {
                shareFiles.Add(file);
                files.Add(new MasterShareFile(file, (long)(ShareMode.FirstOf(first, new ImageShare(i, n)) - first)));
            }
        }
        summary["n_images_requested"] = request.NImages;
        summary["n_images_written"] = written;
        summary["n_images_missing"] = missingCount;
        summary["missing_image_ids"] = new JsonArray(missingIds.Order().Select(x => (JsonNode)x).ToArray());
        summary["missing_reasons"] = reasons;
        summary["stream_gaps"] = gaps;
        summary["n_images_incomplete"] = incomplete;
        var mm = new JsonObject();
        foreach (var (m, c) in modules)
            mm[m.ToString()] = c;
        summary["modules_missing"] = mm;
        summary["share_files"] = shareFiles;
        if (interrupted != null)
            summary["interrupted"] = interrupted;

        // The lead's writer writes the master file (it has the detector's NXmx description).
        string? reason = interrupted ?? (failures.Count > 0 ? failures[0] : null);
        if (await Task.Run(() => run.WriteMaster(new MasterSpec(n, files), reason), CancellationToken.None) is { } problem)
            failures.Add($"master file '{request.OutputFile}': {problem}");
        if (failures.Count > 0)
            return new RunOutcome(false, $"scale-out over {n} shares: {string.Join("; ", failures)}; {summary.ToJsonString()}", written) { Summary = summary };
        if (incomplete > 0 && _config.WriterIncompletePolicy == Shared.Config.WriterIncompletePolicy.Fail)
            return new RunOutcome(false, $"incomplete: {incomplete} of {written} images written over {n} shares are incomplete "
                + $"(writer_incomplete_policy is fail); {summary.ToJsonString()}", written) { Summary = summary };
        return new RunOutcome(true, summary.ToJsonString(), written) { Summary = summary };
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "scale-out message {Action} for request {RequestId} not understood; ignored")]
    private static partial void LogShareMessageBad(ILogger logger, string action, string requestId);

    [LoggerMessage(Level = LogLevel.Information, Message = "request {RequestId}: first image id {First}, run {RunId}, announced to the other shares")]
    private static partial void LogFirstFixed(ILogger logger, string requestId, ulong first, long runId);
}
