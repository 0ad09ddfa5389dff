using System.Text.Json;
using StdDaq.Agent.Broker;
using StdDaq.Pipeline;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Writer;

/// <summary>A broker restarted under a running request (its own broker: the restart would disturb other tests).</summary>
public sealed class BrokerRestartTests
{
    [Fact]
    public async Task BrokerRestart_MidRun_RequestEndsInADefiniteStatusAndTheNextOneWorks()
    {
        using var env = new TestEnv();
        await using var broker = await PrivateBroker.StartAsync(TimeSpan.FromSeconds(90));
        // A deep ring: the broker's restart takes a core for seconds, and the writer must not fall a ring behind.
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100, tweak: c => c with { ImageBufferSlots = 256 });
        string file = Path.Combine(env.Dir, "during-restart.h5");
        const int n = 300; // 3 s of images: the broker restart takes longer

        string id = await p.SendAsync(WriterPipeline.Body(file, n));
        var running = new TaskCompletionSource();
        var final = p.FinalAsync(id, TimeSpan.FromSeconds(120), s =>
        {
            if (s.Action == BrokerProtocol.ActionProgress)
                running.TrySetResult();
        });
        await running.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await broker.RestartAsync(TimeSpan.FromSeconds(90));

        // The client reconnects on its own; the agent publishes the held status after its reconnect.
        var status = await final;
        Assert.True(status.Action == BrokerProtocol.ActionSuccess, $"{status.Action}: {status.Message}");
        var summary = JsonDocument.Parse(status.Message!).RootElement;
        // Every image is accounted for: written, or listed as missing with its reason.
        Assert.Equal(n, summary.GetProperty("n_images_written").GetInt64() + summary.GetProperty("n_images_missing").GetInt64());
        Assert.Equal([n, 1024, 1024], H5py.Longs(H5py.Read(env, file).GetProperty("shape")));

        var next = await p.WriteAsync(WriterPipeline.Body(Path.Combine(env.Dir, "after-restart.h5"), 10), TimeSpan.FromSeconds(60));
        Assert.True(next.Action == BrokerProtocol.ActionSuccess, $"{next.Action}: {next.Message}");
    }
}
