using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace StdDaq.Agent.Broker;

/// <summary>
/// The user side of the broker protocol (the std-daq CLI, scripts, tests): sends write requests
/// and kills, and sees every status message. It binds its own status queue before it sends
/// anything, so it sees the statuses of its own requests from the first one; after a broker
/// restart it reconnects and binds a new queue.
/// </summary>
public sealed class BrokerClient : IAsyncDisposable
{
    private readonly BrokerLink _link;
    /// <summary>Every status, for a monitor; null unless asked for (nobody would read it).</summary>
    private readonly Channel<BrokerStatus>? _statuses;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Channel<BrokerStatus>> _byRequest = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _run;

    private BrokerClient(string? brokerUrl, ILogger logger, bool monitor)
    {
        _statuses = monitor ? Channel.CreateUnbounded<BrokerStatus>() : null;
        _link = new BrokerLink(BrokerProtocol.Factory(brokerUrl, "std-daq-client"), logger, SetUpAsync, TimeSpan.FromSeconds(1));
    }

    public string Address => _link.Address;

    /// <summary>
    /// Connects (failing fast with an IOException naming the broker) and starts seeing statuses:
    /// those of its own requests, and with <paramref name="monitor"/> every one (<see cref="Statuses"/>).
    /// </summary>
    public static async Task<BrokerClient> ConnectAsync(string? brokerUrl, ILogger logger, CancellationToken ct, bool monitor = false)
    {
        var client = new BrokerClient(brokerUrl, logger, monitor);
        try
        {
            await client._link.ConnectOnceAsync(ct);
        }
        catch
        {
            await client._link.DisposeAsync();
            throw;
        }
        client._run = client._link.RunAsync(client._stop.Token);
        return client;
    }

    private Channel<BrokerStatus> Track(string requestId) =>
        _byRequest.GetOrAdd(requestId, _ => Channel.CreateUnbounded<BrokerStatus>());

    /// <summary>Every status message from now on, in arrival order (for a monitor; requests have their own).</summary>
    public ChannelReader<BrokerStatus> Statuses =>
        _statuses?.Reader ?? throw new InvalidOperationException("connect with monitor: true to see every status");

    private async Task SetUpAsync(IChannel channel, CancellationToken ct)
    {
        var queue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct)).QueueName;
        await channel.QueueBindAsync(queue, BrokerProtocol.StatusExchange, "", cancellationToken: ct);
        await channel.QueueBindAsync(queue, BrokerProtocol.ProgressExchange, "", cancellationToken: ct);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, e) =>
        {
            var p = e.BasicProperties;
            var status = new BrokerStatus(
                p.CorrelationId ?? "",
                BrokerProtocol.Header(p, "action") ?? "",
                BrokerProtocol.Header(p, "source") ?? "",
                BrokerProtocol.Header(p, "message"),
                Encoding.UTF8.GetString(e.Body.Span),
                DateTimeOffset.Now);
            _statuses?.Writer.TryWrite(status);
            if (_byRequest.TryGetValue(status.RequestId, out var mine))
                mine.Writer.TryWrite(status);
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(queue, autoAck: true, consumer, ct);
    }

    /// <summary>Publishes a request (body JSON) to <paramref name="tag"/>; returns its id (a uuid4).</summary>
    public async Task<string> SendRequestAsync(string body, string tag, CancellationToken ct, string? requestId = null)
    {
        string id = requestId ?? Guid.NewGuid().ToString();
        Track(id); // before publishing: its first status may come back at once
        // Persistent: in the agent's durable queue a waiting request also survives a broker restart.
        var props = new BasicProperties { CorrelationId = id, Persistent = true };
        try
        {
            if (!await _link.TryPublishAsync(BrokerProtocol.RequestExchange, tag, props, Encoding.UTF8.GetBytes(body), ct, mandatory: true))
                throw new IOException($"broker {Address}: the request was not confirmed (connection lost)");
        }
        catch (RabbitMQ.Client.Exceptions.PublishException e) when (e.IsReturn)
        {
            // Mandatory: the broker hands back a request no queue is bound for, instead of dropping it.
            throw new IOException($"broker {Address}: no queue takes requests with tag '{tag}' (has a WriterAgent with this tag ever connected to this broker?)");
        }
        return id;
    }

    public async Task SendKillAsync(string requestId, string tag, CancellationToken ct)
    {
        var props = new BasicProperties { CorrelationId = requestId };
        if (!await _link.TryPublishAsync(BrokerProtocol.KillExchange, tag, props, ReadOnlyMemory<byte>.Empty, ct))
            throw new IOException($"broker {Address}: the kill was not confirmed (connection lost)");
    }

    /// <summary>
    /// Waits for the final status (success or fail) of <paramref name="requestId"/>, calling
    /// <paramref name="onStatus"/> for each of its statuses on the way. Null on timeout.
    /// </summary>
    public async Task<BrokerStatus?> WaitFinalAsync(string requestId, TimeSpan timeout, Action<BrokerStatus>? onStatus, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var mine = Track(requestId).Reader;
        try
        {
            while (await mine.WaitToReadAsync(cts.Token))
            {
                while (mine.TryRead(out var s))
                {
                    onStatus?.Invoke(s);
                    if (s.Action is BrokerProtocol.ActionSuccess or BrokerProtocol.ActionFail)
                    {
                        _byRequest.TryRemove(requestId, out _);
                        return s;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
        }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_run != null)
            await _run;
        await _link.DisposeAsync();
        _stop.Dispose();
    }
}
