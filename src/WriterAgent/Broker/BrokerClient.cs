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
    private readonly Channel<BrokerStatus> _statuses = Channel.CreateUnbounded<BrokerStatus>();
    private readonly CancellationTokenSource _stop = new();
    private Task? _run;

    private BrokerClient(string? brokerUrl, ILogger logger)
    {
        _link = new BrokerLink(BrokerProtocol.Factory(brokerUrl, "std-daq-client"), logger, SetUpAsync, TimeSpan.FromSeconds(1));
    }

    public string Address => _link.Address;

    /// <summary>Connects (failing fast with an IOException naming the broker) and starts seeing statuses.</summary>
    public static async Task<BrokerClient> ConnectAsync(string? brokerUrl, ILogger logger, CancellationToken ct)
    {
        var client = new BrokerClient(brokerUrl, logger);
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

    /// <summary>Every status message from now on, in arrival order.</summary>
    public ChannelReader<BrokerStatus> Statuses => _statuses.Reader;

    private async Task SetUpAsync(IChannel channel, CancellationToken ct)
    {
        var queue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct)).QueueName;
        await channel.QueueBindAsync(queue, BrokerProtocol.StatusExchange, "", cancellationToken: ct);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, e) =>
        {
            var p = e.BasicProperties;
            _statuses.Writer.TryWrite(new BrokerStatus(
                p.CorrelationId ?? "",
                BrokerProtocol.Header(p, "action") ?? "",
                BrokerProtocol.Header(p, "source") ?? "",
                BrokerProtocol.Header(p, "message"),
                Encoding.UTF8.GetString(e.Body.Span),
                DateTimeOffset.Now));
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(queue, autoAck: true, consumer, ct);
    }

    /// <summary>Publishes a request (body JSON) to <paramref name="tag"/>; returns its id (a uuid4).</summary>
    public async Task<string> SendRequestAsync(string body, string tag, CancellationToken ct, string? requestId = null)
    {
        string id = requestId ?? Guid.NewGuid().ToString();
        var props = new BasicProperties { CorrelationId = id };
        if (!await _link.TryPublishAsync(BrokerProtocol.RequestExchange, tag, props, Encoding.UTF8.GetBytes(body), ct))
            throw new IOException($"broker {Address}: the request was not confirmed (connection lost)");
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
        try
        {
            while (await _statuses.Reader.WaitToReadAsync(cts.Token))
            {
                while (_statuses.Reader.TryRead(out var s))
                {
                    if (s.RequestId != requestId)
                        continue;
                    onStatus?.Invoke(s);
                    if (s.Action is BrokerProtocol.ActionSuccess or BrokerProtocol.ActionFail)
                        return s;
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
