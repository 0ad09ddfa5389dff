using StdDaq.Assembler;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;
using StdDaq.UdpRecv;

namespace StdDaq.Tests.Assembler;

/// <summary>
/// Detectors of more module streams than a 64-bit mask can flag: an EIGER 9M (72 ports) and 16M
/// (128 ports) through real receivers on loopback and the assembler, with small rings.
/// </summary>
[Collection("serial")]
public class LargeDetectorTests
{
    [Theory]
    [InlineData(3, 6, 16)] // EIGER 9M: 72 ports, 3106 x 3264 uint16
    [InlineData(4, 8, 8)]  // EIGER 16M: 128 ports, 4144 x 4364 uint8
    public void Assemble_EigerOfManyPortsThroughReceivers_EveryPixelInItsPlace(int columns, int rows, int depth)
    {
        using var env = new TestEnv();
        var config = EigerConfig(env, columns, rows, depth);
        int ports = config.NModules;
        using var harness = new AssemblerHarness(env, config);
        ulong first = WarmUp(harness, config);

        const int frames = 5;
        var sent = Send(config, new SimOptions { Rate = 10, Frames = frames, StartId = first });
        Assert.Empty(sent.Lost);
        var images = new Dictionary<ulong, byte[]>();
        int seen = harness.Images.Count;
        harness.Collect(seen + frames, TimeSpan.FromSeconds(60), (meta, image, header) =>
        {
            Assert.True(meta.Status == (ushort)ImageStatus.Good,
                $"image {meta.Id}: status {meta.Status}, {header.NMissingModules} modules missing, {harness.Assembler.Counters.Read()}");
            Assert.Empty(AssemblerHarness.MissingModules(header, ports));
            images[meta.Id] = image.ToArray();
        });
        var ids = harness.Images.Skip(seen).Select(i => i.Meta.Id).ToList();
        Assert.Equal(Enumerable.Range(0, frames).Select(i => first + (ulong)i), ids);
        // The image ring has 4 slots and a copy can be lapped while the reader is slow: most must be checked.
        Assert.True(images.Count >= frames - 1, $"only {images.Count} of {frames} images copied ({harness.Overrun} overrun)");
        int bpp = harness.Assembler.Layout.BytesPerPixel;
        foreach (var (id, image) in images)
        {
            var expected = AssemblerHarness.ExpectedImage(config, id, _ => true);
            int at = expected.AsSpan().CommonPrefixLength(image);
            Assert.True(at == expected.Length, $"image {id}: first difference at pixel {at / bpp} (x {at / bpp % config.ImagePixelWidth}, y {at / bpp / config.ImagePixelWidth})");
        }
        var totals = harness.Receivers!.Totals();
        Assert.Equal(0, totals[ReceiverCounter.MissingPackets]);
        Assert.Equal(0, totals[ReceiverCounter.KernelDrops]);
    }

    [Fact]
    public void Assemble_128PortsWithPortsPast64Missing_BitmapAndCountNameThem()
    {
        using var env = new TestEnv();
        var config = EigerConfig(env, 4, 8, 8) with { AssemblerTimeoutMs = 5000 };
        using var harness = new AssemblerHarness(env, config, udp: false);
        var source = harness.Source!;
        source.WaitForSubscribers(TimeSpan.FromSeconds(20));
        int[] absent = [64, 100, 127];
        // Image 2 lacks three ports past 64; image 3 is whole, so those ports have moved on and
        // image 2 goes out at once, incomplete (the long timeout would fail the test's deadline).
        for (ulong id = 1; id <= 3; id++)
            for (int m = 0; m < config.NModules; m++)
                if (id != 2 || !absent.Contains(m))
                    Assert.True(source.Publish(source.WritePattern(m, id)));
        var seen = new Dictionary<ulong, (ushort Status, int[] Missing, bool Exact)>();
        harness.Collect(3, TimeSpan.FromSeconds(4), (meta, image, header) =>
        {
            var missing = AssemblerHarness.MissingModules(header, config.NModules);
            var expected = AssemblerHarness.ExpectedImage(config, meta.Id, m => !missing.Contains(m));
            seen[meta.Id] = (meta.Status, missing, expected.AsSpan().SequenceEqual(image));
        });
        Assert.Equal(new ulong[] { 1, 2, 3 }, harness.Images.Select(i => i.Meta.Id));
        foreach (ulong id in new ulong[] { 1, 2, 3 })
        {
            Assert.Equal((ushort)(id == 2 ? ImageStatus.Incomplete : ImageStatus.Good), seen[id].Status);
            Assert.Equal(id == 2 ? absent : [], seen[id].Missing);
            Assert.True(seen[id].Exact, $"image {id} differs (the absent ports must be zeros)");
        }
        var c = harness.Assembler.Counters.Read();
        Assert.Equal(3, c[AssemblerCounter.ModulesMissing]);
        Assert.Equal(2, c[AssemblerCounter.ImagesGood]);
    }

    [Fact]
    public void Up_Eiger256Ports_EveryFrameReceivedAndEveryImageAssembled()
    {
        using var env = new TestEnv();
        var (positions, width, height) = TestEnv.EigerPorts(8, 8);
        string config = Path.Combine(env.Dir, "config.json");
        File.WriteAllText(config, env.ConfigJson("eiger", 256, 8, width, height, positions, TestEnv.FreeUdpPorts(256), slots: 8, timeoutMs: 250)
            .Replace("\"stats_collection_period\":3600}", "\"stats_collection_period\":3600,\"image_buffer_slots\":4}"));
        env.Ring("image");
        for (int m = 0; m < 256; m++)
            env.Ring(m.ToString());

        var r = Programs.Run("std-daq", ["up", config, "--simulate", "--rate", "5", "--frames", "6", "--cleanup"], TimeSpan.FromSeconds(120));

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stdout}\n{r.Stderr}");
        Assert.Contains("(eiger, 256 modules)", r.Stdout);
        Assert.Contains("received: 1536 complete frames, 0 incomplete, 0 packets lost", r.Stdout);
        // `up` starts the simulator as soon as the assembler has asked for its 256 connections:
        // the first image may come before all of them are made.
        var assembled = System.Text.RegularExpressions.Regex.Match(r.Stdout, @"assembled: (\d+) good images, (\d+) incomplete, 0 id mismatch");
        Assert.True(assembled.Success, r.Stdout);
        int good = int.Parse(assembled.Groups[1].Value), incomplete = int.Parse(assembled.Groups[2].Value);
        Assert.True(good >= 5 && good + incomplete == 6, r.Stdout);
        Assert.False(File.Exists($"/dev/shm/{env.Name}-255"), "--cleanup left a frame buffer");
    }

    /// <summary>An EIGER of columns x rows modules (4 ports each), small rings, unique name and ports.</summary>
    private static DetectorConfig EigerConfig(TestEnv env, int columns, int rows, int depth)
    {
        var (positions, width, height) = TestEnv.EigerPorts(columns, rows);
        // The simulator sends a frame in bursts spread over the frame period (at 10 Hz, 8 bit: two
        // bursts 50 ms apart): a frame must not close between them.
        return env.Config("eiger", positions.Count, depth, width, height, positions, slots: 8, timeoutMs: 250) with { ImageBufferSlots = 4 };
    }

    private static SimReport Send(DetectorConfig config, SimOptions options)
    {
        using var sim = new DetectorSimulator(config, options);
        return sim.Run(CancellationToken.None);
    }

    /// <summary>
    /// Sends single images until one comes out whole: then every receiver's notices reach the
    /// assembler (its subscriptions to all the ports are connected). Returns the next image id.
    /// </summary>
    private static ulong WarmUp(AssemblerHarness harness, DetectorConfig config)
    {
        for (ulong id = 1; id <= 20; id++)
        {
            Send(config, new SimOptions { Rate = 0, Frames = 1, StartId = id });
            int before = harness.Images.Count;
            harness.Collect(before + 1, TimeSpan.FromSeconds(5));
            if (harness.Images.Count > before && harness.Images[^1].Meta is { Status: (ushort)ImageStatus.Good } m && m.Id == id)
                return id + 1;
        }
        throw new TimeoutException($"no whole image from {config.NModules} ports after 20 tries: {harness.Assembler.Counters.Read()}");
    }
}
