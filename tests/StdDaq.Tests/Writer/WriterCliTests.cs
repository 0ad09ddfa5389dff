using System.Text.RegularExpressions;
using StdDaq.Agent.Broker;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Writer;

/// <summary>The std-daq broker commands and the writer programs as separate processes.</summary>
[Collection("broker")]
public sealed partial class WriterCliTests(BrokerFixture broker)
{
    [GeneratedRegex("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    private static partial Regex Uuid4();

    [Fact]
    public async Task Write_WithWait_PrintsTheRequestIdProgressAndSuccess()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url);
        string file = Path.Combine(env.Dir, "cli.h5");
        // A monitor next to it, as a user would run one in another terminal.
        using var monitor = new ServiceProcess("std-daq", "monitor", "--broker-url", broker.Url, "--seconds", "15");
        // It says so once its queue is bound: statuses from then on reach it.
        Assert.True(monitor.WaitForLine("std-daq monitor: status messages on", TimeSpan.FromSeconds(30)), monitor.Output);

        var r = await Task.Run(() => Programs.Run("std-daq",
            ["write", file, "20", "--wait", "--timeout", "60", "--broker-url", broker.Url, "--tag", p.Tag], TimeSpan.FromSeconds(90)));

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stdout} {r.Stderr}");
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string id = lines[0].Trim();
        Assert.Matches(Uuid4(), id);
        Assert.Contains(lines, l => l.StartsWith("[########################################] 20/20 images"));
        Assert.Contains(lines, l => l.StartsWith($"request_success from {p.Config.DetectorName}.writer_agent:") && l.Contains("\"n_images_written\":20"));
        Assert.Equal([20, 1024, 1024], H5py.Longs(H5py.Read(env, file).GetProperty("shape")));

        Assert.True(monitor.WaitForExit(TimeSpan.FromSeconds(40)), monitor.Output);
        Assert.Equal(0, monitor.ExitCode);
        var mine = monitor.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains(id)).ToList();
        // time, request id, service, action, message
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} " + id + " " + Regex.Escape(p.Config.DetectorName) + @"\.writer_agent request_start -$", mine[0]);
        Assert.Contains(mine, l => l.Contains(" request_success {\"output_file\""));
    }

    [Fact]
    public async Task Kill_ThroughTheCli_EndsTheRunInterrupted()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100);
        string id = await p.SendAsync(WriterPipeline.Body(Path.Combine(env.Dir, "long.h5"), 1_000_000));
        var running = new TaskCompletionSource();
        var final = p.FinalAsync(id, TimeSpan.FromSeconds(60), s =>
        {
            if (s.Action == BrokerProtocol.ActionProgress)
                running.TrySetResult();
        });
        await running.Task.WaitAsync(TimeSpan.FromSeconds(60));

        var r = Programs.Run("std-daq", ["kill", id, "--broker-url", broker.Url, "--tag", p.Tag]);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"kill sent for request {id}", r.Stdout);
        var status = await final;
        Assert.Equal(BrokerProtocol.ActionFail, status.Action);
        Assert.Contains("interrupted (killed by request)", status.Message);
    }

    [Fact]
    public async Task Write_WithWaitAndARequestThatFails_PrintsTheFailAndExit1()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url);
        string existing = Path.Combine(env.Dir, "existing.h5");
        File.WriteAllText(existing, "keep me");

        var r = await Task.Run(() => Programs.Run("std-daq",
            ["write", existing, "5", "--wait", "--timeout", "30", "--broker-url", broker.Url, "--tag", p.Tag], TimeSpan.FromSeconds(60)));

        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"request_fail from {p.Config.DetectorName}.writer_agent: output_file: '{existing}' already exists", r.Stdout);
        Assert.Equal("keep me", File.ReadAllText(existing));
    }

    [Fact]
    public void Up_PrivateBrokerSimulatorAndWrite_TheWholeDemoChainChecksItsFile()
    {
        using var env = new TestEnv();
        string config = Path.Combine(env.Dir, "config.json");
        File.WriteAllText(config, env.ConfigJson("jungfrau-raw", 2, 16, 1024, 1024, TestEnv.JungfrauColumn(2), TestEnv.FreeUdpPorts(2), slots: 64)
            .Replace("\"stats_collection_period\":3600}", "\"stats_collection_period\":3600,\"image_buffer_slots\":256}"));
        string file = Path.Combine(env.Dir, "up.h5");
        env.Ring("image");
        env.Ring("0");
        env.Ring("1");

        var r = Programs.Run("std-daq", ["up", config, "--private-broker", "--simulate", "--rate", "100", "--write", file, "--images", "50", "--cleanup"],
            TimeSpan.FromSeconds(180));

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stdout}\n{r.Stderr}");
        Assert.Contains("request_success from", r.Stdout);
        Assert.Contains("/entry/data/data: shape [50, 1024, 1024], uint16", r.Stdout);
        Assert.Contains("pixels: all 50 written images equal the simulator pattern", r.Stdout);
        Assert.Contains("OK: the file holds the requested images, exactly as simulated", r.Stdout);
        Assert.False(File.Exists($"/dev/shm/{env.Name}-image"), "--cleanup left the image buffer");
        // A normal stop leaves no socket or lock file.
        Assert.Empty(Directory.EnumerateFileSystemEntries("/tmp", $"{env.Name}-*").Concat(Directory.EnumerateFileSystemEntries("/tmp", $"std-daq-{env.Name}-*"))
            .Concat(Directory.EnumerateFiles("/dev/shm", $"{env.Name}-*")));
        Assert.Equal([50, 1024, 1024], H5py.Longs(H5py.Read(env, file).GetProperty("shape")));
    }

    [Fact]
    public async Task Write_NoAgentForTheTag_OneLineAndExit1()
    {
        var r = await Task.Run(() => Programs.Run("std-daq", ["write", "/tmp/nobody.h5", "5", "--broker-url", broker.Url, "--tag", "no-such-detector"]));

        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"std-daq write: broker amqp://127.0.0.1:{broker.Broker.Port}: no queue takes requests with tag 'no-such-detector' (has a WriterAgent with this tag ever connected to this broker?)", r.Stderr.Trim());
    }

    [Fact]
    public void Write_BrokerUnreachable_OneLineAndExit1()
    {
        int port = TestEnv.FreeUdpPorts(1); // a port nobody listens on (TCP refuses)
        var r = Programs.Run("std-daq", ["write", "/tmp/x.h5", "5", "--broker-url", $"127.0.0.1:{port}"]);

        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.StartsWith($"std-daq write: broker amqp://127.0.0.1:{port} unreachable:", r.Stderr.Trim());
    }

    [Theory]
    [InlineData("WriterAgent")]
    [InlineData("StdH5Writer")]
    public void Service_MissingConfig_Exit2NamingIt(string program)
    {
        var r = Programs.Run(program, ["/no/such/config.json"]);

        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith($"{program}: config '/no/such/config.json': cannot read:", r.Stderr.Trim());
    }
}
