using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace StdDaq.Agent.Broker;

/// <summary>
/// One connection and channel to the broker, kept up: when the broker goes away (restart, network)
/// it reconnects with exponential backoff and runs <c>onConnected</c> again on the new channel to
/// re-declare exchanges, queues and consumers. Publishing waits for the broker's confirm, so a
/// status is either known to be stored by the broker or the caller learns it was not.
/// The client library's own recovery is off: this class is the one place that reconnects.
/// </summary>
public sealed partial class BrokerLink : IAsyncDisposable
{
    private readonly ConnectionFactory _factory;
    private readonly Func<IChannel, CancellationToken, Task> _onConnected;
    private readonly ILogger _logger;
    private readonly TimeSpan _maxBackoff;
    private readonly SemaphoreSlim _publishLock = new(1, 1);
    private IConnection? _connection;
    private IChannel? _channel;
    private TaskCompletionSource _up = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _generation;

    public BrokerLink(ConnectionFactory factory, ILogger logger, Func<IChannel, CancellationToken, Task> onConnected,
        TimeSpan? maxBackoff = null)
    {
        _factory = factory;
        _logger = logger;
        _onConnected = onConnected;
        _maxBackoff = maxBackoff ?? TimeSpan.FromSeconds(5);
    }

    public string Address => BrokerProtocol.Describe(_factory);

    /// <summary>Counts connections made; a delivery from an older generation can no longer be acked.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    public bool IsConnected => _channel is { IsOpen: true };

    /// <summary>Completes when the link is connected (now or later).</summary>
    public Task WaitConnectedAsync(CancellationToken ct) => Volatile.Read(ref _up).Task.WaitAsync(ct);

    /// <summary>
    /// Connects once. Throws <see cref="BrokerUnreachableException"/>-derived or IO errors with the
    /// broker address in the message; for clients that must fail fast.
    /// </summary>
    public async Task ConnectOnceAsync(CancellationToken ct)
    {
        try
        {
            await ConnectAsync(ct);
        }
        catch (Exception e) when (e is BrokerUnreachableException or OperationInterruptedException or IOException or TimeoutException)
        {
            throw new IOException($"broker {Address} unreachable: {Innermost(e)}", e);
        }
    }

    /// <summary>Keeps the link up until cancelled: connect, wait for loss, back off, connect again.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(250);
        while (!ct.IsCancellationRequested)
        {
            if (!IsConnected)
            {
                try
                {
                    await ConnectAsync(ct);
                    backoff = TimeSpan.FromMilliseconds(250);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    LogUnreachable(_logger, Address, Innermost(e), backoff.TotalSeconds);
                    await CloseAsync();
                    try
                    {
                        await Task.Delay(backoff, ct);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _maxBackoff.Ticks));
                    continue;
                }
            }
            var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var channel = _channel;
            var connection = _connection;
            if (channel == null || connection == null)
                continue;
            Task OnShutdown(object? sender, ShutdownEventArgs e)
            {
                lost.TrySetResult();
                return Task.CompletedTask;
            }
            connection.ConnectionShutdownAsync += OnShutdown;
            channel.ChannelShutdownAsync += OnShutdown;
            if (!channel.IsOpen)
                lost.TrySetResult();
            try
            {
                await lost.Task.WaitAsync(ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            connection.ConnectionShutdownAsync -= OnShutdown;
            channel.ChannelShutdownAsync -= OnShutdown;
            if (!ct.IsCancellationRequested)
                LogLost(_logger, Address);
            Interlocked.Exchange(ref _up, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            await CloseAsync();
        }
        await CloseAsync();
    }

    private async Task ConnectAsync(CancellationToken ct)
    {
        await CloseAsync();
        _connection = await _factory.CreateConnectionAsync(ct);
        _channel = await _connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), ct);
        // Before the consumers start, so every delivery they see carries the new generation.
        Interlocked.Increment(ref _generation);
        await BrokerProtocol.DeclareExchangesAsync(_channel, ct);
        await _onConnected(_channel, ct);
        LogConnected(_logger, Address);
        Volatile.Read(ref _up).TrySetResult();
    }

    /// <summary>
    /// Publishes and waits for the broker's confirm. False when the link is down or the broker did
    /// not confirm; the caller keeps the message and tries again after reconnecting.
    /// </summary>
    /// <remarks>
    /// With <paramref name="mandatory"/>, a message no queue takes comes back from the broker: that
    /// throws <see cref="PublishException"/> with IsReturn set, for the caller to explain.
    /// </remarks>
    public async Task<bool> TryPublishAsync(string exchange, string routingKey, BasicProperties props,
        ReadOnlyMemory<byte> body, CancellationToken ct, bool mandatory = false)
    {
        await _publishLock.WaitAsync(ct);
        try
        {
            var channel = _channel;
            if (channel is not { IsOpen: true })
                return false;
            await channel.BasicPublishAsync(exchange, routingKey, mandatory, props, body, ct);
            return true;
        }
        catch (PublishException e) when (e.IsReturn)
        {
            throw;
        }
        catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or PublishException or IOException or ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            _publishLock.Release();
        }
    }

    /// <summary>Acks or rejects a delivery if its channel is still the current one (else it died with it).</summary>
    public async Task SettleAsync(long generation, ulong deliveryTag, bool ack)
    {
        var channel = _channel;
        if (generation != Generation || channel is not { IsOpen: true })
            return;
        try
        {
            if (ack)
                await channel.BasicAckAsync(deliveryTag, multiple: false);
            else
                await channel.BasicRejectAsync(deliveryTag, requeue: false);
        }
        catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or IOException or ObjectDisposedException)
        {
            // The delivery died with the channel; the broker no longer holds it for us.
        }
    }

    private async Task CloseAsync()
    {
        var channel = Interlocked.Exchange(ref _channel, null);
        var connection = Interlocked.Exchange(ref _connection, null);
        try
        {
            if (channel != null)
                await channel.DisposeAsync();
        }
        catch (Exception)
        {
            // Closing a channel of a dead connection may throw; there is nothing left to release.
        }
        try
        {
            if (connection != null)
                await connection.DisposeAsync();
        }
        catch (Exception)
        {
            // As above.
        }
    }

    public async ValueTask DisposeAsync() => await CloseAsync();

    private static string Innermost(Exception e)
    {
        while (e.InnerException != null)
            e = e.InnerException;
        return e.Message;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "broker {Address}: connected, exchanges and queues declared")]
    private static partial void LogConnected(ILogger logger, string address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "broker {Address}: connection lost; reconnecting")]
    private static partial void LogLost(ILogger logger, string address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "broker {Address}: not connected ({Error}); retrying in {Seconds:F2} s")]
    private static partial void LogUnreachable(ILogger logger, string address, string error, double seconds);
}
