using System.Security.Cryptography;
using System.Text.RegularExpressions;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Services;

/// <summary>
/// The deployment of docker/compose.yaml for real (<see cref="ContainerDeployment"/>): the services
/// in their containers, a write request sent from outside the containers through the broker and
/// its files read with h5py, a killed service brought back by its restart policy, the heartbeats
/// in Redis, the configs taken from Redis, a config change restarting a service.
/// </summary>
[Collection("serial")]
[Trait("Category", "Containers")]
public sealed class ContainerDeploymentTests(ContainerDeployment deployment) : IClassFixture<ContainerDeployment>
{
    /// <summary>
    /// Runs the simulator on the host into the containers' receivers while <paramref name="body"/>
    /// runs, then stops it.
    /// </summary>
    private void WithDetector(Action body)
    {
        using var sim = new ServiceProcess("std-daq", "sim", deployment.ConfigPath, "--rate", "20", "--seconds", "600");
        body();
    }

    /// <summary>Sends a write request with the host's std-daq client and waits for its end; returns its final status line.</summary>
    private string Write(string name, int images)
    {
        var r = Programs.Run("std-daq", ["write", $"/data/{name}.h5", $"{images}", "--wait", "--broker-url", deployment.BrokerUrl,
            "--timeout", "120"], TimeSpan.FromMinutes(3));
        Assert.True(r.ExitCode == 0, $"std-daq write exited {r.ExitCode}:\n{r.Stdout}\n{r.Stderr}\n{deployment.Describe()}");
        string final = r.Stdout.Split('\n').Last(l => l.StartsWith("request_success", StringComparison.Ordinal));
        Assert.Contains($"\"n_images_written\":{images}", final);
        return final;
    }

    /// <summary>
    /// The master file through h5py: n images in id order, each share's from its server, every
    /// image the simulator's (those whose status says a packet was lost excepted, at most 10 %).
    /// </summary>
    private void CheckWithH5py(string name, int images)
    {
        string master = Path.Combine(deployment.Output, $"{name}.h5");
        foreach (var share in new[] { 0, 1 })
            Assert.True(File.Exists(Path.Combine(deployment.Output, $"{name}_share{share}of2.h5")), $"no share file {share}");
        using var env = new TestEnv();
        string py = Python.Run(env, """
            import hashlib, sys, h5py
            with h5py.File(sys.argv[1], "r") as f:
                d = f["/entry/data/data"]
                print("shape", *d.shape, d.dtype)
                ids = f["/entry/data/image_id"][:]
                status = f["/entry/data/status"][:]
                for i in range(d.shape[0]):
                    print("image", int(ids[i]), int(status[i]), hashlib.sha256(d[i].tobytes()).hexdigest())
            """, master);
        var config = DetectorConfigLoader.Parse(deployment.ConfigJson);
        Assert.Contains($"shape {images} {config.ImagePixelHeight} {config.ImagePixelWidth} uint16", py);
        var rows = Regex.Matches(py, @"image (\d+) (\d+) ([0-9a-f]{64})")
            .Select(m => (Id: ulong.Parse(m.Groups[1].Value), Status: int.Parse(m.Groups[2].Value), Hash: m.Groups[3].Value)).ToArray();
        Assert.Equal(images, rows.Length);
        Assert.Equal(Enumerable.Range(0, images).Select(i => rows[0].Id + (ulong)i), rows.Select(r => r.Id));
        var good = rows.Where(r => r.Status == 0).ToArray();
        Assert.True(good.Length >= images * 9 / 10, $"only {good.Length} of {images} images complete:\n{py}");
        foreach (var r in good)
            Assert.True(Convert.ToHexStringLower(SHA256.HashData(SimulatedImage.Expected(config, r.Id, _ => true))) == r.Hash,
                $"image {r.Id} differs from the simulator's");
    }

    [Fact]
    public void AWriteRequestFromOutsideIsWrittenByBothServersAndReadWithH5py()
    {
        WithDetector(() =>
        {
            string final = Write("both", 40);
            Assert.Contains("\"shares\":2", final);
            Assert.Contains("both_share1of2.h5", final);
        });
        CheckWithH5py("both", 40);
        // Written by the image's user, not root.
        Assert.Equal("10001", deployment.Run("stat", ["-c", "%u", Path.Combine(deployment.Output, "both.h5")]).Stdout.Trim());
    }

    [Fact]
    public void AKilledServiceIsBroughtBackByItsRestartPolicyAndImagesFlowAgain()
    {
        var before = deployment.WaitForHeartbeats(["assembler"], TimeSpan.FromSeconds(60))["assembler"];
        int restarts = int.Parse(deployment.Inspect("assembler", "{{.RestartCount}}"));
        string pid = deployment.Inspect("assembler", "{{.State.Pid}}");
        Assert.Equal(0, deployment.Run("kill", ["-KILL", pid]).ExitCode);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (int.Parse(deployment.Inspect("assembler", "{{.RestartCount}}")) == restarts || deployment.Inspect("assembler", "{{.State.Status}}") != "running")
        {
            Assert.True(DateTime.UtcNow < deadline, $"the killed assembler was not restarted\n{deployment.Describe()}");
            Thread.Sleep(500);
        }
        // Its new heartbeat: a new start.
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (deployment.Heartbeat("assembler") is not { } now || now["start_timestamp"] == before["start_timestamp"])
        {
            Assert.True(DateTime.UtcNow < deadline, $"no new heartbeat from the restarted assembler\n{deployment.Describe()}");
            Thread.Sleep(1000);
        }
        WithDetector(() => Write("after-kill", 30));
        CheckWithH5py("after-kill", 30);
    }

    [Fact]
    public async Task HeartbeatsLiveWhileTheServicesBeatExpireWhenOneStopsBeatingAndGoAtACleanStop()
    {
        var beats = deployment.WaitForHeartbeats(ContainerDeployment.Services, TimeSpan.FromSeconds(60));
        foreach (var (service, h) in beats)
        {
            Assert.Equal(deployment.ServiceName(service), h["service_name"]);
            long ttl = deployment.Ttl(service);
            Assert.True(ttl is > 0 and <= 15, $"{service}: ttl {ttl}");
        }
        Assert.Equal("StdH5Writer", beats["replica-writer"]["program"]);
        // Every service serves its metrics on its config's port, with its SERVICE_NAME.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        foreach (var (service, port) in deployment.MetricsPorts)
        {
            string metrics = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
            Assert.Contains($"service=\"{deployment.ServiceName(service)}\"", metrics);
            Assert.Contains("_total{", metrics);
        }
        var status = Programs.Run("std-daq", ["status", "--redis", deployment.Redis]);
        Assert.Contains($"{ContainerDeployment.Services.Length} service(s) alive", status.Stdout);

        // Frozen (podman pause): no refresh, so the key expires within its 15 s.
        Assert.Equal(0, deployment.Podman(["pause", deployment.Container("writer")]).ExitCode);
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(25);
            while (deployment.Heartbeat("writer") != null)
            {
                Assert.True(DateTime.UtcNow < deadline, "the heartbeat of a frozen writer did not expire within 25 s");
                Thread.Sleep(500);
            }
            Assert.Equal(1, Programs.Run("std-daq", ["status", "--redis", deployment.Redis, "--service", deployment.ServiceName("writer"), "--quiet"]).ExitCode);
        }
        finally
        {
            deployment.Podman(["unpause", deployment.Container("writer")]);
        }
        deployment.WaitForHeartbeats(["writer"], TimeSpan.FromSeconds(20));
        // The image's health check: the heartbeat of its SERVICE_NAME is alive, or not.
        Assert.Equal(0, deployment.Podman(["healthcheck", "run", deployment.Container("writer")]).ExitCode);
        foreach (var (name, code) in new[] { (deployment.ServiceName("writer"), 0), ($"{deployment.Prefix}.nobody", 1) })
            Assert.Equal(code, deployment.Podman(["run", "--rm", "--network", "host", "-e", $"SERVICE_NAME={name}", "-e", $"REDIS_PORT={deployment.RedisPort}",
                ContainerDeployment.Image, "health"]).ExitCode);

        // A clean stop (SIGTERM from the engine reaches the service through the entrypoint's exec):
        // the key goes at once, the totals are printed, exit 0, and no restart.
        Assert.Equal(0, deployment.Podman(["stop", "-t", "20", deployment.Container("stream-send")], TimeSpan.FromSeconds(60)).ExitCode);
        Assert.Null(deployment.Heartbeat("stream-send"));
        Assert.Equal("exited 0", deployment.Inspect("stream-send", "{{.State.Status}} {{.State.ExitCode}}"));
        Assert.Contains("stopped; totals:", deployment.Logs("stream-send"));
        Assert.Equal(0, deployment.Podman(["start", deployment.Container("stream-send")]).ExitCode);
        deployment.WaitForHeartbeats(["stream-send"], TimeSpan.FromSeconds(60));
    }

    [Fact]
    public void ServicesTakeTheirConfigFromRedisAndAChangeThereRestartsThem()
    {
        // No config.json in any container: each took config.<SERVICE_NAME>, and follows it.
        string hash = deployment.WaitForHeartbeats(["udp-recv-2"], TimeSpan.FromSeconds(60))["udp-recv-2"]["config_hash"];
        Assert.Contains($"running the config in config.{deployment.ServiceName("udp-recv-2")}", deployment.Logs("udp-recv-2"));
        var pulled = Programs.Run("std-daq", ["config", "pull", "--service", deployment.ServiceName("udp-recv-2"), "--redis", deployment.Redis]);
        Assert.Equal(deployment.ConfigJson, pulled.Stdout);

        // Neither a config.json nor a key: one line naming both, exit 2.
        string nobody = $"{deployment.Prefix}.nobody";
        var none = deployment.Podman(["run", "--rm", "--network", "host", "-e", $"SERVICE_NAME={nobody}", "-e", $"REDIS_PORT={deployment.RedisPort}",
            ContainerDeployment.Image, "StdAssembler"]);
        Assert.Equal(2, none.ExitCode);
        Assert.Equal($"std-daq-entrypoint: no config: neither /work/config.json nor the Redis key config.{nobody} at 127.0.0.1:{deployment.RedisPort}",
            none.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single(l => !l.Contains("systemd")));

        // A new config in Redis: the service stops (exit 3), its restart policy starts it again
        // with the new config.
        int restarts = int.Parse(deployment.Inspect("udp-recv-2", "{{.RestartCount}}"));
        string changed = deployment.ConfigJson.Replace("\"stats_collection_period\":5", "\"stats_collection_period\":6");
        Assert.NotEqual(deployment.ConfigJson, changed);
        using var env = new TestEnv();
        string file = Path.Combine(env.Dir, "changed.json");
        File.WriteAllText(file, changed);
        try
        {
            Assert.Equal(0, Programs.Run("std-daq", ["config", "push", file, "--service", deployment.ServiceName("udp-recv-2"), "--redis", deployment.Redis]).ExitCode);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (deployment.Heartbeat("udp-recv-2") is not { } h || h["config_hash"] == hash)
            {
                Assert.True(DateTime.UtcNow < deadline, $"udp-recv-2 did not come back with the new config\n{deployment.Describe()}");
                Thread.Sleep(1000);
            }
            Assert.True(int.Parse(deployment.Inspect("udp-recv-2", "{{.RestartCount}}")) > restarts);
            Assert.Contains($"stopped: its config in Redis (config.{deployment.ServiceName("udp-recv-2")}) changed", deployment.Logs("udp-recv-2"));
        }
        finally
        {
            // The deployment's config back, and the receiver running it again, for the other tests.
            Programs.Run("std-daq", ["config", "push", deployment.ConfigPath, "--service", deployment.ServiceName("udp-recv-2"), "--redis", deployment.Redis]);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (deployment.Heartbeat("udp-recv-2") is not { } h || h["config_hash"] != hash)
            {
                Assert.True(DateTime.UtcNow < deadline, $"udp-recv-2 did not come back with the deployment's config\n{deployment.Describe()}");
                Thread.Sleep(1000);
            }
        }
    }
}
