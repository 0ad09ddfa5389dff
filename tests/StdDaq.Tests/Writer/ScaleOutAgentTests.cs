using System.Text.Json;
using StdDaq.Agent;
using StdDaq.Agent.Broker;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Writer;

/// <summary>
/// Scale-out writing in one process: two writer paths (each its own detector, rings, writer and
/// WriterAgent) as two servers, the lead with --images 0/2 and the other with 1/2, bound to the
/// same tag. What happens when a share is missing, when the request is killed, and when a share
/// holds a request whose lead is gone.
/// </summary>
[Collection("broker")]
public sealed class ScaleOutAgentTests(BrokerFixture broker)
{
    // Short enough for a test of a missing share, long enough for a loaded machine's writer.
    private static readonly TimeSpan Close = TimeSpan.FromSeconds(5);

    private Task<WriterPipeline> StartAsync(TestEnv env, int share, string? tag = null, TimeSpan? leadSilence = null) =>
        WriterPipeline.StartAsync(env, broker.Url, rate: 200, agentOptions: o => o with
        {
            Share = new ImageShare(share, 2),
            Tag = tag ?? o.Tag,
            Timeouts = new WriteRunTimeouts { Close = Close },
            LeadSilence = leadSilence ?? o.LeadSilence,
        });

    [Fact]
    public async Task BothShares_OneRequest_OneSuccessSummingTheShares()
    {
        using var env = new TestEnv();
        using var env2 = new TestEnv();
        await using var lead = await StartAsync(env, 0);
        await using var other = await StartAsync(env2, 1, lead.Tag);
        string master = Path.Combine(env.Dir, "run.h5");
        string id = await lead.SendAsync(WriterPipeline.Body(master, 31));
        var final = await lead.FinalAsync(id, TimeSpan.FromSeconds(60));
        Assert.True(final.Action == BrokerProtocol.ActionSuccess, final.Message);
        Assert.Equal(env.Name + ".writer_agent.0of2", final.Source);
        var summary = JsonDocument.Parse(final.Message!).RootElement;
        Assert.Equal(31, summary.GetProperty("n_images_written").GetInt64());
        Assert.Equal(2, summary.GetProperty("shares").GetInt32());
        Assert.Equal(0, summary.GetProperty("n_images_missing").GetInt64());
        // Only the lead speaks on the status exchange: one start, one success.
        lock (lead.Statuses)
            Assert.Equal([BrokerProtocol.ActionStart, BrokerProtocol.ActionSuccess],
                lead.Statuses.Where(s => s.RequestId == id && s.Action != BrokerProtocol.ActionProgress).Select(s => s.Action));
        Assert.Equal(1, other.Agent.Counters[AgentCounter.RequestsSucceeded]);

        var ids = ReadIds(env, master, out var status);
        ulong first = summary.GetProperty("first_image_id").GetUInt64();
        Assert.Equal(Enumerable.Range(0, 31).Select(i => first + (ulong)i), ids);
        Assert.All(status, s => Assert.Equal(0, s));
        // Each share file holds its ids only: the lead the even ones (it starts the run), the other the odd ones.
        Assert.Equal(Enumerable.Range(0, 16).Select(i => first + 2 * (ulong)i), ReadIds(env, ShareMode.FileOf(master, new ImageShare(0, 2)), out _));
        Assert.Equal(Enumerable.Range(0, 15).Select(i => first + 1 + 2 * (ulong)i), ReadIds(env, ShareMode.FileOf(master, new ImageShare(1, 2)), out _));
    }

    [Fact]
    [Trait("Category", "Slow")]
    public async Task BothShares_WithRotation_DialsTakesTheMasterAsOneSweepAndReadsEachSharesImages()
    {
        using var env = new TestEnv();
        using var env2 = new TestEnv();
        await using var lead = await StartAsync(env, 0);
        await using var other = await StartAsync(env2, 1, lead.Tag);
        string master = Path.Combine(env.Dir, "run.h5");
        string id = await lead.SendAsync(WriterPipeline.Body(master, 12, NxmxTests.Geometry));
        var final = await lead.FinalAsync(id, TimeSpan.FromSeconds(60));
        Assert.True(final.Action == BrokerProtocol.ActionSuccess, final.Message);
        // The master's NXmx: the detector, beam and one omega per image of the whole run.
        var d = Dials.Run(env, master);
        Assert.Equal(1, d.Sweeps);
        Assert.Equal(12, d.Images);
        Assert.Equal(2, d.Panels.Count);
        // dxtbx reads an image of each share through the virtual dataset as h5py does.
        foreach (int index in new[] { 10, 11 })
            Assert.All(Dials.PanelSums(env, d, master, index), p => Assert.Equal(p[1], p[0], 1e-3 * Math.Abs(p[1]) + 1e-3));
    }

    [Fact]
    public async Task OtherShareNotRunning_RequestFailsNamingIt_MasterHoldsTheLeadsImages()
    {
        using var env = new TestEnv();
        await using var lead = await StartAsync(env, 0);
        string master = Path.Combine(env.Dir, "run.h5");
        string id = await lead.SendAsync(WriterPipeline.Body(master, 10));
        var final = await lead.FinalAsync(id, TimeSpan.FromSeconds(60));
        Assert.Equal(BrokerProtocol.ActionFail, final.Action);
        Assert.Contains("share 1/2: sent nothing for 5 s (is its WriterAgent running with --images 1/2?)", final.Message);
        Assert.Contains("\"n_images_written\":5", final.Message);

        var ids = ReadIds(env, master, out var status);
        Assert.Equal(10, ids.Length);
        for (int i = 0; i < 10; i++)
            Assert.Equal(i % 2 == 0 ? 0 : (int)ImageStatus.NotWritten, status[i]);
        var h5 = Attrs(env, master);
        Assert.Equal(1, h5.GetProperty("interrupted").GetInt32());
        Assert.Contains("share 1/2", h5.GetProperty("interrupted_reason").GetString());
    }

    [Fact]
    public async Task Killed_BothSharesInterrupted_RequestFailsAndMasterSaysSo()
    {
        using var env = new TestEnv();
        using var env2 = new TestEnv();
        await using var lead = await StartAsync(env, 0);
        await using var other = await StartAsync(env2, 1, lead.Tag);
        string master = Path.Combine(env.Dir, "run.h5");
        // 4000 images at 200 Hz: 20 s, far longer than the test needs to kill it.
        string id = await lead.SendAsync(WriterPipeline.Body(master, 4000));
        var writing = new TaskCompletionSource();
        var final = lead.FinalAsync(id, TimeSpan.FromSeconds(60), s =>
        {
            if (s.Action == BrokerProtocol.ActionProgress && s.Message!.Contains("\"n_images_written\":") && !s.Message.Contains("\"n_images_written\":0"))
                writing.TrySetResult();
        });
        await writing.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await lead.Client.SendKillAsync(id, lead.Tag, CancellationToken.None);
        var status = await final;
        Assert.Equal(BrokerProtocol.ActionFail, status.Action);
        Assert.Contains("killed by request", status.Message);
        Assert.Equal(1, other.Agent.Counters[AgentCounter.RequestsFailed]);
        var h5 = Attrs(env, master);
        Assert.Equal(1, h5.GetProperty("interrupted").GetInt32());
        Assert.InRange(h5.GetProperty("n_images_written").GetInt64(), 1, 3999);
    }

    [Fact]
    public async Task LeadNeverSpeaks_ShareGivesTheRequestUpAndTakesTheNext()
    {
        using var env = new TestEnv();
        await using var other = await StartAsync(env, 1, leadSilence: TimeSpan.FromSeconds(3));
        string id = await other.SendAsync(WriterPipeline.Body(Path.Combine(env.Dir, "orphan.h5"), 10));
        Assert.True(SpinWait.SpinUntil(() => other.Agent.Counters[AgentCounter.RequestsFailed] == 1, TimeSpan.FromSeconds(30)),
            other.Agent.Counters.Read().Format());
        Assert.False(File.Exists(ShareMode.FileOf(Path.Combine(env.Dir, "orphan.h5"), new ImageShare(1, 2))));
        // A share publishes no status of its own: the client saw nothing of the request.
        lock (other.Statuses)
            Assert.DoesNotContain(other.Statuses, s => s.RequestId == id);
        string next = await other.SendAsync(WriterPipeline.Body(Path.Combine(env.Dir, "orphan2.h5"), 10));
        Assert.True(SpinWait.SpinUntil(() => other.Agent.Counters[AgentCounter.RequestsFailed] == 2, TimeSpan.FromSeconds(30)),
            $"the next request did not run: {other.Agent.Counters.Read().Format()} ({next})");
    }

    private static ulong[] ReadIds(TestEnv env, string file, out int[] status)
    {
        var r = JsonDocument.Parse(Python.Run(env, """
            import json, sys, h5py
            with h5py.File(sys.argv[1], "r") as f:
                print(json.dumps({"ids": f["/entry/data/image_id"][:].tolist(), "status": f["/entry/data/status"][:].tolist()}))
            """, file)).RootElement;
        status = r.GetProperty("status").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        return r.GetProperty("ids").EnumerateArray().Select(x => x.GetUInt64()).ToArray();
    }

    private static JsonElement Attrs(TestEnv env, string file) => JsonDocument.Parse(Python.Run(env, """
        import json, sys, h5py
        with h5py.File(sys.argv[1], "r") as f:
            print(json.dumps({k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}))
        """, file)).RootElement;
}
