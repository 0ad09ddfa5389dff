using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace StdDaq.Agent.Broker;

/// <summary>
/// Status messages in the order they were made, published one by one with the broker's confirm.
/// While the broker is away they wait here, so a request that was running during a broker restart
/// still ends in a definite status once the broker is back. After a reconnect the outbox waits
/// <see cref="ReconnectGrace"/> before publishing, so clients whose own queues went with the old
/// broker have time to bind new ones (statuses are fanned out to the queues that exist, no others).
/// </summary>
public sealed partial class StatusOutbox
{
    private readonly BrokerLink _link;
    private readonly string _source;
    private readonly ILogger _logger;
    private readonly Channel<Item> _items = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true });

    private sealed record Item(string RequestId, string Action, string? Message, ReadOnlyMemory<byte> Body, string RoutingKey, TaskCompletionSource Published);

    public StatusOutbox(BrokerLink link, string source, ILogger logger)
    {
        _link = link;
        _source = source;
        _logger = logger;
    }

    public TimeSpan ReconnectGrace { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Statuses not yet confirmed by the broker.</summary>
    public int Pending => _items.Reader.CanCount ? _items.Reader.Count : 0;

    /// <summary>Queues a status; the task completes when the broker has confirmed it.</summary>
    public Task Enqueue(string requestId, string action, string? message, ReadOnlyMemory<byte> body, string routingKey)
    {
        var item = new Item(requestId, action, message, body, routingKey, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        _items.Writer.TryWrite(item);
        return item.Published.Task;
    }

    public async Task RunAsync(CancellationToken ct)
    {
        long publishedOn = -1;
        try
        {
            await foreach (var item in _items.Reader.ReadAllAsync(ct))
            {
                while (true)
                {
                    long generation = _link.Generation;
                    if (!_link.IsConnected)
                    {
                        await _link.WaitConnectedAsync(ct);
                        continue;
                    }
                    if (publishedOn >= 0 && generation != publishedOn)
                        await Task.Delay(ReconnectGrace, ct);
                    var props = BrokerProtocol.StatusProperties(item.RequestId, item.Action, _source, item.Message);
                    if (await _link.TryPublishAsync(BrokerProtocol.ExchangeOf(item.Action), item.RoutingKey, props, item.Body, ct))
                    {
                        publishedOn = generation;
                        item.Published.TrySetResult();
                        break;
                    }
                    LogHeld(_logger, item.Action, item.RequestId);
                    publishedOn = generation; // so the grace applies after the next reconnect
                    await Task.Delay(200, ct);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "status {Action} of request {RequestId} not confirmed by the broker; kept, will publish after reconnecting")]
    private static partial void LogHeld(ILogger logger, string action, string requestId);
}
