using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace StdDaq.Shared.Hosting;

/// <summary>
/// Where the services find Redis (std-daq's container convention, DESIGN §3): <c>REDIS_HOST</c>
/// (default 127.0.0.1), <c>REDIS_PORT</c> (default 6379); <c>REDIS_SKIP</c> set to anything but
/// empty, 0 or false turns Redis off.
/// </summary>
public sealed record RedisPlace(string Host, int Port, bool Skip)
{
    /// <summary>Redis's port when none is given.</summary>
    public const int DefaultPort = 6379;

    /// <summary>From the environment.</summary>
    public static RedisPlace FromEnvironment()
    {
        string host = Environment.GetEnvironmentVariable("REDIS_HOST") is { Length: > 0 } h ? h : "127.0.0.1";
        string? portText = Environment.GetEnvironmentVariable("REDIS_PORT");
        int port = DefaultPort;
        if (!string.IsNullOrEmpty(portText) && (!int.TryParse(portText, out port) || port is < 1 or > 65535))
            throw new UsageException($"REDIS_PORT '{portText}' is not a port number (1-65535)");
        string? skip = Environment.GetEnvironmentVariable("REDIS_SKIP");
        return new RedisPlace(host, port, !string.IsNullOrEmpty(skip) && skip != "0" && !skip.Equals("false", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>"host[:port]" (a command's --redis), else the environment's.</summary>
    public static RedisPlace Parse(string? text)
    {
        var env = FromEnvironment();
        if (string.IsNullOrWhiteSpace(text))
            return env;
        int colon = text.LastIndexOf(':');
        if (colon < 0)
            return env with { Host = text, Port = DefaultPort };
        if (colon == 0 || !int.TryParse(text.AsSpan(colon + 1), out int port) || port is < 1 or > 65535)
            throw new UsageException($"--redis '{text}' is not host[:port]");
        return env with { Host = text[..colon], Port = port };
    }

    /// <summary>"host:port".</summary>
    public override string ToString() => $"{Host}:{Port}";

    /// <summary>A connection that never fails at once: it connects, and reconnects, in the background.</summary>
    public ConfigurationOptions Options(string clientName) => new()
    {
        EndPoints = { { Host, Port } },
        AbortOnConnectFail = false,
        ConnectTimeout = 2000,
        SyncTimeout = 2000,
        AsyncTimeout = 2000,
        ClientName = clientName,
    };

    /// <summary>The key of a service's heartbeat hash.</summary>
    public static string StatusKey(string service) => $"status.{service}";

    /// <summary>The key of a service's config.</summary>
    public static string ConfigKey(string service) => $"config.{service}";

    /// <summary>
    /// A config's identity: the SHA-256 of its JSON written compactly (so spacing and line ends do
    /// not count), first 16 hex digits; of the text as it is when it is not JSON.
    /// </summary>
    public static string ConfigHash(string text)
    {
        string canonical;
        try
        {
            canonical = JsonNode.Parse(text)?.ToJsonString() ?? text;
        }
        catch (System.Text.Json.JsonException)
        {
            canonical = text;
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))[..16];
    }
}

/// <summary>
/// A service's presence in Redis (DESIGN §3): the heartbeat hash <c>status.&lt;SERVICE_NAME&gt;</c>
/// (<c>config</c>, <c>service_name</c>, <c>start_timestamp</c> as std-daq writes them, and ours:
/// <c>host</c>, <c>pid</c>, <c>program</c>, <c>config_hash</c>, <c>updated_timestamp</c>) with a
/// 15 s expiry, refreshed every 10 s, removed at a clean stop. It runs beside the data path and
/// never holds it up: Redis down → the service runs on, says so once, and retries every period.
/// A service whose config is the one in <c>config.&lt;SERVICE_NAME&gt;</c> at its start follows
/// that key: when it changes, the service stops cleanly with exit code
/// <see cref="ConfigChangedExitCode"/>, so its supervisor starts it again with the new config.
/// </summary>
public sealed partial class ServicePresence : IAsyncDisposable, IDisposable
{
    /// <summary>The exit code of a service that stopped because its config in Redis changed.</summary>
    public const int ConfigChangedExitCode = 3;
    /// <summary>How often the heartbeat is refreshed (and the config in Redis looked at).</summary>
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(10);
    /// <summary>The heartbeat's expiry: a service that stops refreshing it (killed) is gone from Redis after it.</summary>
    public static readonly TimeSpan Expiry = TimeSpan.FromSeconds(15);

    private readonly RedisPlace _place;
    private readonly string _service, _program, _config, _hash;
    private readonly ILogger _logger;
    private readonly TimeSpan _period;
    private readonly Action<string> _onConfigChanged;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _task;
    private ConnectionMultiplexer? _redis;

    /// <summary>The service name the heartbeat is under.</summary>
    public string ServiceName => _service;

    private ServicePresence(RedisPlace place, string service, string program, string config, ILogger logger, TimeSpan period,
        Action<string> onConfigChanged)
    {
        _place = place;
        _service = service;
        _program = program;
        _config = config;
        _hash = RedisPlace.ConfigHash(config);
        _logger = logger;
        _period = period;
        _onConfigChanged = onConfigChanged;
        _task = place.Skip ? Task.CompletedTask : Task.Run(RunAsync);
    }

    /// <summary>
    /// Starts the heartbeat of <paramref name="program"/> as <c>SERVICE_NAME</c> (else
    /// <paramref name="defaultName"/>), its config text <paramref name="configText"/>; a config
    /// change in Redis stops the program (<see cref="ServiceHost.RequestExit"/>).
    /// </summary>
    public static ServicePresence Start(string program, string defaultName, string configText, ILogger logger, TimeSpan? period = null) =>
        StartAs(program, Environment.GetEnvironmentVariable("SERVICE_NAME") is { Length: > 0 } s ? s : defaultName, configText, logger, period);

    /// <summary><see cref="Start"/> for the config file at <paramref name="configPath"/> (read again for its text).</summary>
    public static ServicePresence StartFor(string program, string defaultName, string configPath, ILogger logger) =>
        Start(program, defaultName, File.ReadAllText(configPath), logger);

    /// <summary><see cref="Start"/> under exactly <paramref name="service"/> (a service that names itself, e.g. by --service-name).</summary>
    public static ServicePresence StartAs(string program, string service, string configText, ILogger logger, TimeSpan? period = null)
    {
        var place = RedisPlace.FromEnvironment();
        if (place.Skip)
            LogSkipped(logger, service);
        return new ServicePresence(place, service, program, configText, logger, period ?? Period,
            reason => ServiceHost.RequestExit(ConfigChangedExitCode, reason));
    }

    private async Task RunAsync()
    {
        var ct = _stop.Token;
        bool? reachable = null;
        string? followed = null; // the config hash in Redis at start, when it is this service's
        bool checkedAtStart = false;
        long started = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        try
        {
            _redis = await ConnectionMultiplexer.ConnectAsync(_place.Options(_service));
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    var db = _redis.GetDatabase();
                    string key = RedisPlace.StatusKey(_service);
                    await db.HashSetAsync(key,
                    [
                        new("config", _config),
                        new("service_name", _service),
                        new("start_timestamp", (started / 1000.0).ToString("F3", System.Globalization.CultureInfo.InvariantCulture)),
                        new("host", Environment.MachineName),
                        new("pid", Environment.ProcessId),
                        new("program", _program),
                        new("config_hash", _hash),
                        new("updated_timestamp", (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0).ToString("F3", System.Globalization.CultureInfo.InvariantCulture)),
                    ]);
                    await db.KeyExpireAsync(key, Expiry);
                    var inRedis = await db.StringGetAsync(RedisPlace.ConfigKey(_service));
                    string? hash = inRedis.IsNull ? null : RedisPlace.ConfigHash(inRedis.ToString());
                    if (!checkedAtStart)
                    {
                        checkedAtStart = true;
                        followed = hash == _hash ? hash : null;
                        if (followed != null)
                            LogFollowing(_logger, RedisPlace.ConfigKey(_service));
                    }
                    else if (followed != null && hash != null && hash != followed)
                    {
                        LogConfigChanged(_logger, RedisPlace.ConfigKey(_service), followed, hash, ServicePresence.ConfigChangedExitCode);
                        _onConfigChanged($"its config in Redis ({RedisPlace.ConfigKey(_service)}) changed");
                        followed = null;
                    }
                    if (reachable != true)
                        LogReachable(_logger, _place.ToString(), key, reachable == false ? " again" : "");
                    reachable = true;
                }
                catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
                {
                    if (reachable != false)
                        LogUnreachable(_logger, _place.ToString(), e.Message, _period.TotalSeconds);
                    reachable = false;
                }
                await Task.Delay(_period, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Stops the heartbeat and removes it (a clean stop).</summary>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _task.ConfigureAwait(false);
        if (_redis is { } redis)
        {
            try
            {
                // A clean stop: the heartbeat goes at once (a killed service's expires).
                if (redis.IsConnected)
                    await redis.GetDatabase().KeyDeleteAsync(RedisPlace.StatusKey(_service)).WaitAsync(TimeSpan.FromSeconds(2));
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
            }
            await redis.CloseAsync(allowCommandsToComplete: false);
            redis.Dispose();
        }
        _stop.Dispose();
    }

    /// <summary>For synchronous callers (the service programs): <see cref="DisposeAsync"/>, waited for.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis heartbeat of {Service} off (REDIS_SKIP)")]
    private static partial void LogSkipped(ILogger logger, string service);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis {Place} reachable{Again}: heartbeat {Key}")]
    private static partial void LogReachable(ILogger logger, string place, string key, string again);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis {Place} unreachable ({Reason}); the service runs on and retries every {Seconds} s")]
    private static partial void LogUnreachable(ILogger logger, string place, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "running the config in {Key}; a change there stops this service for its supervisor to restart it")]
    private static partial void LogFollowing(ILogger logger, string key);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Key} changed ({Old} -> {New}): stopping (exit {Code}) for the supervisor to restart with it")]
    private static partial void LogConfigChanged(ILogger logger, string key, string old, string @new, int code);
}
