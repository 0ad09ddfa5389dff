using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Metrics;

/// <summary>
/// <c>std-daq monitor poll</c> against live services: a receiver with its metrics port fed by the
/// simulator, and an address nobody answers. Every line is JSON with both replies, the receiver's
/// packets move in the deltas by what its /stats says, the dead address is an error each poll, a
/// restarted receiver is a restart and not a negative change, and the latency summaries close.
/// </summary>
public sealed class MonitorPollTests
{
    [Fact]
    public void Poll_LiveAndDeadServices_JsonLinesDeltasRestartAndLatencySummaries()
    {
        using var env = new TestEnv();
        int metricsPort = StdDaq.Tests.Stream.StreamSource.FreeTcpPort();
        int deadPort = StdDaq.Tests.Stream.StreamSource.FreeTcpPort();
        var json = JsonNode.Parse(env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1), TestEnv.FreeUdpPorts(1)))!.AsObject();
        string config = Path.Combine(env.Dir, "config.json");
        File.WriteAllText(config, json.ToJsonString());
        env.Ring("0");
        string live = $"http://127.0.0.1:{metricsPort}/stats";
        string dead = $"http://127.0.0.1:{deadPort}/stats";
        string output = Path.Combine(env.Dir, "poll.jsonl");

        var receiver = new ServiceProcess("StdUdpRecv", config, "0", "--metrics-port", $"{metricsPort}");
        try
        {
            Assert.True(receiver.WaitForLine("metrics on", TimeSpan.FromSeconds(30)), receiver.Output);
            using (var sim = new ServiceProcess("std-daq", "sim", config, "--rate", "50", "--seconds", "600"))
            {
                var poll = Programs.Run("std-daq", ["monitor", "poll", $"127.0.0.1:{metricsPort}", $"http://127.0.0.1:{deadPort}",
                    "--period", "0.5", "--count", "6", "-o", output], TimeSpan.FromSeconds(60));
                Assert.True(poll.ExitCode == 0, poll.Stderr);
                var lines = File.ReadAllLines(output);
                Assert.Equal(6, lines.Length);
                long last = -1, deltas = 0;
                for (int i = 0; i < lines.Length; i++)
                {
                    var record = JsonNode.Parse(lines[i])!;
                    Assert.Equal(i, record["poll"]!.GetValue<int>());
                    var replies = record["replies"]!.AsObject();
                    Assert.Equal(2, replies.Count);
                    Assert.NotNull(replies[dead]!["error"]);
                    var reply = replies[live]!;
                    long packets = reply["data"]!["counters"]!["packets"]!.GetValue<long>();
                    if (i > 0)
                    {
                        long delta = reply["delta"]!["packets"]?.GetValue<long>() ?? 0;
                        Assert.Equal(packets - last, delta);
                        deltas += delta;
                    }
                    last = packets;
                }
                Assert.True(deltas > 0, "the simulator's packets must show in the deltas");
                // Text: the changes, the dead address, and a summary line per address.
                Assert.Contains("packets +", poll.Stdout);
                Assert.Contains($"{dead}: ", poll.Stdout);
                foreach (var url in new[] { live, dead })
                    Assert.Matches($@"{Regex.Escape(url)} reply latency \(ms\): [0-9.]+±[0-9.]+ \(6, [0-9.]+, [0-9.]+, [0-9.]+, [0-9.]+, [0-9.]+, [0-9.]+, [0-9.]+\)", poll.Stdout);
            }

            // A restart between two polls: reported as a restart, the change the new value.
            var first = Programs.Run("std-daq", ["monitor", "poll", $"127.0.0.1:{metricsPort}", "--period", "0.2", "--count", "1"]);
            Assert.Equal(0, first.ExitCode);
            long before = JsonNode.Parse(first.Stdout.Trim())!["replies"]![live]!["data"]!["counters"]!["packets"]!.GetValue<long>();
            Assert.True(before > 0);
            string appended = Path.Combine(env.Dir, "restart.jsonl");
            var polling = new ServiceProcess("std-daq", "monitor", "poll", $"127.0.0.1:{metricsPort}", "--period", "1", "--count", "12", "-o", appended, "-a");
            Assert.True(SpinWait.SpinUntil(() => File.Exists(appended) && File.ReadAllLines(appended).Length >= 1, TimeSpan.FromSeconds(10)));
            receiver.Dispose();
            receiver = new ServiceProcess("StdUdpRecv", config, "0", "--metrics-port", $"{metricsPort}");
            Assert.True(receiver.WaitForLine("metrics on", TimeSpan.FromSeconds(30)), receiver.Output);
            Assert.True(SpinWait.SpinUntil(() => File.ReadAllText(appended).Contains("\"restarted\":true"), TimeSpan.FromSeconds(20)),
                File.ReadAllText(appended));
            polling.Dispose();
            foreach (var line in File.ReadAllLines(appended))
            {
                var record = JsonNode.Parse(line)!;
                if (record["replies"]![live]!["delta"] is JsonObject delta)
                    Assert.All(delta, d => Assert.True(d.Value!.GetValue<long>() >= 0, $"negative change {d.Key} in {line}"));
            }
        }
        finally
        {
            receiver.Dispose();
        }
    }
}
