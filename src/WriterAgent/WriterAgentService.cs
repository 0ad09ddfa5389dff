using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using StdDaq.Agent.Broker;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Metrics;
using StdDaq.Shared.Streams;

namespace StdDaq.Agent;

public sealed record WriterAgentOptions
{
    public string? BrokerUrl { get; init; }
    /// <summary>The <c>source</c> of its statuses (service name, e.g. facility.beamline.writer_agent); null: <c>&lt;detector_name&gt;.writer_agent</c>.</summary>
    public string? ServiceName { get; init; }
    /// <summary>The request/kill routing key it binds (a topic pattern; "#" takes every request).</summary>
    public string Tag { get; init; } = "#";
    public WriteRunTimeouts Timeouts { get; init; } = new();
    public TimeSpan ReconnectGrace { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(0.5);
    /// <summary>The clock of every timeout, interval and expiry of the agent (tests give a fake one).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
    /// <summary>
    /// Scale-out writing (--images i/N): this agent writes share i of every request, the images
    /// whose id % N == i, with N - 1 other agents on other servers; share 0 leads (statuses, master
    /// file). <see cref="ImageShare.All"/>: the whole request here.
    /// </summary>
    public ImageShare Share { get; init; } = ImageShare.All;
    /// <summary>Scale-out, a share other than the lead: how long it waits for a word from the lead about a request (first image id, still waiting, done) before it gives the request up.</summary>
    public TimeSpan LeadSilence { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Started with the agent's service name once it holds its role (its Redis heartbeat); disposed when it stops.</summary>
    public Func<string, IDisposable?>? Presence { get; init; }

    /// <summary>Starts the agent's metrics endpoint once it holds its role, given its service name and counters (null: none).</summary>
    public Func<string, CounterSet<AgentCounter>, IDisposable?>? Metrics { get; init; }
}

/// <summary>
/// The primary service of the std-daq broker protocol for writing: takes write requests one at a
/// time, publishes request_start at once, runs the request (<see cref="WriteRun"/>) and ends it with
/// request_success or request_fail, echoing the request body; a kill with the request's id ends it
/// early. Requests that come while one runs wait, in their order, in the agent (up to 64 delivered,
/// each checked on arrival) and in its durable queue (writer_busy_policy "queue"), or are refused at
/// once ("reject"). A request stays in the broker until its final status is confirmed, so the next
/// agent gets it back if this one dies (<see cref="RequestRecovery"/>).
/// </summary>
public sealed partial class WriterAgentService
{
    private readonly DetectorConfig _config;
    private readonly WriterAgentOptions _options;
    private readonly ILogger _logger;
    private readonly BrokerLink _link;
    private readonly StatusOutbox _outbox;
    private readonly Channel<Delivery> _requests = Channel.CreateUnbounded<Delivery>();
    private readonly bool _reject;
    private readonly string _serviceName;
    private volatile Running? _running;
    /// <summary>Kills for requests not running (yet): a request still waiting in the broker is refused when it comes.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _killed = new();
    private long _lastRunId;

    /// <summary>A request as the broker delivered it. <see cref="Redelivered"/>: an agent had it before (maybe one that died).</summary>
    private sealed record Delivery(string RequestId, byte[] Body, string RoutingKey, bool Redelivered);

    /// <summary>Which delivery of a request the broker holds for us now: its tag on the connection of that generation.</summary>
    private sealed record Receipt(ulong Tag, long Generation);

    /// <summary>
    /// A request this agent holds, from its delivery until the broker has it acknowledged: waiting,
    /// running or ended. After a reconnect the broker delivers the unacknowledged ones again; the
    /// new receipt replaces the old one here instead of running the request a second time.
    /// </summary>
    private sealed class Held(Receipt receipt)
    {
        public Receipt Receipt = receipt;
        /// <summary>The receipt already acked or rejected (never twice: a second ack closes the channel).</summary>
        public Receipt? Settled;
        /// <summary>Set when the request ended: its final status, confirmed by the broker when the task completes.</summary>
        public Task? Final;
        public bool Success;
        public DateTimeOffset EndedAt;
    }

    private readonly Dictionary<string, Held> _held = [];
    private readonly List<Task> _settling = [];

    /// <summary>The request being handled: its run once the request checked out, and a kill if one came.</summary>
    private sealed class Running(string requestId)
    {
        public string RequestId { get; } = requestId;
        public volatile WriteRun? Run;
        public long NImages;
        public volatile string? Kill;
        /// <summary>Scale-out lead: the end of its own share was announced to the other shares.</summary>
        public bool DoneAnnounced;
    }

    public WriterAgentService(DetectorConfig config, WriterAgentOptions options, ILogger logger)
    {
        _config = config;
        _options = options;
        _logger = logger;
        _reject = config.WriterBusyPolicy == WriterBusyPolicy.Reject;
        _serviceName = options.ServiceName ?? (options.Share.Count > 1
            ? $"{config.DetectorName}.writer_agent.{options.Share.Index}of{options.Share.Count}"
            : $"{config.DetectorName}.writer_agent");
        _link = new BrokerLink(BrokerProtocol.Factory(options.BrokerUrl, _serviceName), logger, SetUpAsync);
        _outbox = new StatusOutbox(_link, _serviceName, logger) { ReconnectGrace = options.ReconnectGrace };
        Counters = AgentStats.Create(_serviceName);
        // The stats line's gauges, as instruments of the same meter (also in /stats).
        Counters.AddGauge("running", () => _running != null ? 1 : 0, "writer_agent: 1 while a request is running");
        Counters.AddGauge("statuses_pending", () => _outbox.Pending, "writer_agent: status messages not yet confirmed by the broker");
        Counters.AddGauge("broker_connected", () => _link.IsConnected ? 1 : 0, "writer_agent: 1 while connected to the broker");
        Counters.Meter.CreateObservableCounter("std_daq.writer_agent.broker_connections", () => new Measurement<long>(_link.Generation, Counters.Tags.ToArray()),
            description: "writer_agent: connections made to the broker");
    }

    /// <summary>Completes once the agent is connected to the broker with its queues bound (again after a reconnect).</summary>
    public Task WaitConnectedAsync(CancellationToken ct) => _link.WaitConnectedAsync(ct);

    /// <summary>Requests ended so far, by how (the stats line; several threads add, with Interlocked).</summary>
    public CounterSet<AgentCounter> Counters { get; }

    public async Task RunAsync(CancellationToken ct)
    {
        // One agent per detector: a second one would take over the StoreStream endpoint.
        using var role = ServiceRoles.WriterAgent(_config);
        using var presence = _options.Presence?.Invoke(_serviceName);
        using var metrics = _options.Metrics?.Invoke(_serviceName, Counters);
        using var store = new StorePublisher(_config.WriterAgentEndpoint, _options.Time);
        // Non-blocking: the run checks for acknowledgements between images without waiting.
        using var acks = ZmqSocket.Puller(_config.WriterStatusEndpoint, receiveTimeoutMs: 0);
        LogStarting(_logger, _serviceName, _options.Tag, _link.Address, _config.WriterAgentEndpoint, _config.WriterStatusEndpoint);
        using var linkCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var linkTask = _link.RunAsync(linkCts.Token);
        var outboxTask = _outbox.RunAsync(linkCts.Token);
        var statsTask = StatsAsync(linkCts.Token);
        var leadTask = IsLead ? LeadHeartbeatAsync(linkCts.Token) : Task.CompletedTask;
        try
        {
            await foreach (var d in _requests.Reader.ReadAllAsync(ct))
                await HandleAsync(d, store, acks, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        // Let the last statuses out before leaving (bounded: the broker may be gone).
        using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        while (_outbox.Pending > 0 && !drain.IsCancellationRequested)
            await Task.Delay(50, CancellationToken.None);
        // and the acknowledgements that follow them (what is not acknowledged goes to the next agent).
        Task[] settling;
        lock (_settling)
            settling = [.. _settling];
        try
        {
            await Task.WhenAll(settling).WaitAsync(drain.Token);
        }
        catch (OperationCanceledException)
        {
        }
        linkCts.Cancel();
        await Task.WhenAll(linkTask, outboxTask, statsTask, leadTask);
        await _link.DisposeAsync();
        Counters.Dispose();
    }

    private async Task SetUpAsync(IChannel channel, CancellationToken ct)
    {
        try
        {
            await DeclareAsync(channel, ct);
        }
        catch (Exception e) when (Taken(e))
        {
            // The broker refuses the exclusive consumer (and closes the channel, so any later call fails).
            throw new IOException($"queue '{RequestQueue}' is taken by another WriterAgent named '{_serviceName}'; " +
                "trying again until it goes (two agents must not share a name)");
        }
    }

    private async Task DeclareAsync(IChannel channel, CancellationToken ct)
    {
        long generation = _link.Generation;
        // Up to 64 requests are delivered while one runs, so each is checked when it arrives (a bad
        // one fails at once instead of after the running one); good ones wait here in their order.
        await channel.BasicQosAsync(0, 64, false, ct);

        // Named and durable: the requests outlive this process. One that was delivered and not yet
        // acknowledged comes back (redelivered) to the next agent, the ones behind it in their order.
        // The exclusive consumer keeps a second agent of the same name (another host) off it.
        await channel.QueueDeclareAsync(RequestQueue, durable: true, exclusive: false, autoDelete: false, cancellationToken: ct);
        await channel.QueueBindAsync(RequestQueue, BrokerProtocol.RequestExchange, _options.Tag, cancellationToken: ct);
        var requests = new AsyncEventingBasicConsumer(channel);
        requests.ReceivedAsync += (_, e) => OnRequestAsync(e, generation);
        await channel.BasicConsumeAsync(RequestQueue, autoAck: false, consumerTag: "", noLocal: false, exclusive: true,
            arguments: null, requests, ct);

        var killQueue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct)).QueueName;
        await channel.QueueBindAsync(killQueue, BrokerProtocol.KillExchange, _options.Tag, cancellationToken: ct);
        var kills = new AsyncEventingBasicConsumer(channel);
        kills.ReceivedAsync += (_, e) => OnKill(e);
        await channel.BasicConsumeAsync(killQueue, autoAck: true, kills, ct);
        if (_options.Share.Count > 1)
            await DeclareSharesAsync(channel, ct);
    }

    private static bool Taken(Exception? e)
    {
        for (; e != null; e = e.InnerException)
            if (e is RabbitMQ.Client.Exceptions.OperationInterruptedException { ShutdownReason.ReplyCode: 403 })
                return true;
        return false;
    }

    /// <summary>The durable queue this agent takes its requests from: <c>&lt;service name&gt;.requests</c>.</summary>
    public string RequestQueue => $"{_serviceName}.requests";

    private Task OnRequestAsync(BasicDeliverEventArgs e, long generation)
    {
        var d = new Delivery(e.BasicProperties.CorrelationId ?? "", e.Body.ToArray(), e.RoutingKey, e.Redelivered);
        var receipt = new Receipt(e.DeliveryTag, generation);
        Held? known;
        lock (_held)
        {
            if (_held.TryGetValue(d.RequestId, out known))
                known.Receipt = receipt;
            else if (d.RequestId.Length > 0)
                _held[d.RequestId] = new Held(receipt);
        }
        if (known != null)
        {
            // Delivered again after a reconnect: it waits, runs or has ended here; not run twice.
            LogRedeliveredKnown(_logger, d.RequestId, known.Final == null ? "waiting or running" : "ended");
            if (known.Final != null)
                Settle(known);
            return Task.CompletedTask;
        }
        if (Check(d) is { } problem)
        {
            LogEnd(_logger, d.RequestId, "fail", problem);
            _ = Status(d, BrokerProtocol.ActionStart, null);
            End(d, receipt, false, Status(d, BrokerProtocol.ActionFail, problem));
            Interlocked.Increment(ref Counters[AgentCounter.RequestsFailed]);
            return Task.CompletedTask;
        }
        if (_reject && _running is { } r)
        {
            LogRejectedBusy(_logger, d.RequestId, r.RequestId);
            // Queued, not awaited: a consumer callback must not wait for a publisher confirm.
            _ = Status(d, BrokerProtocol.ActionStart, null);
            End(d, receipt, false, Status(d, BrokerProtocol.ActionFail,
                $"busy: request {r.RequestId} is writing ({r.Run?.Forwarded ?? 0}/{r.NImages} images); writer_busy_policy is reject"));
            Interlocked.Increment(ref Counters[AgentCounter.RequestsFailed]);
            return Task.CompletedTask;
        }
        _requests.Writer.TryWrite(d);
        return Task.CompletedTask;
    }

    /// <summary>
    /// A request ended with the final status <paramref name="final"/> (queued in the outbox): the
    /// broker's copy is acknowledged (success) or rejected (fail) once that status is confirmed, so
    /// an agent that dies in between leaves the request to the next one instead of losing its status.
    /// </summary>
    private void End(Delivery d, Receipt receipt, bool success, Task final)
    {
        Held held;
        lock (_held)
        {
            // A request without an id cannot be told from another: settled, not remembered.
            if (d.RequestId.Length == 0)
                held = new Held(receipt);
            else if (!_held.TryGetValue(d.RequestId, out held!))
                _held[d.RequestId] = held = new Held(receipt);
            held.Final = final;
            held.Success = success;
            held.EndedAt = _options.Time.GetUtcNow();
            // Ended requests are remembered for an hour, for redeliveries after a reconnect.
            foreach (var old in _held.Where(h => h.Value.Final != null && _options.Time.GetUtcNow() - h.Value.EndedAt > TimeSpan.FromHours(1)).Select(h => h.Key).ToList())
                _held.Remove(old);
        }
        Settle(held);
    }

    private void Settle(Held held)
    {
        async Task SettleAsync()
        {
            await held.Final!.ConfigureAwait(false);
            Receipt r;
            lock (_held)
            {
                r = held.Receipt;
                if (held.Settled == r)
                    return;
                held.Settled = r;
            }
            await _link.SettleAsync(r.Generation, r.Tag, ack: held.Success);
        }
        var task = SettleAsync();
        lock (_settling)
        {
            _settling.RemoveAll(t => t.IsCompleted);
            _settling.Add(task);
        }
    }

    /// <summary>What is wrong with a request as it arrives (null: nothing yet). Checked again when its turn comes.</summary>
    private string? Check(Delivery d)
    {
        if (d.RequestId.Length == 0)
            return "the request has no correlation_id (request id)";
        try
        {
            WriteRequest.Parse(d.Body, _config, begunBefore: d.Redelivered);
            return null;
        }
        catch (BadRequestException e)
        {
            return e.Message;
        }
    }

    private Task OnKill(BasicDeliverEventArgs e)
    {
        string id = e.BasicProperties.CorrelationId ?? "";
        if (_running is { } r && r.RequestId == id)
        {
            r.Kill = "killed by request";
            LogKill(_logger, id);
        }
        else
        {
            // Maybe a request still queued behind the running one: remember it for a while.
            foreach (var old in _killed.Where(k => _options.Time.GetUtcNow() - k.Value > TimeSpan.FromHours(1)).Select(k => k.Key).ToList())
                _killed.TryRemove(old, out _);
            _killed[id] = _options.Time.GetUtcNow();
            LogKillIgnored(_logger, id);
        }
        return Task.CompletedTask;
    }

    private async Task HandleAsync(Delivery d, StorePublisher store, ZmqSocket acks, CancellationToken ct)
    {
        var running = new Running(d.RequestId);
        _running = running;
        // A redelivered request may have been started by an agent that died (its request_start is
        // out): found so, it is ended without a second start. Any other gets its start now.
        bool started = false;
        void Start()
        {
            if (!started)
                _ = Status(d, BrokerProtocol.ActionStart, null);
            started = true;
        }
        RunOutcome outcome;
        try
        {
            if (d.RequestId.Length == 0)
                throw new BadRequestException("the request has no correlation_id (request id)");
            if (_killed.TryRemove(d.RequestId, out _))
                throw new BadRequestException("killed by request before it started");
            // Scale-out: a share's run cannot be taken up again (the other shares went on without it).
            if (d.Redelivered && _options.Share.Count > 1)
                throw new BadRequestException($"the writer agent of share {_options.Share} restarted during this request; its share is not written again");
            RunOutcome? recovered = null;
            if (d.Redelivered)
            {
                var begun = WriteRequest.Parse(d.Body, _config, begunBefore: true);
                recovered = await Task.Run(() => RequestRecovery.Recover(begun, d.RequestId, _options.Timeouts.Close, ct, _options.Time), ct);
                if (recovered != null)
                    LogRecovered(_logger, d.RequestId, begun.OutputFile);
            }
            if (recovered != null)
                outcome = recovered;
            else
            {
                // Not begun before (or delivered for the first time): checked in full, then written.
                var request = WriteRequest.Parse(d.Body, _config);
                Start();
                outcome = await WriteAsync(d, request, running, store, acks, ct);
            }
        }
        catch (BadRequestException e)
        {
            Start();
            outcome = new RunOutcome(false, e.Message, 0);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping while a redelivered request was looked at: it stays in the broker for the next agent.
            return;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            Start();
            outcome = new RunOutcome(false, $"agent error: {e.Message}", 0);
        }
        finally
        {
            _running = null;
        }
        if (outcome.Success)
            Interlocked.Increment(ref Counters[AgentCounter.RequestsSucceeded]);
        else
            Interlocked.Increment(ref Counters[AgentCounter.RequestsFailed]);
        LogEnd(_logger, d.RequestId, outcome.Success ? "success" : "fail", outcome.Message);
        if (IsLead)
            AnnounceDone(d, running);
        End(d, CurrentReceipt(d), outcome.Success,
            Status(d, outcome.Success ? BrokerProtocol.ActionSuccess : BrokerProtocol.ActionFail, outcome.Message, outcome.Summary));
    }

    private async Task<RunOutcome> WriteAsync(Delivery d, WriteRequest request, Running running, StorePublisher store, ZmqSocket acks,
        CancellationToken ct)
    {
        long runId = request.RunId ?? NextRunId();
        var mode = _options.Share.Count > 1 ? ShareModeOf(d, request, runId, running) : null;
        var run = new WriteRun(_config, request, d.RequestId, runId, store, acks, _options.Timeouts, _options.Time, mode);
        running.NImages = request.NImages;
        running.Run = run;
        LogStartRun(_logger, d.RequestId, request.NImages, mode == null ? request.OutputFile : $"{run.OutputFile} (share {_options.Share})", runId);
        var progress = ReportProgressAsync(running, d, ct);
        var outcome = await Task.Factory.StartNew(() => run.Execute(() => running.Kill, ct),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (IsLead)
        {
            AnnounceDone(d, running);
            outcome = await CombineAsync(d, request, run, outcome, ct);
        }
        _running = null;
        await progress;
        return outcome;
    }

    private Receipt CurrentReceipt(Delivery d)
    {
        lock (_held)
            return _held.TryGetValue(d.RequestId, out var h) ? h.Receipt : new Receipt(0, -1);
    }

    private async Task ReportProgressAsync(Running running, Delivery d, CancellationToken ct)
    {
        long last = -1;
        try
        {
            while (_running == running)
            {
                await Task.Delay(_options.ProgressInterval, _options.Time, ct);
                if (running.Run is not { } run || _running != running)
                    break;
                long written = run.Written + SharesWritten(d.RequestId);
                // A share reports every interval: the lead takes its silence for its death.
                if (written == last && !IsFollower)
                    continue;
                last = written;
                var progress = new JsonObject
                {
                    ["n_images_requested"] = running.NImages,
                    ["n_images_forwarded"] = run.Forwarded,
                    ["n_images_written"] = written,
                };
                if (_options.Share.Count > 1)
                    progress["share"] = _options.Share.ToString();
                // Progress is best effort: when the broker is away it is dropped, not queued.
                if (_link.IsConnected && _outbox.Pending == 0)
                    _ = Status(d, BrokerProtocol.ActionProgress, progress.ToJsonString());
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task StatsAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(_config.StatsCollectionPeriod), _options.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
                LogStats(_logger, Counters.Read().Format(),
                    _running?.RequestId ?? "-", _outbox.Pending, _link.IsConnected ? 1 : 0, _link.Generation);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private long NextRunId()
    {
        // Unique and increasing: milliseconds since the epoch, bumped if two requests share one.
        long now = _options.Time.GetUtcNow().ToUnixTimeMilliseconds();
        long id = Math.Max(now, _lastRunId + 1);
        _lastRunId = id;
        return id;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "WriterAgent {Service}: tag '{Tag}' on {Broker}; StoreStream on {Store}, writer acks on {Acks}")]
    private static partial void LogStarting(ILogger logger, string service, string tag, string broker, string store, string acks);

    [LoggerMessage(Level = LogLevel.Information, Message = "request {RequestId}: writing {N} images to {File} (run {RunId})")]
    private static partial void LogStartRun(ILogger logger, string requestId, long n, string file, long runId);

    [LoggerMessage(Level = LogLevel.Information, Message = "request {RequestId}: {Result}: {Message}")]
    private static partial void LogEnd(ILogger logger, string requestId, string result, string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "stats: {Counters} running={Running} statuses_pending={Pending} broker_connected={Connected} broker_connections={Connections}")]
    private static partial void LogStats(ILogger logger, string counters, string running, int pending, int connected, long connections);

    [LoggerMessage(Level = LogLevel.Information, Message = "request {RequestId}: kill received")]
    private static partial void LogKill(ILogger logger, string requestId);

    [LoggerMessage(Level = LogLevel.Information, Message = "kill for request {RequestId}: not running now; refused if it comes later")]
    private static partial void LogKillIgnored(ILogger logger, string requestId);

    [LoggerMessage(Level = LogLevel.Information, Message = "request {RequestId} delivered again after a reconnect; it is {State} here, not run twice")]
    private static partial void LogRedeliveredKnown(ILogger logger, string requestId, string state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "request {RequestId} was begun by a writer agent that went away; {File} says how far it got")]
    private static partial void LogRecovered(ILogger logger, string requestId, string file);

    [LoggerMessage(Level = LogLevel.Warning, Message = "request {RequestId} refused: busy with {Running}")]
    private static partial void LogRejectedBusy(ILogger logger, string requestId, string running);
}
