using System.CommandLine;
using System.Globalization;
using StackExchange.Redis;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;

namespace StdDaq.Cli;

/// <summary>
/// The services' configs and heartbeats in Redis (DESIGN §3): <c>std-daq config push|pull</c>
/// writes and reads <c>config.&lt;SERVICE_NAME&gt;</c>; <c>std-daq status</c> lists every live
/// heartbeat <c>status.&lt;SERVICE_NAME&gt;</c>.
/// </summary>
internal static class RedisCommands
{
    private static Option<string?> Redis() =>
        CliOptions.Text("--redis", "host[:port]", "the Redis server (default: env REDIS_HOST, else 127.0.0.1; REDIS_PORT, else 6379)");

    public static Command Config()
    {
        var file = new Argument<string>("config.json") { Description = "the detector config to store (checked first)" };
        var service = CliOptions.Texts("--service", "NAME", "the service (SERVICE_NAME, facility.beamline.service) whose config it is; may be given several times, each service gets the config");
        var redis = Redis();
        var push = new Command("push", "Stores a checked detector config as config.<NAME> in Redis (a service started without config.json reads it there).")
        {
            file, service, redis,
        };
        push.SetBody((a, logger, ct) =>
        {
            string[] names = a.GetValue(service) is { Length: > 0 } given ? given : [Service(null)];
            string path = a.GetValue(file)!;
            DetectorConfigLoader.Load(path, _ => { });
            string text = File.ReadAllText(path);
            string hash = RedisPlace.ConfigHash(text);
            using var r = Connect(a.GetValue(redis));
            foreach (string name in names.Distinct(StringComparer.Ordinal))
            {
                if (name.Length == 0)
                    throw new UsageException("--service '' is not a service name");
                string key = RedisPlace.ConfigKey(name);
                string? before = r.Db.StringGet(key) is { IsNull: false } v ? RedisPlace.ConfigHash(v.ToString()) : null;
                r.Db.StringSet(key, text);
                Console.WriteLine(before == null ? $"{key}: set ({hash})" : before == hash ? $"{key}: unchanged ({hash})" : $"{key}: {before} -> {hash}");
            }
            return 0;
        });

        var pullService = CliOptions.Text("--service", "NAME", "the service whose config to read");
        var output = CliOptions.Text("--output", "FILE", "write it to FILE (default: standard output)");
        var pullRedis = Redis();
        var pull = new Command("pull", "Reads config.<NAME> from Redis (exit 1 if there is none).") { pullService, output, pullRedis };
        pull.SetBody((a, logger, ct) =>
        {
            string name = Service(a.GetValue(pullService));
            using var r = Connect(a.GetValue(pullRedis));
            var value = r.Db.StringGet(RedisPlace.ConfigKey(name));
            if (value.IsNull)
                throw new IOException($"Redis {r.Place}: no {RedisPlace.ConfigKey(name)}");
            if (a.GetValue(output) is { } path)
                File.WriteAllText(path, value.ToString());
            else
                Console.Write(value.ToString());
            return 0;
        });
        return new Command("config", "The services' configs in Redis.") { push, pull };
    }

    public static Command Status()
    {
        var redis = Redis();
        var one = CliOptions.Text("--service", "NAME", "only this service: exit 0 if its heartbeat is alive, 1 if not (a container's health check)");
        var quiet = CliOptions.Flag("--quiet", "with --service: print nothing, only the exit code");
        var command = new Command("status",
            "Lists every live service heartbeat in Redis: service, program, host, pid, since, config hash, age; flags a config that differs from config.<NAME>.")
        {
            redis, one, quiet,
        };
        command.SetBody((a, logger, ct) =>
        {
            using var r = Connect(a.GetValue(redis));
            if (a.GetValue(one) is { } only)
            {
                bool alive = r.Db.KeyExists(RedisPlace.StatusKey(only));
                if (!a.GetValue(quiet))
                    Console.WriteLine(alive ? $"{only}: alive" : $"{only}: no heartbeat in Redis {r.Place}");
                return alive ? 0 : 1;
            }
            if (a.GetValue(quiet))
                throw new UsageException("--quiet goes with --service NAME");
            var server = r.Connection.GetServers().First();
            var keys = server.Keys(pattern: "status.*").Select(k => k.ToString()).Order(StringComparer.Ordinal).ToList();
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
            Console.WriteLine($"{"service",-40} {"program",-14} {"host",-16} {"pid",7} {"since (UTC)",-19} {"config",-16} {"age",6}  note");
            int differing = 0;
            foreach (var key in keys)
            {
                var h = r.Db.HashGetAll(key).ToDictionary(e => e.Name.ToString(), e => e.Value.ToString());
                string name = h.GetValueOrDefault("service_name", key["status.".Length..]);
                string hash = h.TryGetValue("config_hash", out var ch) ? ch : h.TryGetValue("config", out var c) ? RedisPlace.ConfigHash(c) : "?";
                string since = Seconds(h.GetValueOrDefault("start_timestamp")) is { } s
                    ? DateTimeOffset.FromUnixTimeMilliseconds((long)(s * 1000)).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "?";
                string age = Seconds(h.GetValueOrDefault("updated_timestamp")) is { } u ? $"{now - u:F0} s" : "?";
                var stored = r.Db.StringGet(RedisPlace.ConfigKey(name));
                string note = stored.IsNull ? "" : RedisPlace.ConfigHash(stored.ToString()) == hash ? "" : $"config differs from {RedisPlace.ConfigKey(name)}";
                if (note.Length > 0)
                    differing++;
                Console.WriteLine($"{name,-40} {h.GetValueOrDefault("program", "?"),-14} {h.GetValueOrDefault("host", "?"),-16} {h.GetValueOrDefault("pid", "?"),7} {since,-19} {hash,-16} {age,6}  {note}");
            }
            Console.WriteLine($"{keys.Count} service(s) alive{(differing > 0 ? $", {differing} with a config that differs from Redis" : "")}");
            return 0;
        });
        return command;
    }

    private static double? Seconds(string? text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) ? s : null;

    private static string Service(string? name) =>
        name is { Length: > 0 } n ? n
        : Environment.GetEnvironmentVariable("SERVICE_NAME") is { Length: > 0 } e ? e
        : throw new UsageException("--service NAME is needed (or env SERVICE_NAME)");

    private sealed class Link(RedisPlace place, ConnectionMultiplexer connection) : IDisposable
    {
        public RedisPlace Place { get; } = place;
        public ConnectionMultiplexer Connection { get; } = connection;
        public IDatabase Db => Connection.GetDatabase();
        public void Dispose() => Connection.Dispose();
    }

    /// <summary>A connection for one command: Redis unreachable is one line and exit 1.</summary>
    private static Link Connect(string? redis)
    {
        var place = RedisPlace.Parse(redis);
        var options = place.Options("std-daq");
        options.AbortOnConnectFail = true;
        try
        {
            return new Link(place, ConnectionMultiplexer.Connect(options));
        }
        catch (RedisConnectionException e)
        {
            throw new IOException($"Redis {place} unreachable: {e.Message.Split('\n')[0].Split(". ")[0].TrimEnd('.')}");
        }
    }
}
