using System.Text.Json.Nodes;
using StdDaq.Tests.Stream;

namespace StdDaq.Tests.Support;

/// <summary>
/// The deployment of docker/compose.yaml run for real with podman on this machine: the base images
/// (docker/local-base-images: debootstrap from the Debian mirror, the host's .NET SDK), the std-daq
/// image built from docker/Dockerfile (layers reused, so a rerun builds only what changed), then
/// every service of the compose file started by podman-compose with this run's own ports, names,
/// detector and output folder, the configs pushed into the deployment's Redis after the services
/// started (each waits, restarting, until its config is there), and all their heartbeats awaited.
/// Podman runs with runc, cgroupfs and no default ulimits (a containers.conf of its own:
/// CONTAINERS_CONF); no registry is reached. Needs root. Removes its containers, volume, network,
/// rings and files at dispose; the images stay for the next run.
/// </summary>
public sealed class ContainerDeployment : IDisposable
{
    public const string Image = "localhost/std-daq:test";
    /// <summary>The image's user (docker/Dockerfile, DAQ_UID), who must be able to write the output folder.</summary>
    private const int DaqUid = 10001;

    /// <summary>The compose services that are ours, each with its Redis service name's last part.</summary>
    public static readonly string[] Services =
    [
        "udp-recv-0", "udp-recv-1", "udp-recv-2", "udp-recv-3", "assembler", "writer-agent", "writer", "stream-send",
        "replica-stream-recv", "replica-writer-agent", "replica-writer",
    ];

    public string Dir { get; }
    public string Project { get; }
    public string Prefix { get; }
    public string Detector { get; }
    public string ReplicaDetector { get; }
    public string Output { get; }
    public string ConfigPath { get; }
    public string ConfigJson { get; }
    public string ReplicaConfigPath { get; }
    public int AmqpPort { get; }
    /// <summary>Each compose service's metrics port (its config's <c>metrics</c> object).</summary>
    public IReadOnlyDictionary<string, int> MetricsPorts { get; }
    public int RedisPort { get; }
    public string BrokerUrl => $"127.0.0.1:{AmqpPort}";
    public string Redis => $"127.0.0.1:{RedisPort}";
    /// <summary>CONTAINERS_CONF and the compose file's variables, for every podman command.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    public ContainerDeployment()
    {
        if (System.Environment.UserName != "root")
            Assert.Fail("the container deployment tests run podman with host networking and the host's /dev/shm, which needs root (run them as root, as CI does)");
        foreach (var tool in new[] { "podman", "podman-compose", "runc", "debootstrap" })
            if (!OnPath(tool))
                Assert.Fail($"{tool} is not installed (scripts/setup.sh installs podman, podman-compose, runc and debootstrap)");

        string tag = $"{System.Environment.ProcessId % 100000}{Random.Shared.Next(1000):D3}";
        Project = $"sdq{tag}";
        Prefix = $"test.{Project}";
        Detector = $"dep{tag}";
        ReplicaDetector = $"dep{tag}-replica";
        Dir = Path.Combine("/var/tmp", $"stddaq-deploy-{tag}");
        Output = Path.Combine(Dir, "output");
        Directory.CreateDirectory(Output);
        Run("chown", [$"{DaqUid}", Output]);
        string conf = Path.Combine(Dir, "containers.conf");
        File.WriteAllText(conf, """
            [containers]
            default_ulimits = []
            netns = "host"

            [engine]
            cgroup_manager = "cgroupfs"
            runtime = "runc"
            """);

        // The compose file's config, for this run's detector names and UDP ports.
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TestEnv.RepoRoot, "docker", "jungfrau-4module.json")))!.AsObject();
        json["detector_name"] = Detector;
        json["start_udp_port"] = TestEnv.FreeUdpPorts(4);
        json["stats_collection_period"] = 5;
        json["image_buffer_slots"] = 64;
        json["frame_buffer_slots"] = 128;
        // The compose configs' metrics ports, this run's own (a replica on the same host has others).
        int receivers = TestEnv.FreeTcpPorts(4);
        MetricsPorts = new Dictionary<string, int>
        {
            ["udp-recv-0"] = receivers, ["udp-recv-1"] = receivers + 1, ["udp-recv-2"] = receivers + 2, ["udp-recv-3"] = receivers + 3,
            ["assembler"] = StreamSource.FreeTcpPort(), ["writer"] = StreamSource.FreeTcpPort(), ["writer-agent"] = StreamSource.FreeTcpPort(),
            ["stream-send"] = StreamSource.FreeTcpPort() + 1, // share 1 of 2: the configured port + 1
            ["replica-stream-recv"] = StreamSource.FreeTcpPort() + 1, ["replica-writer"] = StreamSource.FreeTcpPort(),
            ["replica-writer-agent"] = StreamSource.FreeTcpPort(),
        };
        json["metrics"] = new JsonObject
        {
            ["udp_recv_port"] = receivers, ["assembler_port"] = MetricsPorts["assembler"], ["writer_port"] = MetricsPorts["writer"],
            ["writer_agent_port"] = MetricsPorts["writer-agent"], ["stream_send_port"] = MetricsPorts["stream-send"] - 1,
        };
        ConfigJson = json.ToJsonString();
        ConfigPath = Path.Combine(Dir, "config.json");
        File.WriteAllText(ConfigPath, ConfigJson);
        json["detector_name"] = ReplicaDetector;
        json["metrics"] = new JsonObject
        {
            ["stream_recv_port"] = MetricsPorts["replica-stream-recv"] - 1, ["writer_port"] = MetricsPorts["replica-writer"],
            ["writer_agent_port"] = MetricsPorts["replica-writer-agent"],
        };
        ReplicaConfigPath = Path.Combine(Dir, "replica.json");
        File.WriteAllText(ReplicaConfigPath, json.ToJsonString());

        AmqpPort = StreamSource.FreeTcpPort();
        RedisPort = StreamSource.FreeTcpPort();
        Environment = new Dictionary<string, string>
        {
            ["CONTAINERS_CONF"] = conf,
            ["STDDAQ_IMAGE"] = Image,
            ["RABBITMQ_IMAGE"] = "localhost/std-daq-rabbitmq:debian",
            ["REDIS_IMAGE"] = "localhost/std-daq-redis:debian",
            ["SERVICE_PREFIX"] = Prefix,
            ["AMQP_PORT"] = $"{AmqpPort}",
            ["EPMD_PORT"] = $"{StreamSource.FreeTcpPort()}",
            ["RABBITMQ_DIST_PORT"] = $"{StreamSource.FreeTcpPort()}",
            ["REDIS_PORT"] = $"{RedisPort}",
            ["STREAM_PORT"] = $"{StreamSource.FreeTcpPort()}",
            ["OUTPUT"] = Output,
            // This machine's cores (docker pins; podman-compose 1.0.3 ignores cpuset).
            ["CPUS_UDP_RECV_0"] = "0", ["CPUS_UDP_RECV_1"] = "1", ["CPUS_UDP_RECV_2"] = "0", ["CPUS_UDP_RECV_3"] = "1",
            ["CPUS_ASSEMBLER"] = "0-1", ["CPUS_WRITER"] = "0-1", ["CPUS_REPLICA"] = "0-1",
        };
        try
        {
            Must(Run(Path.Combine(TestEnv.RepoRoot, "docker", "local-base-images"), [], TimeSpan.FromMinutes(10)), "docker/local-base-images");
            Must(Run("podman", ["build", "--format", "docker", "-f", "docker/Dockerfile",
                "--build-arg", "SDK_IMAGE=localhost/std-daq-dotnet-sdk:10.0", "--build-arg", "RUNTIME_IMAGE=localhost/debian-base:bookworm",
                "-t", Image, "."], TimeSpan.FromMinutes(15)), "podman build");
            // Everything at once, before any config exists: the services wait (restarting) for it.
            Compose(["up", "-d"], TimeSpan.FromMinutes(5));
            PushConfigs();
            WaitForHeartbeats(Services, TimeSpan.FromMinutes(3));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The Redis service name of a compose service (compose.yaml: SERVICE_PREFIX.service, the replica's under .replica).</summary>
    public string ServiceName(string service) =>
        service.StartsWith("replica-", StringComparison.Ordinal) ? $"{Prefix}.replica.{service["replica-".Length..]}" : $"{Prefix}.{service}";

    /// <summary>The container of a compose service (podman-compose names them project_service_1).</summary>
    public string Container(string service) => $"{Project}_{service}_1";

    public void PushConfigs()
    {
        var source = Services.Where(s => !s.StartsWith("replica-", StringComparison.Ordinal));
        var replica = Services.Where(s => s.StartsWith("replica-", StringComparison.Ordinal));
        foreach (var (file, services) in new[] { (ConfigPath, source), (ReplicaConfigPath, replica) })
        {
            var r = Programs.Run("std-daq", ["config", "push", file, "--redis", Redis, .. services.SelectMany(s => new[] { "--service", ServiceName(s) })]);
            Assert.True(r.ExitCode == 0, $"config push: {r.Stdout}{r.Stderr}");
        }
    }

    /// <summary>Every named service's heartbeat fields, once all are in Redis (fails after the timeout).</summary>
    public Dictionary<string, Dictionary<string, string>> WaitForHeartbeats(IEnumerable<string> services, TimeSpan timeout)
    {
        var names = services.ToArray();
        var deadline = DateTime.UtcNow + timeout;
        var found = new Dictionary<string, Dictionary<string, string>>();
        while (true)
        {
            found.Clear();
            foreach (var s in names)
                if (Heartbeat(s) is { } h)
                    found[s] = h;
            if (found.Count == names.Length)
                return found;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"no heartbeat after {timeout.TotalSeconds:0} s from {string.Join(", ", names.Except(found.Keys))}\n{Describe()}");
            Thread.Sleep(1000);
        }
    }

    /// <summary>A service's heartbeat hash, null if the key is not there.</summary>
    public Dictionary<string, string>? Heartbeat(string service)
    {
        var r = Run("redis-cli", ["-p", $"{RedisPort}", "--raw", "hgetall", $"status.{ServiceName(service)}"]);
        var lines = r.Stdout.Split('\n');
        if (r.ExitCode != 0 || lines.Length < 2)
            return null;
        var h = new Dictionary<string, string>();
        // Field and value alternate; only the fields without line breaks are taken (config is the one with).
        for (int i = 0; i + 1 < lines.Length; i++)
            if (lines[i] is "service_name" or "start_timestamp" or "config_hash" or "program" or "updated_timestamp")
                h[lines[i]] = lines[i + 1];
        return h.Count > 0 ? h : null;
    }

    public long Ttl(string service) =>
        long.Parse(Run("redis-cli", ["-p", $"{RedisPort}", "ttl", $"status.{ServiceName(service)}"]).Stdout.Trim());

    public string Inspect(string service, string format) =>
        Must(Podman(["inspect", Container(service), "--format", format]), "podman inspect").Stdout.Trim();

    public string Logs(string service) =>
        Podman(["logs", Container(service)]) is var r ? r.Stdout + r.Stderr : "";

    public Programs.Result Podman(IEnumerable<string> args, TimeSpan? timeout = null) => Run("podman", args, timeout);

    public void Compose(IEnumerable<string> args, TimeSpan timeout) =>
        Must(RunCompose(args, timeout), "podman-compose " + string.Join(' ', args));

    private Programs.Result RunCompose(IEnumerable<string> args, TimeSpan timeout) =>
        Run("podman-compose", ["--podman-path", Path.Combine(TestEnv.RepoRoot, "docker", "podman-hostnet"), "-p", Project,
            "-f", Path.Combine(TestEnv.RepoRoot, "docker", "compose.yaml"), .. args], timeout);

    /// <summary>This project's containers (every state).</summary>
    public string[] Containers() =>
        Run("podman", ["ps", "-a", "--filter", $"label=io.podman.compose.project={Project}", "--format", "{{.Names}}"]).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The containers' states and restart counts and the last lines of each log, for a failure's message.</summary>
    public string Describe()
    {
        var sb = new System.Text.StringBuilder();
        foreach (var c in Containers())
        {
            var i = Run("podman", ["inspect", c, "--format", "{{.State.Status}} exit {{.State.ExitCode}} restarts {{.RestartCount}}"]);
            sb.AppendLine($"{c}: {i.Stdout.Trim()}");
            var log = Run("podman", ["logs", "--tail", "4", c]);
            foreach (var line in (log.Stdout + log.Stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.Contains("systemd")))
                sb.AppendLine("    " + line);
        }
        return sb.ToString();
    }

    public Programs.Result Run(string file, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        return Programs.RunProcess(file, args, timeout ?? TimeSpan.FromMinutes(2), Environment, TestEnv.RepoRoot);
    }

    private static Programs.Result Must(Programs.Result r, string what)
    {
        Assert.True(r.ExitCode == 0, $"{what} exited {r.ExitCode}:\n{Tail(r.Stdout)}\n{Tail(r.Stderr)}");
        return r;
    }

    private static string Tail(string s) => s.Length > 4000 ? "…" + s[^4000..] : s;

    private static bool OnPath(string tool) =>
        (System.Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, tool)));

    public void Dispose()
    {
        try
        {
            RunCompose(["down", "-t", "10"], TimeSpan.FromMinutes(3));
        }
        catch (TimeoutException)
        {
        }
        // podman-compose down leaves a container that was restarting at that moment, and its network.
        foreach (var c in Containers())
            Run("podman", ["rm", "-f", "-t", "2", c]);
        foreach (var v in new[] { "endpoints", "redis-data", "rabbitmq-data" })
            Run("podman", ["volume", "rm", "-f", $"{Project}_{v}"]);
        Run("podman", ["network", "rm", "-f", $"{Project}_default"]);
        foreach (var d in new[] { Detector, ReplicaDetector })
            Programs.Run("std-daq", ["shm", "rm", "--detector", d, "--force"]);
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
