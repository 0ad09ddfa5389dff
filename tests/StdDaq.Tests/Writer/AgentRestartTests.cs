using StdDaq.Writer;
using System.Text.Json;
using StdDaq.Agent.Broker;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Writer;

/// <summary>
/// The WriterAgent as its own process, killed with SIGKILL in the middle of a request while two more
/// wait behind it, then started again: every request ends with a definite status, and the files say
/// what they hold.
/// </summary>
[Collection("broker")]
public sealed class AgentRestartTests(BrokerFixture broker)
{
    [Fact]
    public async Task AgentKilledMidRequest_TwoWaiting_RestartedAgentEndsAllThree()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100, agent: false);
        string config = Path.Combine(env.Dir, "agent.json");
        string json = env.ConfigJson("jungfrau-raw", 2, 16, 1024, 1024, TestEnv.JungfrauColumn(2), p.Config.StartUdpPort, slots: 64, timeoutMs: 500);
        File.WriteAllText(config, json[..^1] + ",\"image_buffer_slots\":256}");
        string[] args = [config, "--broker-url", broker.Url, "--tag", p.Tag];

        string a = Path.Combine(env.Dir, "a.h5"), b = Path.Combine(env.Dir, "b.h5"), c = Path.Combine(env.Dir, "c.h5");
        var first = new ServiceProcess("WriterAgent", args);
        try
        {
            Assert.True(first.WaitForLine("connected, exchanges and queues declared", TimeSpan.FromSeconds(60)), first.Output);
            // 2000 images at 100 Hz: 20 s, far longer than the test needs to kill the agent in it.
            string idA = await p.SendAsync(WriterPipeline.Body(a, 2000));
            string idB = await p.SendAsync(WriterPipeline.Body(b, 20));
            string idC = await p.SendAsync(WriterPipeline.Body(c, 20));
            var writing = new TaskCompletionSource();
            var finalA = p.FinalAsync(idA, TimeSpan.FromSeconds(180), s =>
            {
                if (s.Action == BrokerProtocol.ActionProgress)
                    writing.TrySetResult();
            });
            var finalB = p.FinalAsync(idB, TimeSpan.FromSeconds(180));
            var finalC = p.FinalAsync(idC, TimeSpan.FromSeconds(180));
            await writing.Task.WaitAsync(TimeSpan.FromSeconds(60));

            first.Kill(); // SIGKILL: no goodbye to the broker or the writer
            Assert.False(finalB.IsCompleted || finalC.IsCompleted, "a waiting request ended while the first one ran");

            // The writer closes the run its agent left, before any agent comes back.
            Assert.True(SpinWait.SpinUntil(() => p.Writer.Counters[WriterCounter.RunsOrphaned] == 1 && p.Writer.Counters[WriterCounter.FilesClosed] == 1, TimeSpan.FromSeconds(30)),
                $"the writer kept the orphaned run open: {p.Writer.Counters.Read().Format()}");
            var left = H5py.Read(env, a);
            Assert.Equal(1, left.GetProperty("attrs").GetProperty("interrupted").GetInt64());
            Assert.Contains("writer agent went away", left.GetProperty("attrs").GetProperty("interrupted_reason").GetString());
            long heldByA = left.GetProperty("attrs").GetProperty("n_images_written").GetInt64();
            Assert.InRange(heldByA, 1, 1999);
            Assert.False(finalA.IsCompleted, "request A ended while no agent ran");

            using var second = new ServiceProcess("WriterAgent", args);
            var statusA = await finalA;
            var statusB = await finalB;
            var statusC = await finalC;

            // A: failed, saying the agent restarted and what its file holds, which is what the file says.
            Assert.True(statusA.Action == BrokerProtocol.ActionFail, $"{statusA.Action}: {statusA.Message}");
            Assert.Contains($"the writer agent restarted during this request: '{a}' holds {heldByA} of 2000 images", statusA.Message);
            Assert.Contains("writer agent went away", statusA.Message);
            Assert.Single(p.StatusesOf(idA), s => s.Action == BrokerProtocol.ActionStart);
            Assert.Equal(heldByA, H5py.Read(env, a).GetProperty("attrs").GetProperty("n_images_written").GetInt64());
            Assert.True(second.WaitForLine($"request {idA} was begun by a writer agent that went away", TimeSpan.FromSeconds(10)), second.Output);

            // B and C: written in full by the new agent, B before C.
            foreach (var (status, file) in new[] { (statusB, b), (statusC, c) })
            {
                Assert.True(status.Action == BrokerProtocol.ActionSuccess, $"{status.Action}: {status.Message}");
                Assert.Equal(20, JsonDocument.Parse(status.Message!).RootElement.GetProperty("n_images_written").GetInt64());
                var attrs = H5py.Read(env, file).GetProperty("attrs");
                Assert.Equal(0, attrs.GetProperty("interrupted").GetInt64());
                Assert.Equal(20, attrs.GetProperty("n_images_written").GetInt64());
            }
            // Run ids increase with each run an agent starts.
            Assert.True(RunId(statusB) < RunId(statusC), "the waiting requests were not served in their order");
            Assert.True(second.Terminate(TimeSpan.FromSeconds(15)), second.Output);
        }
        finally
        {
            first.Dispose();
        }
    }

    [Fact]
    public async Task SecondAgentOfTheSameName_SaysTheQueueIsTaken_FirstGoesOn()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100);
        // Another detector's agent under the first one's service name (as on another host).
        using var other = new TestEnv();
        string config = Path.Combine(other.Dir, "other.json");
        File.WriteAllText(config, other.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1), TestEnv.FreeUdpPorts(1)));
        using var second = new ServiceProcess("WriterAgent", config, "--broker-url", broker.Url, "--tag", p.Tag,
            "--service-name", $"{p.Config.DetectorName}.writer_agent");

        Assert.True(second.WaitForLine($"queue '{p.Agent.RequestQueue}' is taken by another WriterAgent named '{p.Config.DetectorName}.writer_agent'",
            TimeSpan.FromSeconds(60)), second.Output);
        var status = await p.WriteAsync(WriterPipeline.Body(Path.Combine(env.Dir, "first.h5"), 5), TimeSpan.FromSeconds(60));
        Assert.True(status.Action == BrokerProtocol.ActionSuccess, $"{status.Action}: {status.Message}");
        Assert.DoesNotContain("connected, exchanges and queues declared", second.Output);

        // What the stats line says, also as instruments of the agent's meter.
        string service = $"{p.Config.DetectorName}.writer_agent";
        var seen = Instruments.Read("StdDaq.WriterAgent", tags => tags.Any(t => t.Key == "service" && Equals(t.Value, service)))
            .ToDictionary(kv => kv.Key, kv => kv.Value.Value);
        Assert.Equal(1, seen["std_daq.writer_agent.requests_succeeded"]);
        Assert.Equal(0, seen["std_daq.writer_agent.requests_failed"]);
        Assert.Equal(1, seen["std_daq.writer_agent.broker_connected"]);
        Assert.Equal(0, seen["std_daq.writer_agent.running"]);
        Assert.True(seen["std_daq.writer_agent.broker_connections"] >= 1);
    }

    private static long RunId(BrokerStatus s) => JsonDocument.Parse(s.Message!).RootElement.GetProperty("run_id").GetInt64();
}
