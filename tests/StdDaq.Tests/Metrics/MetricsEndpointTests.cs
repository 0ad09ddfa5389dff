using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using StdDaq.Agent;
using StdDaq.Assembler;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Metrics;
using StdDaq.StreamRecv;
using StdDaq.StreamSend;
using StdDaq.Tests.Support;
using StdDaq.UdpRecv;
using StdDaq.Writer;

namespace StdDaq.Tests.Metrics;

/// <summary>
/// Every service's <c>/metrics</c> and <c>/stats</c> over HTTP, the services run as processes: the
/// exposition passes <c>promtool check metrics</c> (Prometheus' own lint), every stats-line counter is
/// there as <c>std_daq_&lt;prefix&gt;_&lt;key&gt;_total</c> with its labels, counters move with the
/// traffic the test sends, <c>/stats</c> is JSON with the same values, a real Prometheus stores what it
/// scrapes; a port in use stops a service with one line.
/// </summary>
[Collection("serial")]
public partial class MetricsEndpointTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>A service under test: its process, its metrics port, the names it must export and its labels.</summary>
    private sealed record Service(ServiceProcess Process, int Port, string Prefix, string[] Keys, Dictionary<string, string> Labels)
    {
        public string[] Gauges { get; init; } = [];
    }

    private static string[] KeysOf<TName>() where TName : struct, Enum =>
        Enum.GetValues<TName>().Select(CounterSet<TName>.Key).ToArray();

    /// <summary>A free TCP port (bound on every interface, as the metrics server binds, then released).</summary>
    public static int FreeTcpPort()
    {
        var l = new TcpListener(IPAddress.Any, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static readonly Dictionary<string, string> NoRedis = new() { ["REDIS_SKIP"] = "1" };

    [Fact]
    public async Task Services_MetricsAndStats_PromtoolPassesEveryCounterWithLabelsAndStatsAgree()
    {
        using var env = new TestEnv();
        string replica = env.Name + "-r";
        env.Ring("0");
        env.Ring("image");
        env.Ring("r-image");
        int receiverPort = FreeTcpPort();
        // The receiver's port from the config (metrics.udp_recv_port + module 0), the others' by option.
        string json = env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1), TestEnv.FreeUdpPorts(1), slots: 64, timeoutMs: 200);
        json = json[..^1] + $",\"image_buffer_slots\":16,\"udp_receive_buffer_bytes\":16777216,\"metrics\":{{\"udp_recv_port\":{receiverPort}}}}}";
        string path = Path.Combine(env.Dir, "det.json");
        File.WriteAllText(path, json);
        var config = DetectorConfigLoader.Parse(json);
        string stream = $"tcp://127.0.0.1:{FreeTcpPort()}";
        string d = env.Name;

        var services = new List<Service>();
        ServiceProcess Start(string program, params string[] args) => ServiceProcess.WithEnvironment(program, NoRedis, args);
        Service Add(ServiceProcess p, int port, string prefix, string[] keys, string[] gauges, params (string, string)[] labels)
        {
            var s = new Service(p, port, prefix, keys, labels.ToDictionary(l => l.Item1, l => l.Item2)) { Gauges = gauges };
            services.Add(s);
            return s;
        }
        try
        {
            int p;
            var receiver = Add(Start("StdUdpRecv", path, "0", "--bind", "127.0.0.1"), receiverPort, "receiver", KeysOf<ReceiverCounter>(),
                ["last_frame_id"], ("detector", d), ("module", "0"), ("service", $"{d}.udp_recv_0"));
            var assembler = Add(Start("StdAssembler", path, "--metrics-port", (p = FreeTcpPort()).ToString()), p, "assembler", KeysOf<AssemblerCounter>(),
                ["images_pending", "last_image_id"], ("detector", d), ("service", $"{d}.assembler"));
            Add(Start("StdH5Writer", path, "--metrics-port", (p = FreeTcpPort()).ToString()), p, "writer", KeysOf<WriterCounter>(),
                ["run_open"], ("detector", d), ("service", $"{d}.writer"));
            // No broker: the agent comes up all the same and keeps trying to connect.
            Add(Start("WriterAgent", path, "--broker-url", $"127.0.0.1:{FreeTcpPort()}", "--metrics-port", (p = FreeTcpPort()).ToString()), p,
                "writer_agent", KeysOf<AgentCounter>(), ["running", "statuses_pending", "broker_connected"], ("service", $"{d}.writer_agent"));
            Add(Start("StdStreamSend", path, stream, "--metrics-port", (p = FreeTcpPort()).ToString()), p, "stream_send",
                KeysOf<StreamSendCounter>(), [], ("detector", d), ("share", "0/1"), ("service", $"{d}.stream_send_0of1"));
            Add(Start("StdStreamRecv", path, stream, "--detector-name", replica, "--metrics-port", (p = FreeTcpPort()).ToString()), p, "stream_recv",
                KeysOf<StreamRecvCounter>(), [], ("detector", replica), ("share", "0/1"), ("service", $"{replica}.stream_recv_0of1"));
            foreach (var s in services)
                Assert.True(s.Process.WaitForLine($"metrics on http://0.0.0.0:{s.Port}/metrics", TimeSpan.FromSeconds(90)),
                    $"{s.Process.Program} did not say where its metrics are:\n{s.Process.Output}");

            // Before any traffic: every counter is there, 0, with its labels; promtool is content.
            foreach (var s in services)
                await CheckExposition(s);
            Assert.Equal(0, Value(await Get(receiver.Port, "/metrics"), "std_daq_receiver_packets_total"));

            // Frames through the receiver and the assembler: their counters move.
            using (var sim = new DetectorSimulator(config, new SimOptions { Rate = 100, Frames = 50 }))
                sim.Run(CancellationToken.None);
            // Moved, not exact: on a busy machine the kernel may drop some of the burst.
            Assert.True(await Until(async () => Frames(await Get(receiver.Port, "/metrics")) > 0),
                "the receiver's frames did not move:\n" + await Get(receiver.Port, "/metrics"));
            Assert.True(await Until(async () => Images(await Get(assembler.Port, "/metrics")) > 0),
                "the assembler's images did not move:\n" + await Get(assembler.Port, "/metrics"));
            string afterTraffic = await Get(receiver.Port, "/metrics");
            Assert.True(Value(afterTraffic, "std_daq_receiver_packets_total") > 0, afterTraffic);
            Assert.True(Value(afterTraffic, "std_daq_receiver_last_frame_id") > 0, afterTraffic);
            Assert.True(Value(await Get(assembler.Port, "/metrics"), "std_daq_assembler_last_image_id") > 0);

            // After it: the same checks, and /stats holds the values /metrics shows.
            foreach (var s in services)
            {
                await CheckExposition(s);
                await CheckStats(s);
            }

            foreach (var s in services)
            {
                Assert.True(s.Process.Terminate(TimeSpan.FromSeconds(20)), $"{s.Process.Program} did not stop on SIGTERM");
                Assert.True(s.Process.ExitCode == 0, $"{s.Process.Program} exited {s.Process.ExitCode}:\n{s.Process.Output}");
            }
        }
        finally
        {
            foreach (var s in services)
                s.Process.Dispose();
        }
    }

    [Theory]
    [InlineData("StdUdpRecv")]
    [InlineData("WriterAgent")]
    public void Service_MetricsPortInUse_ExitsOneWithOneLineNamingThePort(string program)
    {
        using var env = new TestEnv();
        env.Ring("0");
        string path = Path.Combine(env.Dir, "det.json");
        File.WriteAllText(path, env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1), TestEnv.FreeUdpPorts(1), slots: 8));
        var taken = new TcpListener(IPAddress.Any, 0);
        taken.Start();
        try
        {
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            string[] args = program == "StdUdpRecv"
                ? [path, "0", "--bind", "127.0.0.1", "--metrics-port", port.ToString()]
                : [path, "--broker-url", $"127.0.0.1:{FreeTcpPort()}", "--metrics-port", port.ToString()];
            var r = Programs.Run(program, args, TimeSpan.FromSeconds(60), NoRedis);
            string what = $"exit {r.ExitCode}\nstderr:\n{r.Stderr}\nstdout:\n{r.Stdout}";
            Assert.True(r.ExitCode == 1, what);
            var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, what);
            Assert.Equal($"{program}: metrics port {port}: cannot listen on 0.0.0.0:{port}: Address already in use", lines[0]);
            Assert.DoesNotContain("   at ", r.Stderr + r.Stdout);
        }
        finally
        {
            taken.Stop();
        }
    }

    [Fact]
    public void Service_MetricsOff_SaysSoAtStart()
    {
        using var env = new TestEnv();
        env.Ring("0");
        string path = Path.Combine(env.Dir, "det.json");
        File.WriteAllText(path, env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1), TestEnv.FreeUdpPorts(1), slots: 8));
        using var p = ServiceProcess.WithEnvironment("StdUdpRecv", NoRedis, path, "0", "--bind", "127.0.0.1");
        try
        {
            Assert.True(p.WaitForLine($"StdUdpRecv {env.Name}.udp_recv_0: metrics off", TimeSpan.FromSeconds(60)), p.Output);
        }
        finally
        {
            Assert.True(p.Terminate(TimeSpan.FromSeconds(20)));
        }
    }

    [Fact]
    public async Task Prometheus_ScrapingAService_StoresItsCountersWithTheirLabels()
    {
        using var env = new TestEnv();
        env.Ring("0");
        string path = Path.Combine(env.Dir, "det.json");
        File.WriteAllText(path, env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1), TestEnv.FreeUdpPorts(1), slots: 8));
        int port = FreeTcpPort(), prometheusPort = FreeTcpPort();
        string yml = Path.Combine(env.Dir, "prometheus.yml");
        File.WriteAllText(yml, $$"""
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            scrape_configs:
              - job_name: std_daq
                static_configs: [{targets: ['127.0.0.1:{{port}}']}]
            """);
        using var service = ServiceProcess.WithEnvironment("StdUdpRecv", NoRedis, path, "0", "--bind", "127.0.0.1", "--metrics-port", port.ToString());
        // Prometheus as Debian ships it (the launcher execs: its pid is the server's), its data in the test's folder.
        IReadOnlyList<string> commandLine =
            ["prometheus", $"--config.file={yml}", $"--storage.tsdb.path={Path.Combine(env.Dir, "data")}", $"--web.listen-address=127.0.0.1:{prometheusPort}"];
        using var prometheus = new ServiceProcess("prometheus", commandLine);
        try
        {
            Assert.True(service.WaitForLine("metrics on", TimeSpan.FromSeconds(60)), service.Output);
            string query = $"http://127.0.0.1:{prometheusPort}/api/v1/query?query=std_daq_receiver_packets_total";
            JsonElement result = default;
            // The first scrape comes ~6 s after the start (Prometheus batches target updates every 5 s).
            bool stored = await Until(async () =>
            {
                try
                {
                    using var doc = JsonDocument.Parse(await Http.GetStringAsync(query));
                    result = doc.RootElement.GetProperty("data").GetProperty("result").Clone();
                    return result.GetArrayLength() == 1;
                }
                catch (HttpRequestException)
                {
                    return false; // not listening yet
                }
            });
            Assert.True(stored, $"Prometheus stored no std_daq_receiver_packets_total:\n{prometheus.Output}");
            var metric = result[0].GetProperty("metric");
            Assert.Equal(env.Name, metric.GetProperty("detector").GetString());
            Assert.Equal("0", metric.GetProperty("module").GetString());
            Assert.Equal($"{env.Name}.udp_recv_0", metric.GetProperty("service").GetString());
            Assert.Equal("0", result[0].GetProperty("value")[1].GetString());
        }
        finally
        {
            Assert.True(prometheus.Terminate(TimeSpan.FromSeconds(20)), "prometheus did not stop on SIGTERM");
            Assert.True(service.Terminate(TimeSpan.FromSeconds(20)), "the receiver did not stop on SIGTERM");
        }
    }

    /// <summary>promtool's lint passes; every counter is a counter named …_total with the service's labels.</summary>
    private static async Task CheckExposition(Service s)
    {
        string text = await Get(s.Port, "/metrics");
        var (rc, stderr) = Promtool(text);
        Assert.True(rc == 0, $"{s.Process.Program}: promtool check metrics exited {rc}: {stderr}\n{text}");
        foreach (var key in s.Keys)
        {
            string name = $"std_daq_{s.Prefix}_{key}_total";
            Assert.Contains($"# TYPE {name} counter\n", text);
            var sample = Regex.Match(text, $@"^{name}\{{([^}}]*)\}} \d+$", RegexOptions.Multiline);
            Assert.True(sample.Success, $"{s.Process.Program}: no sample of {name}:\n{text}");
            foreach (var (label, value) in s.Labels)
                Assert.Contains($"{label}=\"{value}\"", sample.Groups[1].Value);
        }
        foreach (var gauge in s.Gauges)
        {
            string name = $"std_daq_{s.Prefix}_{gauge}";
            Assert.Contains($"# TYPE {name} gauge\n", text);
            var sample = Regex.Match(text, $@"^{name}\{{([^}}]*)\}} \d+$", RegexOptions.Multiline);
            Assert.True(sample.Success, $"{s.Process.Program}: no sample of {name}:\n{text}");
            Assert.Contains($"service=\"{s.Labels["service"]}\"", sample.Groups[1].Value);
        }
    }

    /// <summary>/stats is JSON whose counters are those /metrics shows (read while they stand still).</summary>
    private static async Task CheckStats(Service s)
    {
        for (int attempt = 0; ; attempt++)
        {
            string before = await Get(s.Port, "/stats");
            string metrics = await Get(s.Port, "/metrics");
            string after = await Get(s.Port, "/stats");
            using var doc = JsonDocument.Parse(after);
            var root = doc.RootElement;
            Assert.Equal(s.Labels["service"], root.GetProperty("service").GetString());
            Assert.Equal(s.Process.Program, root.GetProperty("program").GetString());
            var counters = root.GetProperty("counters");
            Assert.Equal(s.Keys, counters.EnumerateObject().Select(c => c.Name).ToArray());
            Assert.Equal(s.Gauges, root.GetProperty("gauges").EnumerateObject().Select(g => g.Name).ToArray());
            if (before != after && attempt < 20)
                continue; // a counter moved between the reads
            foreach (var key in s.Keys)
                Assert.Equal(Value(metrics, $"std_daq_{s.Prefix}_{key}_total"), counters.GetProperty(key).GetInt64());
            return;
        }
    }

    private static long Frames(string receiver) =>
        Value(receiver, "std_daq_receiver_frames_complete_total") + Value(receiver, "std_daq_receiver_frames_incomplete_total");

    private static long Images(string assembler) =>
        Value(assembler, "std_daq_assembler_images_good_total") + Value(assembler, "std_daq_assembler_images_incomplete_total");

    /// <summary>The value of the one sample of <paramref name="name"/>.</summary>
    private static long Value(string exposition, string name)
    {
        var m = Regex.Match(exposition, $@"^{name}\{{[^}}]*\}} (\d+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"no sample of {name}:\n{exposition}");
        return long.Parse(m.Groups[1].Value);
    }

    private static Task<string> Get(int port, string path) => Http.GetStringAsync($"http://127.0.0.1:{port}{path}");

    private static async Task<bool> Until(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
                return true;
            await Task.Delay(100);
        }
        return false;
    }

    /// <summary><c>promtool check metrics</c> on <paramref name="exposition"/> (its stdin): exit code and stderr.</summary>
    private static (int ExitCode, string Stderr) Promtool(string exposition)
    {
        var psi = new ProcessStartInfo("promtool") { RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("check");
        psi.ArgumentList.Add("metrics");
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        p.StandardInput.Write(exposition);
        p.StandardInput.Close();
        Assert.True(p.WaitForExit(30_000), "promtool did not finish");
        p.WaitForExit();
        return (p.ExitCode, stderr.Result + stdout.Result);
    }
}
