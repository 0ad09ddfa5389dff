using StdDaq.Shared.Config;
using StdDaq.Agent.Broker;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Writer;

/// <summary>Requests checked as they arrive, with errors that say what is wrong.</summary>
[Collection("broker")]
public sealed class RequestCheckTests(BrokerFixture broker)
{
    [Fact]
    public async Task BadRequests_WhileAnotherWrites_FailAtOnceNotWhenTheirTurnComes()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100);
        // 300 images at 100 Hz: the agent is busy for 3 s.
        string running = await p.SendAsync(WriterPipeline.Body(Path.Combine(env.Dir, "long.h5"), 300));
        var bad = new Dictionary<string, string>
        {
            ["-5"] = "n_images: must be between 1 and",
            ["\"ten\""] = "n_images: must be an integer, got \"ten\"",
            ["0"] = "n_images: must be between 1 and",
            ["10.5"] = "n_images: must be an integer, got 10.5",
        };
        var ids = new Dictionary<string, string>();
        foreach (var (n, _) in bad)
            ids[n] = await p.SendAsync($"{{\"output_file\": \"{Path.Combine(env.Dir, "bad.h5")}\", \"n_images\": {n}}}");
        var fails = new Dictionary<string, BrokerStatus>();
        foreach (var (n, id) in ids)
            fails[n] = await p.FinalAsync(id, TimeSpan.FromSeconds(30));
        var done = await p.FinalAsync(running, TimeSpan.FromSeconds(60));
        Assert.True(done.Action == BrokerProtocol.ActionSuccess, $"{done.Action}: {done.Message}");
        foreach (var (n, f) in fails)
        {
            Assert.Equal(BrokerProtocol.ActionFail, f.Action);
            Assert.Contains(bad[n], f.Message);
            Assert.True(f.Time < done.Time, $"n_images {n} failed at {f.Time:HH:mm:ss.fff}, after the running request ended at {done.Time:HH:mm:ss.fff}");
        }
    }

    [Fact]
    public async Task Request_MetadataLargerThanAWriterMessage_FailsAtOnceNamingTheLimit()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100);
        string file = Path.Combine(env.Dir, "big.h5");
        string big = new('x', StoreStreamMessage.MaxBytes + 1000);
        var final = await p.WriteAsync(WriterPipeline.Body(file, 5, $"\"metadata\": {{\"notes\": \"{big}\"}}"), TimeSpan.FromSeconds(30));
        Assert.Equal(BrokerProtocol.ActionFail, final.Action);
        Assert.Contains($"metadata: too large", final.Message);
        Assert.Contains($"at most {StoreStreamMessage.MaxBytes} bytes fit", final.Message);
        Assert.False(File.Exists(file));
        // Just under the limit is written, metadata and all.
        string fits = new('y', StoreStreamMessage.MaxBytes - 4096);
        var ok = await p.WriteAsync(WriterPipeline.Body(file, 5, $"\"metadata\": {{\"notes\": \"{fits}\"}}"), TimeSpan.FromSeconds(60));
        Assert.True(ok.Action == BrokerProtocol.ActionSuccess, $"{ok.Action}: {ok.Message}");
        Assert.Equal(fits.Length, H5py.Read(env, file).GetProperty("attrs").GetProperty("notes").GetString()!.Length);
    }
}

[Collection("broker")]
public sealed class IncompleteImageTests(BrokerFixture broker)
{
    [Theory]
    [InlineData("succeed")]
    [InlineData("fail")]
    public async Task Write_AModuleDead_TheFinalStatusCountsTheIncompleteImagesAndThePolicyDecides(string policy)
    {
        using var env = new TestEnv();
        // Every image waits the assembler timeout for the dead module; 4 s of frames (400 slots) keep
        // module 0's frames from being overwritten before they are placed when the machine is busy.
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100, tweak: c => c with
        {
            WriterIncompletePolicy = Choices.IncompletePolicy.TryParse(policy, out var p) ? p : throw new ArgumentException(policy),
            FrameBufferSlots = 400,
        });
        p.SilentModules.Add(1);
        // Images go out in id order: once one without module 1 is out, every later one lacks it
        // too (the ones fed before module 1 fell silent are out already, even on a busy machine).
        Assert.True(SpinWait.SpinUntil(() => p.Assembler.Counters[StdDaq.Assembler.AssemblerCounter.ImagesIncomplete] > 0,
            TimeSpan.FromSeconds(30)), "no image without module 1 came out");
        string file = Path.Combine(env.Dir, "incomplete.h5");
        var final = await p.WriteAsync(WriterPipeline.Body(file, 20), TimeSpan.FromSeconds(60));
        Assert.Equal(policy == "succeed" ? BrokerProtocol.ActionSuccess : BrokerProtocol.ActionFail, final.Action);
        string json = policy == "succeed" ? final.Message! : final.Message![final.Message!.IndexOf('{')..];
        var summary = System.Text.Json.JsonDocument.Parse(json).RootElement;
        Assert.Equal(20, summary.GetProperty("n_images_written").GetInt64());
        Assert.Equal(0, summary.GetProperty("n_images_missing").GetInt64());
        Assert.Equal(20, summary.GetProperty("n_images_incomplete").GetInt64());
        Assert.Equal(20, summary.GetProperty("modules_missing").GetProperty("1").GetInt64());
        Assert.False(summary.GetProperty("modules_missing").TryGetProperty("0", out _),
            $"module 0 missing: {final.Message}; assembler: {p.Assembler.Counters.Read()}");
        if (policy == "fail")
            Assert.StartsWith($"incomplete: 20 of 20 images written to '{file}' are incomplete (writer_incomplete_policy is fail)", final.Message);
        Assert.True(H5py.Longs(H5py.Read(env, file).GetProperty("status")).All(s => s == 1));
    }
}
