using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using StdDaq.Agent.Broker;
using StdDaq.Tests.Support;
using StdDaq.Tests.Writer;

namespace StdDaq.Tests.Metrics;

/// <summary>
/// The Grafana dashboard (monitoring/grafana/dashboards/std-daq.json) against a live pipeline:
/// every service of a 2-module detector as its own process with its metrics port, a replica's
/// stream sender and receiver, the simulator, a write request; a real Prometheus scrapes them all
/// with the alert rules loaded, and every panel's every query returns data.
/// </summary>
[Collection("broker")]
public sealed class DashboardTests(BrokerFixture broker)
{
    public static IEnumerable<(string Title, string Expr)> Queries()
    {
        var dashboard = JsonNode.Parse(File.ReadAllText(Path.Combine(TestEnv.RepoRoot, "monitoring", "grafana", "dashboards", "std-daq.json")))!;
        foreach (var panel in dashboard["panels"]!.AsArray())
            foreach (var target in panel!["targets"]!.AsArray())
                yield return (panel["title"]!.GetValue<string>(), target!["expr"]!.GetValue<string>());
    }

    [Fact]
    public async Task EveryPanelsQueryReturnsDataFromALivePipeline()
    {
        using var env = new TestEnv();
        // Ports: receivers 0 and 1, assembler, writer, agent, stream sender, stream receiver.
        int p = TestEnv.FreeTcpPorts(7);
        int streamPort = StdDaq.Tests.Stream.StreamSource.FreeTcpPort();
        var json = JsonNode.Parse(env.ConfigJson("jungfrau-raw", 2, 16, 1024, 1024, TestEnv.JungfrauColumn(2), TestEnv.FreeUdpPorts(2)))!.AsObject();
        json["image_buffer_slots"] = 32;
        json["metrics"] = new JsonObject
        {
            ["udp_recv_port"] = p, ["assembler_port"] = p + 2, ["writer_port"] = p + 3, ["writer_agent_port"] = p + 4,
            ["stream_send_port"] = p + 5, ["stream_recv_port"] = p + 6,
        };
        string config = Path.Combine(env.Dir, "config.json");
        File.WriteAllText(config, json.ToJsonString());
        foreach (var ring in new[] { "0", "1", "image", "r-image" })
            env.Ring(ring);
        string stream = $"tcp://127.0.0.1:{streamPort}";
        var services = new List<ServiceProcess>();
        try
        {
            services.Add(new ServiceProcess("StdUdpRecv", config, "0"));
            services.Add(new ServiceProcess("StdUdpRecv", config, "1"));
            services.Add(new ServiceProcess("StdAssembler", config));
            services.Add(new ServiceProcess("StdH5Writer", config));
            var agent = new ServiceProcess("WriterAgent", config, "--broker-url", broker.Url, "--tag", env.Name);
            services.Add(agent);
            services.Add(new ServiceProcess("StdStreamSend", config, stream));
            services.Add(new ServiceProcess("StdStreamRecv", config, stream, "--detector-name", $"{env.Name}-r"));
            using var prometheus = new PrometheusServer(Enumerable.Range(p, 7).Select(port => $"127.0.0.1:{port}"),
                [Path.Combine(TestEnv.RepoRoot, "monitoring", "prometheus", "alerts.yml")]);
            Assert.True(agent.WaitForLine("connected, exchanges and queues declared", TimeSpan.FromSeconds(60)), agent.Output);
            using var sim = new ServiceProcess("std-daq", "sim", config, "--rate", "20", "--seconds", "600");
            var write = Programs.Run("std-daq", ["write", Path.Combine(env.Dir, "run.h5"), "20", "--wait", "--timeout", "90",
                "--broker-url", broker.Url, "--tag", env.Name], TimeSpan.FromMinutes(2));
            Assert.True(write.ExitCode == 0, $"{write.Stdout}{write.Stderr}\n{string.Join("\n", services.Select(s => $"{s.Program}: {s.Output}"))}");

            Assert.Equal(7, prometheus.WaitFor("count(up{job=\"std-daq\"} == 1) == 7", TimeSpan.FromSeconds(60))
                .Select(r => r!["value"]![1]!.GetValue<string>()).Select(double.Parse).Single());
            var queries = Queries().ToArray();
            Assert.True(queries.Length >= 15, $"{queries.Length} queries");
            foreach (var (title, expr) in queries)
            {
                var result = prometheus.WaitFor(expr, TimeSpan.FromSeconds(60));
                Assert.True(result.Count > 0, $"panel '{title}': no data for {expr}");
            }
            // The data is what happened: 20 images written, both modules' packets counted.
            // (a scrape after the request's end: the last one may have been taken during the run)
            prometheus.WaitFor($"sum(std_daq_writer_images_written_total{{detector=\"{env.Name}\"}}) == 20", TimeSpan.FromSeconds(30));
            Assert.Equal(2, prometheus.Query($"std_daq_receiver_packets_total{{detector=\"{env.Name}\"}} > 0").Count);
        }
        finally
        {
            foreach (var s in services)
                s.Dispose();
            await using var connection = await BrokerProtocol.Factory(broker.Url, "test-cleanup").CreateConnectionAsync();
            await using var channel = await connection.CreateChannelAsync();
            await channel.QueueDeleteAsync($"{env.Name}.writer_agent.requests", ifUnused: false, ifEmpty: false);
        }
    }
}
