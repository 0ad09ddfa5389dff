using System.Text;
using RabbitMQ.Client;

namespace StdDaq.Agent.Broker;

/// <summary>
/// The std-daq broker protocol (DESIGN §7): three exchanges, declared by every client exactly as
/// std-daq's Python clients declare them (not durable, not auto-deleted; a different flag would make
/// the broker refuse one side), requests and kills routed by tag, statuses fanned out.
/// </summary>
public static class BrokerProtocol
{
    public const string RequestExchange = "request", StatusExchange = "status", KillExchange = "kill";
    public const string ActionStart = "request_start", ActionSuccess = "request_success", ActionFail = "request_fail";
    /// <summary>
    /// Ours: progress of a running request. It goes to <see cref="ProgressExchange"/>, never to
    /// <see cref="StatusExchange"/>: std-daq's post-processing services act on any status of the
    /// primary that is not request_start or request_fail, so a progress message there would start
    /// their work before the file is closed.
    /// </summary>
    public const string ActionProgress = "request_progress";
    /// <summary>Ours: a fanout exchange for progress messages (same properties and body as a status), which std-daq's clients never bind.</summary>
    public const string ProgressExchange = "status_progress";

    /// <summary>
    /// Ours: the writer agents of one request written by N servers (scale-out writing) talk on this
    /// topic exchange, never on <see cref="StatusExchange"/>: the lead (share 0) announces the
    /// request's first image id (<see cref="ActionShareFirst"/>, key <c>first.&lt;request id&gt;</c>)
    /// and its end (<see cref="ActionShareDone"/>, key <c>done.&lt;request id&gt;</c>); the other shares
    /// report progress and their end to the lead (<see cref="ActionShareProgress"/>,
    /// <see cref="ActionShareEnd"/>, key <c>share.&lt;request id&gt;</c>). Same properties as a status.
    /// </summary>
    public const string SharesExchange = "writer_shares";
    public const string ActionShareFirst = "share_first", ActionShareDone = "share_done",
        ActionShareProgress = "share_progress", ActionShareEnd = "share_end";

    /// <summary>The exchange a status message of this action goes to.</summary>
    public static string ExchangeOf(string action) =>
        action == ActionProgress ? ProgressExchange : action.StartsWith("share_", StringComparison.Ordinal) ? SharesExchange : StatusExchange;
    public const int DefaultPort = 5672;

    public static async Task DeclareExchangesAsync(IChannel channel, CancellationToken ct)
    {
        await channel.ExchangeDeclareAsync(RequestExchange, ExchangeType.Topic, durable: false, autoDelete: false, cancellationToken: ct);
        await channel.ExchangeDeclareAsync(StatusExchange, ExchangeType.Fanout, durable: false, autoDelete: false, cancellationToken: ct);
        await channel.ExchangeDeclareAsync(KillExchange, ExchangeType.Topic, durable: false, autoDelete: false, cancellationToken: ct);
        await channel.ExchangeDeclareAsync(ProgressExchange, ExchangeType.Fanout, durable: false, autoDelete: false, cancellationToken: ct);
        await channel.ExchangeDeclareAsync(SharesExchange, ExchangeType.Topic, durable: false, autoDelete: false, cancellationToken: ct);
    }

    /// <summary>
    /// The broker address: a host name ("127.0.0.1", "broker:5673") or an amqp:// URI with user,
    /// password and virtual host. Empty: env BROKER_HOST, else 127.0.0.1.
    /// </summary>
    public static ConnectionFactory Factory(string? brokerUrl, string clientName)
    {
        string url = string.IsNullOrWhiteSpace(brokerUrl)
            ? Environment.GetEnvironmentVariable("BROKER_HOST") is { Length: > 0 } env ? env : "127.0.0.1"
            : brokerUrl;
        var factory = new ConnectionFactory
        {
            ClientProvidedName = clientName,
            AutomaticRecoveryEnabled = false, // BrokerLink reconnects and re-declares itself
            TopologyRecoveryEnabled = false,
            RequestedHeartbeat = TimeSpan.FromSeconds(10),
            RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
        };
        if (url.Contains("://", StringComparison.Ordinal))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps"))
                throw new ArgumentException($"broker url '{url}' is not an amqp:// URI or a host name");
            factory.Uri = uri;
        }
        else
        {
            int colon = url.LastIndexOf(':');
            if (colon > 0 && int.TryParse(url.AsSpan(colon + 1), out int port) && port is > 0 and < 65536)
            {
                factory.HostName = url[..colon];
                factory.Port = port;
            }
            else
            {
                factory.HostName = url;
                factory.Port = DefaultPort;
            }
        }
        return factory;
    }

    public static string Describe(ConnectionFactory f) => $"amqp://{f.HostName}:{f.Port}{(f.VirtualHost == "/" ? "" : "/" + f.VirtualHost)}";

    public static BasicProperties StatusProperties(string requestId, string action, string source, string? message) => new()
    {
        CorrelationId = requestId,
        Headers = new Dictionary<string, object?>
        {
            ["action"] = action,
            ["source"] = source,
            ["message"] = message,
        },
    };

    /// <summary>A header as text (the client library hands string headers back as UTF-8 bytes).</summary>
    public static string? Header(IReadOnlyBasicProperties props, string key) =>
        props.Headers != null && props.Headers.TryGetValue(key, out var v) ? v switch
        {
            null => null,
            byte[] b => Encoding.UTF8.GetString(b),
            _ => v.ToString(),
        } : null;
}

/// <summary>A status message as a client sees it.</summary>
public sealed record BrokerStatus(string RequestId, string Action, string Source, string? Message, string Body, DateTimeOffset Time);
