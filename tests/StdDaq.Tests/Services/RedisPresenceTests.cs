using StdDaq.Shared.Hosting;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Services;

/// <summary>
/// The services in Redis (a real redis-server on a free loopback port): the heartbeat hash with its
/// expiry, gone at a clean stop and expired after a kill; REDIS_SKIP; Redis down at the start and
/// back later; std-daq config push/pull and status; a service that runs the config in Redis stops
/// with exit 3 when that config changes. StdUdpRecv stands for every service (they share the code).
/// </summary>
public sealed class RedisPresenceTests
{
    private static string WriteConfig(TestEnv env, string name = "detector.json", int statsPeriod = 3600)
    {
        string path = Path.Combine(env.Dir, name);
        env.Ring("0"); // module 0's FrameBuffer, made by the receiver process: removed with the test's environment
        string json = env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1), TestEnv.FreeUdpPorts(1), slots: 8);
        File.WriteAllText(path, json.Replace("\"stats_collection_period\":3600", $"\"stats_collection_period\":{statsPeriod}"));
        return path;
    }

    private static ServiceProcess Receiver(IReadOnlyDictionary<string, string> environment, string config) =>
        ServiceProcess.WithEnvironment("StdUdpRecv", environment, config, "0", "--bind", "127.0.0.1");

    private static bool Until(Func<bool> condition, TimeSpan timeout) => SpinWait.SpinUntil(() =>
    {
        if (condition())
            return true;
        Thread.Sleep(100);
        return false;
    }, timeout);

    [Fact]
    public void Heartbeat_WhileRunning_HashWithExpiryListedByStatus_GoneAtACleanStop()
    {
        using var env = new TestEnv();
        using var redis = new RedisServer();
        string config = WriteConfig(env);
        string service = $"test.{env.Name}.udp_recv";
        using var p = Receiver(redis.Environment(service), config);
        string key = $"status.{service}";
        Assert.True(Until(() => redis.Db.KeyExists(key), TimeSpan.FromSeconds(20)), p.Output);

        var h = redis.Db.HashGetAll(key).ToDictionary(e => e.Name.ToString(), e => e.Value.ToString());
        Assert.Equal(service, h["service_name"]);
        Assert.Equal(File.ReadAllText(config), h["config"]);
        Assert.Equal(p.Pid.ToString(), h["pid"]);
        Assert.Equal("StdUdpRecv", h["program"]);
        Assert.Equal(RedisPlace.ConfigHash(File.ReadAllText(config)), h["config_hash"]);
        double start = double.Parse(h["start_timestamp"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0 - start, 0, 60);
        var ttl = redis.Db.KeyTimeToLive(key);
        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value.TotalSeconds, 1, 15);

        var status = Programs.Run("std-daq", ["status", "--redis", redis.Address]);
        Assert.True(status.ExitCode == 0, status.Stderr);
        Assert.Contains(service, status.Stdout);
        Assert.Contains(h["config_hash"], status.Stdout);
        Assert.Contains("1 service(s) alive", status.Stdout);

        Assert.True(p.Terminate(TimeSpan.FromSeconds(15)), p.Output);
        Assert.Equal(0, p.ExitCode);
        Assert.False(redis.Db.KeyExists(key), "the heartbeat outlived a clean stop");
    }

    [Fact]
    public void Killed_HeartbeatExpiresWithin15Seconds()
    {
        using var env = new TestEnv();
        using var redis = new RedisServer();
        string service = $"test.{env.Name}.udp_recv";
        using var p = Receiver(redis.Environment(service), WriteConfig(env));
        string key = $"status.{service}";
        Assert.True(Until(() => redis.Db.KeyExists(key), TimeSpan.FromSeconds(20)), p.Output);
        p.Kill();
        Assert.True(redis.Db.KeyExists(key), "a killed service cannot remove its heartbeat: it must expire");
        Assert.True(Until(() => !redis.Db.KeyExists(key), TimeSpan.FromSeconds(17)), "the heartbeat did not expire within 15 s");
    }

    [Fact]
    public void RedisSkip_NoHeartbeatAndTheLogSaysSo()
    {
        using var env = new TestEnv();
        using var redis = new RedisServer();
        string service = $"test.{env.Name}.udp_recv";
        var environment = new Dictionary<string, string>(redis.Environment(service)) { ["REDIS_SKIP"] = "1" };
        using var p = Receiver(environment, WriteConfig(env));
        Assert.True(p.WaitForLine("Redis heartbeat of " + service + " off (REDIS_SKIP)", TimeSpan.FromSeconds(20)), p.Output);
        Thread.Sleep(2000);
        Assert.False(redis.Db.KeyExists($"status.{service}"));
    }

    [Fact]
    public void RedisDownAtStart_ServiceRunsSaysSoOnce_HeartbeatAppearsWhenRedisComesBack()
    {
        using var env = new TestEnv();
        using var redis = new RedisServer(start: false);
        string service = $"test.{env.Name}.udp_recv";
        using var p = Receiver(redis.Environment(service), WriteConfig(env));
        Assert.True(p.WaitForLine($"Redis 127.0.0.1:{redis.Port} unreachable", TimeSpan.FromSeconds(20)), p.Output);
        Assert.False(p.HasExited, p.Output);
        redis.Start();
        string key = $"status.{service}";
        Assert.True(Until(() => redis.Db.KeyExists(key), TimeSpan.FromSeconds(25)), p.Output);
        Assert.True(p.WaitForLine("reachable again", TimeSpan.FromSeconds(5)), p.Output);
        Assert.Equal(1, p.Output.Split('\n').Count(l => l.Contains("unreachable")));
        Assert.False(p.HasExited, p.Output);
    }

    [Fact]
    public void ConfigInRedis_PushPullStatusAndAChangeStopsTheServiceWithExit3()
    {
        using var env = new TestEnv();
        using var redis = new RedisServer();
        string config = WriteConfig(env);
        string service = $"test.{env.Name}.udp_recv";
        var push = Programs.Run("std-daq", ["config", "push", config, "--service", service, "--redis", redis.Address]);
        Assert.True(push.ExitCode == 0, push.Stderr);
        Assert.Equal($"config.{service}: set ({RedisPlace.ConfigHash(File.ReadAllText(config))})", push.Stdout.Trim());
        string pulled = Path.Combine(env.Dir, "pulled.json");
        var pull = Programs.Run("std-daq", ["config", "pull", "--service", service, "--output", pulled, "--redis", redis.Address]);
        Assert.True(pull.ExitCode == 0, pull.Stderr);
        Assert.Equal(File.ReadAllText(config), File.ReadAllText(pulled));

        // A service running the config in Redis follows it.
        using var p = Receiver(redis.Environment(service), pulled);
        Assert.True(p.WaitForLine($"running the config in config.{service}", TimeSpan.FromSeconds(20)), p.Output);
        // Another one (another detector), whose config is not the one in Redis, is flagged by status.
        using var env2 = new TestEnv();
        string other = $"test.{env2.Name}.other";
        Assert.True(Programs.Run("std-daq", ["config", "push", WriteConfig(env2, "other.json", statsPeriod: 60), "--service", other, "--redis", redis.Address]).ExitCode == 0);
        using var q = Receiver(redis.Environment(other), WriteConfig(env2, "other-local.json"));
        Assert.True(Until(() => redis.Db.KeyExists($"status.{other}"), TimeSpan.FromSeconds(20)), q.Output);
        var status = Programs.Run("std-daq", ["status", "--redis", redis.Address]);
        Assert.Contains("2 service(s) alive, 1 with a config that differs from Redis", status.Stdout);
        Assert.Contains($"config differs from config.{other}", status.Stdout);

        string changed = WriteConfig(env, "changed.json", statsPeriod: 5);
        var repush = Programs.Run("std-daq", ["config", "push", changed, "--service", service, "--redis", redis.Address]);
        Assert.Contains(" -> ", repush.Stdout);
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(25)), "the service did not stop after its config changed:\n" + p.Output);
        Assert.Equal(ServicePresence.ConfigChangedExitCode, p.ExitCode);
        Assert.Contains($"StdUdpRecv: stopped: its config in Redis (config.{service}) changed", p.Output);
        Assert.False(q.HasExited, "a service not following Redis stopped too:\n" + q.Output);
    }

    [Fact]
    public void Commands_RedisUnreachableOrNoConfig_OneLineAndExit1()
    {
        using var env = new TestEnv();
        using var redis = new RedisServer(start: false);
        var status = Programs.Run("std-daq", ["status", "--redis", redis.Address]);
        Assert.Equal(1, status.ExitCode);
        Assert.StartsWith($"std-daq status: Redis {redis.Address} unreachable", status.Stderr.Trim());
        Assert.Single(status.Stderr.Trim().Split('\n'));
        redis.Start();
        var pull = Programs.Run("std-daq", ["config", "pull", "--service", "no.such.service", "--redis", redis.Address]);
        Assert.Equal(1, pull.ExitCode);
        Assert.Matches($"^std-daq config( pull)?: Redis {redis.Address}: no config\\.no\\.such\\.service$", pull.Stderr.Trim());
        var bad = Programs.Run("std-daq", ["config", "push", Path.Combine(env.Dir, "missing.json"), "--service", "x", "--redis", redis.Address]);
        Assert.Equal(2, bad.ExitCode);
        var noName = Programs.Run("std-daq", ["config", "pull", "--redis", redis.Address], env: new Dictionary<string, string> { ["SERVICE_NAME"] = "" });
        Assert.Equal(2, noName.ExitCode);
        Assert.Contains("--service NAME is needed", noName.Stderr);
    }

    [Fact]
    public void ConfigPush_SeveralServices_EachGetsTheConfig()
    {
        using var env = new TestEnv();
        using var redis = new RedisServer();
        string config = WriteConfig(env, "config.json");
        string[] names = ["fac.bl.udp-recv-0", "fac.bl.assembler", "fac.bl.writer"];
        var push = Programs.Run("std-daq", ["config", "push", config, .. names.SelectMany(n => new[] { "--service", n }), "--redis", redis.Address]);
        Assert.True(push.ExitCode == 0, push.Stderr);
        Assert.Equal(names.Length, push.Stdout.Trim().Split('\n').Length);
        foreach (var n in names)
        {
            var pull = Programs.Run("std-daq", ["config", "pull", "--service", n, "--redis", redis.Address]);
            Assert.Equal(File.ReadAllText(config), pull.Stdout);
        }
        Assert.Equal(1, Programs.Run("std-daq", ["config", "pull", "--service", "fac.bl.other", "--redis", redis.Address]).ExitCode);
    }
}
