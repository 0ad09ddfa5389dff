using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using StdDaq.Agent.Broker;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
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
}

/// <summary>
/// The primary service of the std-daq broker protocol for writing: takes write requests one at a
/// time, publishes request_start at once, runs the request (<see cref="WriteRun"/>) and ends it with
/// request_success or request_fail, echoing the request body; a kill with the request's id ends it
/// early. Requests that come while one runs wait in the broker (writer_busy_policy "queue",
/// prefetch 1) or are refused at once ("reject").
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
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTime> _killed = new();
    private long _lastRunId;

    private sealed record Delivery(string RequestId, byte[] Body, string RoutingKey, ulong Tag, long Generation);

    /// <summary>The request being handled: its run once the request checked out, and a kill if one came.</summary>
    private sealed class Running(string requestId)
    {
        public string RequestId { get; } = requestId;
        public volatile WriteRun? Run;
        public long NImages;
        public volatile string? Kill;
    }

    public WriterAgentService(DetectorConfig config, WriterAgentOptions options, ILogger logger)
    {
        _config = config;
        _options = options;
        _logger = logger;
        _reject = config.WriterBusyPolicy == "reject";
        _serviceName = options.ServiceName ?? $"{config.DetectorName}.writer_agent";
        _link = new BrokerLink(BrokerProtocol.Factory(options.BrokerUrl, _serviceName), logger, SetUpAsync);
        _outbox = new StatusOutbox(_link, _serviceName, logger) { ReconnectGrace = options.ReconnectGrace };
    }

    /// <summary>Completes once the agent is connected to the broker with its queues bound (again after a reconnect).</summary>
    public Task WaitConnectedAsync(CancellationToken ct) => _link.WaitConnectedAsync(ct);

    /// <summary>Requests handled so far (for tests and the stats line).</summary>
    public long RequestsSucceeded, RequestsFailed;

    public async Task RunAsync(CancellationToken ct)
    {
        // One agent per detector: a second one would take over the StoreStream endpoint.
        using var role = ServiceRoles.WriterAgent(_config);
        using var store = new StorePublisher(_config.WriterAgentEndpoint);
        // Non-blocking: the run checks for acknowledgements between images without waiting.
        using var acks = ZmqSocket.Puller(_config.WriterStatusEndpoint, receiveTimeoutMs: 0);
        LogStarting(_logger, _serviceName, _options.Tag, _link.Address, _config.WriterAgentEndpoint, _config.WriterStatusEndpoint);
        using var linkCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var linkTask = _link.RunAsync(linkCts.Token);
        var outboxTask = _outbox.RunAsync(linkCts.Token);
        var statsTask = StatsAsync(linkCts.Token);
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
        linkCts.Cancel();
        await Task.WhenAll(linkTask, outboxTask, statsTask);
        await _link.DisposeAsync();
    }

    private async Task SetUpAsync(IChannel channel, CancellationToken ct)
    {
        long generation = _link.Generation;
        // Up to 64 requests are delivered while one runs, so each is checked when it arrives (a bad
        // one fails at once instead of after the running one); good ones wait here in their order.
        await channel.BasicQosAsync(0, 64, false, ct);

        var requestQueue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct)).QueueName;
        await channel.QueueBindAsync(requestQueue, BrokerProtocol.RequestExchange, _options.Tag, cancellationToken: ct);
        var requests = new AsyncEventingBasicConsumer(channel);
        requests.ReceivedAsync += (_, e) => OnRequestAsync(e, generation);
        await channel.BasicConsumeAsync(requestQueue, autoAck: false, requests, ct);

        var killQueue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct)).QueueName;
        await channel.QueueBindAsync(killQueue, BrokerProtocol.KillExchange, _options.Tag, cancellationToken: ct);
        var kills = new AsyncEventingBasicConsumer(channel);
        kills.ReceivedAsync += (_, e) => OnKill(e);
        await channel.BasicConsumeAsync(killQueue, autoAck: true, kills, ct);
    }

    private async Task OnRequestAsync(BasicDeliverEventArgs e, long generation)
    {
        var d = new Delivery(e.BasicProperties.CorrelationId ?? "", e.Body.ToArray(), e.RoutingKey, e.DeliveryTag, generation);
        if (_running is { } busy && busy.RequestId == d.RequestId)
        {
            // The same request again (redelivered after a reconnect): it is running; do not run it twice.
            await _link.SettleAsync(generation, d.Tag, ack: true);
            return;
        }
        if (Check(d) is { } problem)
        {
            LogEnd(_logger, d.RequestId, "fail", problem);
            _ = _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionStart, null, d.Body, d.RoutingKey);
            _ = _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionFail, problem, d.Body, d.RoutingKey);
            Interlocked.Increment(ref RequestsFailed);
            await _link.SettleAsync(generation, d.Tag, ack: false);
            return;
        }
        if (_reject && _running is { } r)
        {
            LogRejectedBusy(_logger, d.RequestId, r.RequestId);
            // Queued, not awaited: a consumer callback must not wait for a publisher confirm.
            _ = _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionStart, null, d.Body, d.RoutingKey);
            _ = _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionFail,
                $"busy: request {r.RequestId} is writing ({r.Run?.Forwarded ?? 0}/{r.NImages} images); writer_busy_policy is reject",
                d.Body, d.RoutingKey);
            Interlocked.Increment(ref RequestsFailed);
            await _link.SettleAsync(generation, d.Tag, ack: false);
            return;
        }
        _requests.Writer.TryWrite(d);
    }

    /// <summary>What is wrong with a request as it arrives (null: nothing yet). Checked again when its turn comes.</summary>
    private string? Check(Delivery d)
    {
        if (d.RequestId.Length == 0)
            return "the request has no correlation_id (request id)";
        try
        {
            WriteRequest.Parse(d.Body, _config);
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
            foreach (var old in _killed.Where(k => DateTime.UtcNow - k.Value > TimeSpan.FromHours(1)).Select(k => k.Key).ToList())
                _killed.TryRemove(old, out _);
            _killed[id] = DateTime.UtcNow;
            LogKillIgnored(_logger, id);
        }
        return Task.CompletedTask;
    }

    private async Task HandleAsync(Delivery d, StorePublisher store, ZmqSocket acks, CancellationToken ct)
    {
        var running = new Running(d.RequestId);
        _running = running;
        _ = _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionStart, null, d.Body, d.RoutingKey);
        RunOutcome outcome;
        try
        {
            if (d.RequestId.Length == 0)
                throw new BadRequestException("the request has no correlation_id (request id)");
            if (_killed.TryRemove(d.RequestId, out _))
                throw new BadRequestException("killed by request before it started");
            var request = WriteRequest.Parse(d.Body, _config);
            long runId = request.RunId ?? NextRunId();
            var run = new WriteRun(_config, request, d.RequestId, runId, store, acks, _options.Timeouts);
            running.NImages = request.NImages;
            running.Run = run;
            LogStartRun(_logger, d.RequestId, request.NImages, request.OutputFile, runId);
            var progress = ReportProgressAsync(running, d, ct);
            outcome = await Task.Factory.StartNew(() => run.Execute(() => running.Kill, ct),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            _running = null;
            await progress;
        }
        catch (BadRequestException e)
        {
            outcome = new RunOutcome(false, e.Message, 0);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            outcome = new RunOutcome(false, $"agent error: {e.Message}", 0);
        }
        finally
        {
            _running = null;
        }
        if (outcome.Success)
            Interlocked.Increment(ref RequestsSucceeded);
        else
            Interlocked.Increment(ref RequestsFailed);
        LogEnd(_logger, d.RequestId, outcome.Success ? "success" : "fail", outcome.Message);
        _ = _outbox.Enqueue(d.RequestId, outcome.Success ? BrokerProtocol.ActionSuccess : BrokerProtocol.ActionFail,
            outcome.Message, d.Body, d.RoutingKey);
        await _link.SettleAsync(d.Generation, d.Tag, ack: outcome.Success);
    }

    private async Task ReportProgressAsync(Running running, Delivery d, CancellationToken ct)
    {
        long last = -1;
        try
        {
            while (_running == running)
            {
                await Task.Delay(_options.ProgressInterval, ct);
                if (running.Run is not { } run || _running != running)
                    break;
                long written = run.Written;
                if (written == last)
                    continue;
                last = written;
                var message = new JsonObject
                {
                    ["n_images_requested"] = running.NImages,
                    ["n_images_forwarded"] = run.Forwarded,
                    ["n_images_written"] = written,
                }.ToJsonString();
                // Progress is best effort: when the broker is away it is dropped, not queued.
                if (_link.IsConnected && _outbox.Pending == 0)
                    _ = _outbox.Enqueue(d.RequestId, BrokerProtocol.ActionProgress, message, d.Body, d.RoutingKey);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task StatsAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(_config.StatsCollectionPeriod));
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
                LogStats(_logger, Interlocked.Read(ref RequestsSucceeded), Interlocked.Read(ref RequestsFailed),
                    _running?.RequestId ?? "-", _outbox.Pending, _link.IsConnected ? 1 : 0, _link.Generation);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private long NextRunId()
    {
        // Unique and increasing: milliseconds since the epoch, bumped if two requests share one.
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
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

    [LoggerMessage(Level = LogLevel.Information, Message = "stats: requests_succeeded={Succeeded} requests_failed={Failed} running={Running} statuses_pending={Pending} broker_connected={Connected} broker_connections={Connections}")]
    private static partial void LogStats(ILogger logger, long succeeded, long failed, string running, int pending, int connected, long connections);

    [LoggerMessage(Level = LogLevel.Information, Message = "request {RequestId}: kill received")]
    private static partial void LogKill(ILogger logger, string requestId);

    [LoggerMessage(Level = LogLevel.Information, Message = "kill for request {RequestId}: not running now; refused if it comes later")]
    private static partial void LogKillIgnored(ILogger logger, string requestId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "request {RequestId} refused: busy with {Running}")]
    private static partial void LogRejectedBusy(ILogger logger, string requestId, string running);
}
