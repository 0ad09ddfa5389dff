using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using System.Text.Json;
using StdDaq.Agent.Broker;
using StdDaq.Assembler;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Writer;

/// <summary>
/// The writer path end to end with a real RabbitMQ, libhdf5 and h5py: write requests through the
/// broker, files read back independently, kills, bad requests, a full disk, a lapped writer.
/// </summary>
[Collection("broker")]
public sealed class WriterPathTests(BrokerFixture broker)
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Write_FullChainOverUdp_FileHoldsTheSimulatorImagesWithConsecutiveIds()
    {
        using var env = new TestEnv();
        long startedNs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, udp: true, rate: 100);
        string file = Path.Combine(env.Dir, "run.h5");
        const int n = 40;

        string id = await p.SendAsync(WriterPipeline.Body(file, n, "\"user_id\": 17, \"metadata\": {\"sample\": \"lysozyme\"}"));
        var final = await p.FinalAsync(id, Long);

        Assert.True(final.Action == BrokerProtocol.ActionSuccess, $"{final.Action}: {final.Message}");
        var statuses = p.StatusesOf(id);
        Assert.Equal(BrokerProtocol.ActionStart, statuses[0].Action);
        Assert.Equal($"{p.Config.DetectorName}.writer_agent", final.Source);
        Assert.Contains(file, final.Body); // the request body is echoed
        var summary = JsonDocument.Parse(final.Message!).RootElement;
        Assert.Equal(n, summary.GetProperty("n_images_requested").GetInt64());
        Assert.Equal(n, summary.GetProperty("n_images_written").GetInt64());
        Assert.Equal(0, summary.GetProperty("missing_image_ids").GetArrayLength());

        string dump = Path.Combine(env.Dir, "pixels.raw");
        var h5 = H5py.Read(env, file, dump);
        Assert.Equal([n, 1024, 1024], H5py.Longs(h5.GetProperty("shape")));
        Assert.Equal("uint16", h5.GetProperty("dtype_name").GetString());
        Assert.Equal([1, 1024, 1024], H5py.Longs(h5.GetProperty("chunks")));
        Assert.Equal("NXentry", h5.GetProperty("entry_class").GetString());
        Assert.Equal("NXdata", h5.GetProperty("data_class").GetString());
        Assert.Equal("data", h5.GetProperty("signal").GetString());
        var ids = H5py.ULongs(h5.GetProperty("image_id"));
        for (int i = 1; i < n; i++)
            Assert.Equal(ids[0] + (ulong)i, ids[i]);
        Assert.True(H5py.Longs(h5.GetProperty("status")).All(s => s == 0), "statuses: " + h5.GetProperty("status") + " ids: " + h5.GetProperty("image_id") + "; assembler: " + p.Assembler.Counters.Read());
        // Per image, from the pipeline: the detector's frame number (the simulator's is the id) and
        // when the image's frames were received (after the pipeline started, before the request ended, in order).
        Assert.Equal(ids, H5py.ULongs(h5.GetProperty("frame_index")));
        var received = H5py.Longs(h5.GetProperty("receive_time"));
        long endedNs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000 + 1_000_000;
        Assert.All(received, t => Assert.InRange(t, startedNs, endedNs));
        for (int i = 1; i < n; i++)
            Assert.True(received[i] >= received[i - 1], $"receive_time of image {i} is before image {i - 1}'s: {h5.GetProperty("receive_time")}");
        Assert.Equal("ns", h5.GetProperty("receive_time_units").GetString());
        var attrs = h5.GetProperty("attrs");
        Assert.Equal(p.Config.DetectorName, attrs.GetProperty("detector_name").GetString());
        Assert.Equal(id, attrs.GetProperty("request_id").GetString());
        Assert.Equal("lysozyme", attrs.GetProperty("sample").GetString());
        Assert.Equal(n, attrs.GetProperty("n_images_written").GetInt64());
        Assert.Equal(0, attrs.GetProperty("interrupted").GetInt64());

        byte[] pixels = File.ReadAllBytes(dump);
        int imageBytes = 1024 * 1024 * 2;
        Assert.Equal((long)n * imageBytes, pixels.LongLength);
        for (int i = 0; i < n; i++)
        {
            var want = SimulatedImage.Expected(p.Config, ids[i], _ => true);
            Assert.True(want.AsSpan().SequenceEqual(pixels.AsSpan(i * imageBytes, imageBytes)), $"image {i} (id {ids[i]}) differs from the simulator pattern");
        }
    }

    [Fact]
    public async Task Write_BitshuffleLz4_DebianPluginReadsTheImagesBack()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url);
        string file = Path.Combine(env.Dir, "compressed.h5");
        const int n = 30;

        var final = await p.WriteAsync(WriterPipeline.Body(file, n, "\"compression\": \"bitshuffle-lz4\""), Long);

        Assert.True(final.Action == BrokerProtocol.ActionSuccess, $"{final.Action}: {final.Message}");
        Assert.Equal(n, JsonDocument.Parse(final.Message!).RootElement.GetProperty("n_images_written").GetInt64());
        string dump = Path.Combine(env.Dir, "pixels.raw");
        var h5 = H5py.Read(env, file, dump);
        Assert.Equal([n, 1024, 1024], H5py.Longs(h5.GetProperty("shape")));
        Assert.True(h5.GetProperty("filters_by_id").TryGetProperty("32008", out var bshuf), $"no bitshuffle filter: {h5.GetProperty("filters_by_id")}");
        Assert.Equal(2, bshuf[bshuf.GetArrayLength() - 1].GetInt32()); // LZ4
        var ids = H5py.ULongs(h5.GetProperty("image_id"));
        byte[] pixels = File.ReadAllBytes(dump);
        int imageBytes = 1024 * 1024 * 2;
        for (int i = 0; i < n; i++)
        {
            var want = SimulatedImage.Expected(p.Config, ids[i], _ => true);
            var got = pixels.AsSpan(i * imageBytes, imageBytes).ToArray();
            int at = want.AsSpan().CommonPrefixLength(got);
            Assert.True(at == imageBytes, $"image {i} (id {ids[i]}, status {H5py.Longs(h5.GetProperty("status"))[i]}) differs after " +
                $"decompression from byte {at} ({want.AsSpan().Length - at} bytes left; differing bytes: {Enumerable.Range(0, imageBytes).Count(k => want[k] != got[k])}; " +
                $"the image of which id it holds, if any: {WhichId(p.Config, got, ids[i])}; first bytes {Convert.ToHexString(got.AsSpan(0, 16))}, " +
                $"expected {Convert.ToHexString(want.AsSpan(0, 16))})");
        }
        // Compressed for real: the file is well below the raw size.
        Assert.True(new FileInfo(file).Length < (long)n * imageBytes / 2, $"file is {new FileInfo(file).Length} bytes for {n} images");
    }

    [Fact]
    public async Task Kill_MidRun_FileClosedAndMarkedInterrupted()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100);
        string file = Path.Combine(env.Dir, "killed.h5");

        string id = await p.SendAsync(WriterPipeline.Body(file, 100_000));
        bool killed = false;
        var final = await p.FinalAsync(id, Long, s =>
        {
            if (!killed && s.Action == BrokerProtocol.ActionProgress && s.Message!.Contains("\"n_images_written\":"))
            {
                killed = true;
                p.Client.SendKillAsync(id, p.Tag, CancellationToken.None).GetAwaiter().GetResult();
            }
        });

        Assert.True(killed, "no progress status came before the end");
        Assert.Equal(BrokerProtocol.ActionFail, final.Action);
        Assert.Contains("interrupted (killed by request)", final.Message);
        var h5 = H5py.Read(env, file);
        var attrs = h5.GetProperty("attrs");
        Assert.Equal(1, attrs.GetProperty("interrupted").GetInt64());
        Assert.Contains("killed", attrs.GetProperty("interrupted_reason").GetString());
        long written = attrs.GetProperty("n_images_written").GetInt64();
        Assert.InRange(written, 1, 99_999);
        Assert.Contains($"closed with {written} of 100000 images", final.Message);
    }

    [Fact]
    public async Task BadRequests_EachFailsAtOnceWithItsMessage()
    {
        using var env = new TestEnv();
        string allowed = Path.Combine(env.Dir, "allowed");
        Directory.CreateDirectory(allowed);
        string existing = Path.Combine(allowed, "existing.h5");
        File.WriteAllText(existing, "x");
        await using var p = await WriterPipeline.StartAsync(env, broker.Url,
            tweak: c => c with { WriterOutputRoots = [allowed] });
        string ok = Path.Combine(allowed, "ok.h5");
        (string Body, string Message)[] cases =
        [
            ("{\"output_file\": \"" + ok + "\"}", "n_images: missing"),
            (WriterPipeline.Body(ok, 0), "n_images: must be between 1"),
            ("{\"output_file\": \"" + ok + "\", \"n_images\": \"ten\"}", "n_images: must be an integer"),
            ("{\"n_images\": 5}", "output_file: missing"),
            (WriterPipeline.Body("relative/run.h5", 5), "is not an absolute path"),
            (WriterPipeline.Body(Path.Combine(env.Dir, "elsewhere.h5"), 5), "is outside the allowed output roots"),
            (WriterPipeline.Body(Path.Combine(allowed, "no-such-folder", "run.h5"), 5), "does not exist"),
            (WriterPipeline.Body(existing, 5), "already exists"),
            (WriterPipeline.Body(ok, 5, "\"compression\": \"zip\""), "compression: 'zip' is not one of"),
            ("[1, 2]", "must be a JSON object"),
            ("not json", "not valid JSON"),
            (WriterPipeline.Body(ok, 5, "\"metadata\": {\"detector_distance\": -120}"), "metadata.detector_distance: -120 is out of range 1..100000 mm"),
            (WriterPipeline.Body(ok, 5, "\"metadata\": {\"wavelength\": \"1.0\"}"), "metadata.wavelength: must be a number (Å), got the string \"1.0\""),
            (WriterPipeline.Body(ok, 5, "\"metadata\": {\"photon_energy\": 12400}"), "metadata.photon_energy: 12400 is out of range"),
            (WriterPipeline.Body(ok, 5, "\"metadata\": {\"photon_energy\": 12.4, \"wavelength\": 1.5}"), "metadata.photon_energy: 12.4 keV is a wavelength of 0.999873 Å, but metadata.wavelength is 1.5 Å"),
            (WriterPipeline.Body(ok, 5, "\"metadata\": {\"creator\": \"me\"}"), "metadata.creator: reserved"),
        ];
        foreach (var (body, message) in cases)
        {
            var started = DateTime.UtcNow;
            string id = await p.SendAsync(body);
            var final = await p.FinalAsync(id, TimeSpan.FromSeconds(10));
            Assert.True(final.Action == BrokerProtocol.ActionFail, $"{body}: {final.Action} {final.Message}");
            Assert.True(final.Message!.Contains(message), $"{body}: message '{final.Message}' lacks '{message}'");
            Assert.Equal(body, final.Body);
            Assert.Equal(BrokerProtocol.ActionStart, p.StatusesOf(id)[0].Action);
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5), $"{body}: took {(DateTime.UtcNow - started).TotalSeconds:F1} s");
        }
        Assert.False(File.Exists(ok));
        Assert.Equal("x", File.ReadAllText(existing));
        // And the agent still works after all of them.
        var good = await p.WriteAsync(WriterPipeline.Body(ok, 3), Long);
        Assert.True(good.Action == BrokerProtocol.ActionSuccess, good.Message);
    }

    [Fact]
    public async Task Write_PathsThatMustNotBeWritten_EachFailsNamingPathAndReasonAndNothingChanges()
    {
        using var env = new TestEnv();
        string root = Path.Combine(env.Dir, "out"), outside = Path.Combine(env.Dir, "outside");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(outside);
        File.CreateSymbolicLink(Path.Combine(root, "link"), outside);
        string dev = Path.Combine(root, "null"), fifo = Path.Combine(root, "fifo"), text = Path.Combine(root, "notes.h5");
        string h5 = Path.Combine(root, "old.h5"), h5Link = Path.Combine(root, "old-link.h5"), folder = Path.Combine(root, "folder.h5");
        SpecialFiles.DevNullCopy(dev);
        SpecialFiles.Fifo(fifo);
        File.WriteAllText(text, "keep me");
        SpecialFiles.Hdf5(h5);
        byte[] h5Bytes = File.ReadAllBytes(h5);
        File.CreateSymbolicLink(h5Link, h5);
        Directory.CreateDirectory(folder);
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, tweak: c => c with { WriterOutputRoots = [root] });
        const string Overwrite = "\"overwrite\": true";
        (string Body, string Message)[] cases =
        [
            (WriterPipeline.Body(dev, 3, Overwrite), $"output_file: '{dev}' is a character device; overwrite replaces only a regular HDF5 file"),
            (WriterPipeline.Body("/dev/null", 3, Overwrite), "output_file: '/dev/null' is outside the allowed output roots"),
            (WriterPipeline.Body(fifo, 3, Overwrite), $"output_file: '{fifo}' is a fifo"),
            (WriterPipeline.Body(folder, 3, Overwrite), $"output_file: '{folder}' is a folder"),
            (WriterPipeline.Body(text, 3, Overwrite), $"output_file: '{text}' is not an HDF5 file (no HDF5 signature)"),
            (WriterPipeline.Body(h5Link, 3, Overwrite), $"output_file: '{h5Link}' is a symbolic link (links are not followed)"),
            (WriterPipeline.Body(Path.Combine(root, "link", "escape.h5"), 3),
                $"output_file: '{Path.Combine(root, "link", "escape.h5")}': '{Path.Combine(root, "link")}' is a symbolic link; links below an output root are not followed"),
            (WriterPipeline.Body(root + "/link/../escape.h5", 3), $"output_file: '{root}/link/../escape.h5' has a '..' component"),
            (WriterPipeline.Body(root + "2/x.h5", 3), $"output_file: '{root}2/x.h5' is outside the allowed output roots ({root})"),
        ];
        foreach (var (body, message) in cases)
        {
            string id = await p.SendAsync(body);
            var final = await p.FinalAsync(id, TimeSpan.FromSeconds(10));
            Assert.True(final.Action == BrokerProtocol.ActionFail, $"{body}: {final.Action} {final.Message}");
            Assert.True(final.Message!.StartsWith(message), $"{body}: message '{final.Message}' does not start with '{message}'");
        }
        Assert.Equal("character device", SpecialFiles.Kind(dev));
        Assert.Equal("character device", SpecialFiles.Kind("/dev/null"));
        Assert.Equal("fifo", SpecialFiles.Kind(fifo));
        Assert.Equal("folder", SpecialFiles.Kind(folder));
        Assert.Equal("keep me", File.ReadAllText(text));
        Assert.Equal("symbolic link", SpecialFiles.Kind(h5Link));
        Assert.Equal(h5Bytes, File.ReadAllBytes(h5));
        Assert.Empty(Directory.GetFileSystemEntries(outside));

        // A regular HDF5 file is replaced.
        var good = await p.WriteAsync(WriterPipeline.Body(h5, 3, Overwrite), Long);
        Assert.True(good.Action == BrokerProtocol.ActionSuccess, good.Message);
        Assert.Equal([3, 1024, 1024], H5py.Longs(H5py.Read(env, h5).GetProperty("shape")));
    }

    [Fact]
    public async Task Request_WhileBusyWithRejectPolicy_FailsAtOnceAndTheRunningOneGoesOn()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100, tweak: c => c with { WriterBusyPolicy = WriterBusyPolicy.Reject });
        string first = await p.SendAsync(WriterPipeline.Body(Path.Combine(env.Dir, "first.h5"), 200));
        // Wait until the first one is really running (its first progress), then ask for another.
        var running = new TaskCompletionSource();
        var firstFinal = p.FinalAsync(first, Long, s =>
        {
            if (s.Action == BrokerProtocol.ActionProgress)
                running.TrySetResult();
        });
        await running.Task.WaitAsync(Long);
        string second = await p.SendAsync(WriterPipeline.Body(Path.Combine(env.Dir, "second.h5"), 5));
        var secondFinal = await p.FinalAsync(second, TimeSpan.FromSeconds(10));

        Assert.Equal(BrokerProtocol.ActionFail, secondFinal.Action);
        Assert.Contains($"busy: request {first} is writing", secondFinal.Message);
        var f = await firstFinal;
        Assert.True(f.Action == BrokerProtocol.ActionSuccess, f.Message);
        Assert.False(File.Exists(Path.Combine(env.Dir, "second.h5")));
    }

    [Fact]
    public async Task Kill_OfARequestWaitingBehindAnother_RefusesItWhenItsTurnComes()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url); // writer_busy_policy: queue
        string first = await p.SendAsync(WriterPipeline.Body(Path.Combine(env.Dir, "first.h5"), 200));
        string second = await p.SendAsync(WriterPipeline.Body(Path.Combine(env.Dir, "second.h5"), 5));
        await p.Client.SendKillAsync(second, p.Tag, CancellationToken.None);

        var firstFinal = await p.FinalAsync(first, Long);
        var secondFinal = await p.FinalAsync(second, Long);

        Assert.True(firstFinal.Action == BrokerProtocol.ActionSuccess, firstFinal.Message);
        Assert.Equal(BrokerProtocol.ActionFail, secondFinal.Action);
        Assert.Equal("killed by request before it started", secondFinal.Message);
        Assert.False(File.Exists(Path.Combine(env.Dir, "second.h5")));
    }

    [Fact]
    public async Task Write_WriterLappedByTheRing_MissingImagesReportedAndNoneWrittenWrong()
    {
        using var env = new TestEnv();
        // 4 image slots at 200 images/s: a writer taking 30 ms per image falls a whole ring behind.
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 200,
            tweak: c => c with { ImageBufferSlots = 4 },
            writerOptions: new StdDaq.Writer.WriterOptions { BeforeImage = _ => Thread.Sleep(30) });
        string file = Path.Combine(env.Dir, "lapped.h5");
        const int n = 40;

        var final = await p.WriteAsync(WriterPipeline.Body(file, n), Long);

        Assert.True(final.Action == BrokerProtocol.ActionSuccess, $"{final.Action}: {final.Message}");
        var summary = JsonDocument.Parse(final.Message!).RootElement;
        var missing = H5py.ULongs(summary.GetProperty("missing_image_ids"));
        long written = summary.GetProperty("n_images_written").GetInt64();
        Assert.NotEmpty(missing);
        Assert.Equal(n, written + missing.Length);
        Assert.True(summary.GetProperty("missing_reasons").EnumerateObject().All(r => r.Name.StartsWith("overwritten in the image buffer")),
            summary.GetProperty("missing_reasons").ToString());

        string dump = Path.Combine(env.Dir, "pixels.raw");
        var h5 = H5py.Read(env, file, dump);
        var ids = H5py.ULongs(h5.GetProperty("image_id"));
        var status = H5py.Longs(h5.GetProperty("status"));
        byte[] pixels = File.ReadAllBytes(dump);
        int imageBytes = 1024 * 1024 * 2;
        int good = 0;
        for (int i = 0; i < n; i++)
        {
            if (missing.Contains(ids[i]))
            {
                Assert.Equal(0xFFFF, status[i]);
                continue;
            }
            Assert.Equal(0, status[i]);
            Assert.True(SimulatedImage.Expected(p.Config, ids[i], _ => true).AsSpan().SequenceEqual(pixels.AsSpan(i * imageBytes, imageBytes)),
                $"image {i} (id {ids[i]}) is marked good but differs: written wrong");
            good++;
        }
        Assert.Equal(written, good);
    }

    [Fact]
    public async Task Write_UnwritablePath_RequestFailsNamingItThenTheNextSucceeds()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url);
        // /proc exists (the agent's checks pass) but nobody, not even root, can create a file there.
        var bad = await p.WriteAsync(WriterPipeline.Body($"/proc/{env.Name}.h5", 5), Long);

        Assert.Equal(BrokerProtocol.ActionFail, bad.Action);
        Assert.StartsWith($"writing '/proc/{env.Name}.h5' failed: cannot create '/proc/{env.Name}.h5':", bad.Message);
        Assert.Contains("open(O_CREAT | O_EXCL | O_NOFOLLOW) failed", bad.Message);
        var good = await p.WriteAsync(WriterPipeline.Body(Path.Combine(env.Dir, "next.h5"), 5), Long);
        Assert.True(good.Action == BrokerProtocol.ActionSuccess, good.Message);
    }

    [Fact]
    public async Task Write_DiskFull_RequestFailsThenTheNextRequestSucceeds()
    {
        Assert.True(Environment.UserName == "root", "this test mounts a small tmpfs to fill it and needs root (CI runs as root)");
        using var env = new TestEnv();
        string small = Path.Combine(env.Dir, "small");
        Directory.CreateDirectory(small);
        Assert.Equal(0, Programs.RunProcess("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", small]).ExitCode);
        try
        {
            await using var p = await WriterPipeline.StartAsync(env, broker.Url);
            // 20 images of 2 MiB do not fit in 8 MiB.
            var full = await p.WriteAsync(WriterPipeline.Body(Path.Combine(small, "full.h5"), 20), Long);
            Assert.Equal(BrokerProtocol.ActionFail, full.Action);
            Assert.Contains("full.h5", full.Message);
            Assert.True(full.Message!.Contains("No space left", StringComparison.OrdinalIgnoreCase)
                        || full.Message.Contains("write failed", StringComparison.OrdinalIgnoreCase), full.Message);

            var good = await p.WriteAsync(WriterPipeline.Body(Path.Combine(env.Dir, "after.h5"), 5), Long);
            Assert.True(good.Action == BrokerProtocol.ActionSuccess, good.Message);
            Assert.Equal([5, 1024, 1024], H5py.Longs(H5py.Read(env, Path.Combine(env.Dir, "after.h5")).GetProperty("shape")));
        }
        finally
        {
            Programs.RunProcess("umount", ["-l", small]);
        }
    }

    /// <summary>For a failure message: the id near <paramref name="near"/> whose simulated image equals <paramref name="image"/>, or "none".</summary>
    private static string WhichId(StdDaq.Shared.Config.DetectorConfig config, byte[] image, ulong near)
    {
        for (ulong id = near > 256 ? near - 256 : 1; id < near + 256; id++)
            if (SimulatedImage.Expected(config, id, _ => true).AsSpan().SequenceEqual(image))
                return id.ToString();
        return "none";
    }
}
