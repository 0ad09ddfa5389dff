using System.Diagnostics;
using StdDaq.Assembler;
using StdDaq.Assembler.Conversions;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Assembler;

[Collection("serial")]
public class AssemblerTests
{
    private static SimReport Send(DetectorConfig config, SimOptions options)
    {
        using var sim = new DetectorSimulator(config, options);
        return sim.Run(CancellationToken.None);
    }

    public static TheoryData<string, int, int, int, int, string> Detectors => new()
    {
        // JUNGFRAU 2 modules, the second flipped
        { "jungfrau-raw", 2, 16, 1024, 1024, "{\"0\":[0,0,1023,511],\"1\":[0,1023,1023,512]}" },
        // EIGER: two ports side by side with a module gap, two flipped below with a row gap
        { "eiger", 4, 8, 1030, 514, "{\"0\":[0,0,513,255],\"1\":[516,0,1029,255],\"2\":[0,513,513,258],\"3\":[516,513,1029,258]}" },
        { "eiger", 4, 16, 1030, 514, "{\"0\":[0,0,513,255],\"1\":[516,0,1029,255],\"2\":[0,513,513,258],\"3\":[516,513,1029,258]}" },
        { "eiger", 4, 32, 1030, 514, "{\"0\":[0,0,513,255],\"1\":[516,0,1029,255],\"2\":[0,513,513,258],\"3\":[516,513,1029,258]}" },
        // GigaFRoST: quadrants from the fixed layout
        { "gigafrost", 8, 16, 480, 480, "" },
    };

    [Theory]
    [MemberData(nameof(Detectors))]
    public void Assemble_SimulatedDetector_EveryPixelInItsPlace(string type, int modules, int depth, int width, int height, string positions)
    {
        using var env = new TestEnv();
        var config = Config(env, type, modules, depth, width, height, positions);
        using var harness = new AssemblerHarness(env, config);
        const int frames = 12;
        var sent = Send(config, new SimOptions { Rate = 100, Frames = frames, StartId = 1 });
        Assert.Empty(sent.Lost);
        int good = 0;
        harness.Collect(frames, TimeSpan.FromSeconds(20), (meta, image, header) =>
        {
            Assert.Equal((ushort)ImageStatus.Good, meta.Status);
            Assert.Equal((ulong)height, meta.Height);
            Assert.Equal((ulong)width, meta.Width);
            Assert.Empty(AssemblerHarness.MissingModules(header, modules));
            var expected = AssemblerHarness.ExpectedImage(config, meta.Id, _ => true);
            int at = expected.AsSpan().CommonPrefixLength(image);
            Assert.True(at == expected.Length, $"image {meta.Id}: first difference at byte {at} (pixel {at / new ImageLayout(config).BytesPerPixel})");
            good++;
        });
        Assert.Equal(Enumerable.Range(1, frames).Select(i => (ulong)i), harness.Images.Select(i => i.Meta.Id));
        Assert.Equal(frames - harness.Overrun, good);
        Assert.True(good >= frames - 1, $"only {good} images checked");
        var dtype = (ImageDtype)harness.Images[0].Meta.Dtype;
        Assert.Equal(type switch { "eiger" => depth switch { 8 => ImageDtype.UInt8, 16 => ImageDtype.UInt16, _ => ImageDtype.UInt32 }, _ => ImageDtype.UInt16 }, dtype);
    }

    [Fact]
    public void Assemble_RealEigerCaptures_514x1030WithGapsAndFlippedBottom()
    {
        using var env = new TestEnv();
        string src = Path.Combine(TestEnv.SharedData, "eiger-500k-32bit");
        var config = DetectorConfigLoader.Load(Path.Combine(src, "detector.json")) with
        {
            DetectorName = env.Name, StartUdpPort = TestEnv.FreeUdpPorts(4), FrameBufferSlots = 16, ImageBufferSlots = 8,
        };
        for (int m = 0; m < 4; m++)
            env.Ring(m.ToString());
        string dir = Path.Combine(env.Dir, "captures");
        Directory.CreateDirectory(dir);
        for (int i = 0; i < 4; i++)
            File.Copy(Path.Combine(src, $"{50020 + i}.dat"), Path.Combine(dir, $"port{i}.dat"));
        using var harness = new AssemblerHarness(env, config);
        new CaptureReplay(config, new SimOptions { Replay = dir, Rate = 20 }).Run(CancellationToken.None);
        var images = new Dictionary<ulong, byte[]>();
        harness.Collect(5, TimeSpan.FromSeconds(20), (meta, image, _) =>
        {
            Assert.Equal((ushort)ImageStatus.Good, meta.Status);
            images[meta.Id] = image.ToArray();
        });
        Assert.Equal(5, images.Count);
        var captures = Enumerable.Range(0, 4).Select(m => File.ReadAllBytes(Path.Combine(src, $"{50020 + m}.dat"))).ToArray();
        for (int f = 0; f < 5; f++)
        {
            var image = images[29512UL + (ulong)f];
            Assert.Equal(514 * 1030 * 4, image.Length);
            for (int m = 0; m < 4; m++)
            {
                // Frame pixel (row r, column c) of port m, straight from the capture's packets.
                int x0 = m % 2 == 0 ? 0 : 516;
                for (int r = 0; r < 256; r++)
                {
                    int y = m < 2 ? r : 513 - r; // bottom half-module flipped
                    for (int c = 0; c < 512; c++)
                    {
                        int pixel = r * 512 + c;
                        int k = pixel / 1024, inPacket = pixel % 1024;
                        int record = (f * 128 + k) * (8 + 4144);
                        uint expected = BitConverter.ToUInt32(captures[m], record + 8 + 48 + inPacket * 4);
                        int x = x0 + c + (c >= 256 ? 2 : 0);
                        uint actual = BitConverter.ToUInt32(image, (y * 1030 + x) * 4);
                        if (expected != actual)
                            Assert.Fail($"frame {f} port {m} pixel ({r}, {c}) -> image ({y}, {x}): {actual}, capture {expected}");
                    }
                }
            }
            // Gaps: chip gaps (x 256-257 and 772-773), the module gap (x 514-515), the rows between halves.
            foreach (int x in new[] { 256, 257, 514, 515, 772, 773 })
                for (int y = 0; y < 514; y++)
                    Assert.Equal(0u, BitConverter.ToUInt32(image, (y * 1030 + x) * 4));
            for (int x = 0; x < 1030; x++)
            {
                Assert.Equal(0u, BitConverter.ToUInt32(image, (256 * 1030 + x) * 4));
                Assert.Equal(0u, BitConverter.ToUInt32(image, (257 * 1030 + x) * 4));
            }
        }
    }

    [Fact]
    public void Assemble_ConvertedJungfrauWithLostPackets_KeVPerPixelAndNaNForLostPackets()
    {
        using var env = new TestEnv();
        var config = Config(env, "jungfrau-converted", 2, 16, 1024, 1024, "{\"0\":[0,0,1023,511],\"1\":[0,1023,1023,512]}");
        var cal = new TestCalibration(2, seed: 11);
        using var calibration = cal.Build();
        using var harness = new AssemblerHarness(env, config, new AssemblerOptions { Calibration = calibration });
        const int frames = 8;
        var sent = Send(config, new SimOptions { Rate = 50, Frames = frames, StartId = 1, Loss = 0.01, Seed = 4 });
        Assert.NotEmpty(sent.Lost);
        var layout = new ImageLayout(config);
        var g = config.Module;
        int checkedImages = 0;
        harness.Collect(frames, TimeSpan.FromSeconds(20), (meta, image, header) =>
        {
            Assert.Equal((ushort)ImageDtype.Float32, meta.Dtype);
            var lost = sent.Lost.Where(l => l.ImageId == meta.Id).Select(l => (l.Module, l.Packet)).ToHashSet();
            Assert.Equal((ushort)(lost.Count > 0 ? ImageStatus.Incomplete : ImageStatus.Good), meta.Status);
            var pixels = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(image);
            for (int m = 0; m < 2; m++)
            {
                var pos = config.ModulePositions[m];
                for (int i = 0; i < JungfrauCalibration.ModulePixels; i++)
                {
                    int r = i / 1024, c = i % 1024;
                    int y = pos.FlippedVertically ? pos.Y0 - r : pos.Y0 + r;
                    float want = lost.Contains((m, r / 4)) ? float.NaN
                        : cal.Expected(m, i, (ushort)PixelPattern.Value(g, meta.Id, m, i));
                    float got = pixels[y * layout.Width + pos.Left + c];
                    if (!(float.IsNaN(want) && float.IsNaN(got)) && want != got)
                        Assert.Fail($"image {meta.Id} module {m} pixel {i}: expected {want}, got {got}");
                }
            }
            checkedImages++;
        });
        Assert.True(checkedImages >= frames - 1, $"only {checkedImages} images checked");
        var counters = harness.Assembler.Counters.Read();
        Assert.Equal(sent.Lost.Count * 4 * 1024, counters[AssemblerCounter.PixelsLostPackets]);
        Assert.Equal(0, counters[AssemblerCounter.PixelsInvalidGain]); // the simulator sends gain bits 00
    }

    [Fact]
    public void AssemblerLappedByTheReceivers_OverrunsCountedAndNoOverwrittenFrameDeliveredAsGood()
    {
        using var env = new TestEnv();
        // A 4-slot frame ring: frames 1..12 are all written before the assembler hears of any,
        // so the slots of 1..8 already hold 9..12 when their notices arrive.
        var config = Config(env, "jungfrau-raw", 2, 16, 1024, 1024, "{\"0\":[0,0,1023,511],\"1\":[0,512,1023,1023]}") with
        {
            FrameBufferSlots = 4,
        };
        using var harness = new AssemblerHarness(env, config, udp: false);
        var source = harness.Source!;
        var notices = new List<ModuleFrameNotice>();
        for (ulong id = 1; id <= 12; id++)
            for (int m = 0; m < 2; m++)
                notices.Add(source.WritePattern(m, id));
        source.WaitForSubscribers(TimeSpan.FromSeconds(10));
        foreach (var n in notices)
            Assert.True(source.Publish(n));
        var overwritten = new List<ulong>();
        int good = 0;
        harness.Collect(12, TimeSpan.FromSeconds(10), (meta, image, header) =>
        {
            if (meta.Id <= 8)
            {
                Assert.Equal((ushort)ImageStatus.Incomplete, meta.Status);
                Assert.Equal([0, 1], AssemblerHarness.MissingModules(header, 2));
                Assert.True(image.AsSpan().IndexOfAnyExcept((byte)0) < 0, $"image {meta.Id}: an overwritten frame must not be copied");
                overwritten.Add(meta.Id);
                return;
            }
            Assert.True(meta.Status == (ushort)ImageStatus.Good, $"image {meta.Id}: status {meta.Status}, missing modules {header.NMissingModules}, {harness.Assembler.Counters.Read()}");
            Assert.True(AssemblerHarness.ExpectedImage(config, meta.Id, _ => true).AsSpan().SequenceEqual(image), $"image {meta.Id} differs");
            good++;
        });
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (ulong)i), harness.Images.Select(i => i.Meta.Id));
        Assert.Equal(12 - harness.Overrun, overwritten.Count + good);
        var c = harness.Assembler.Counters.Read();
        Assert.Equal(16, c[AssemblerCounter.FramesOverrun]);
        Assert.Equal(8, c[AssemblerCounter.ImagesIncomplete]);
        Assert.Equal(4, c[AssemblerCounter.ImagesGood]);
    }

    [Fact]
    public void ModuleMissing_ImagePublishedWhenTheTimeoutPassesOnTheAssemblersClock()
    {
        using var env = new TestEnv();
        var config = Config(env, "jungfrau-raw", 2, 16, 1024, 1024, "{\"0\":[0,0,1023,511],\"1\":[0,512,1023,1023]}") with
        {
            AssemblerTimeoutMs = 200,
        };
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var harness = new AssemblerHarness(env, config, new AssemblerOptions { Time = clock }, udp: false);
        var source = harness.Source!;
        source.WaitForSubscribers(TimeSpan.FromSeconds(10));
        Assert.True(source.Publish(source.WritePattern(0, 1))); // module 1 never sends image 1

        // Far more than the timeout passes in real time, none on the assembler's clock.
        harness.Collect(1, TimeSpan.FromSeconds(1.5));
        Assert.Empty(harness.Images);
        clock.Advance(TimeSpan.FromMilliseconds(199));
        harness.Collect(1, TimeSpan.FromSeconds(0.5));
        Assert.Empty(harness.Images);
        clock.Advance(TimeSpan.FromMilliseconds(2));
        harness.Collect(1, TimeSpan.FromSeconds(10));

        var image = Assert.Single(harness.Images);
        Assert.Equal(1UL, image.Meta.Id);
        Assert.Equal((ushort)ImageStatus.Incomplete, image.Meta.Status);
        Assert.Equal(1, harness.Assembler.Counters.Read()[AssemblerCounter.ModulesMissing]);
    }

    [Fact]
    public void ImageReaderLappedByTheAssembler_OverrunsDetectedAndEveryImageReadAsGoodIsExact()
    {
        using var env = new TestEnv();
        // A 4-slot ImageBuffer and a reader that only starts after 12 images were published:
        // images 1..8 are gone (their slots hold 9..12), and a reader that copies while the
        // assembler rewrites a slot must see the sequence lock change.
        var config = Config(env, "jungfrau-raw", 2, 16, 1024, 1024, "{\"0\":[0,0,1023,511],\"1\":[0,512,1023,1023]}") with
        {
            ImageBufferSlots = 4,
            FrameBufferSlots = 128, // the frames of all 60 images stay: only the image ring is lapped
        };
        using var harness = new AssemblerHarness(env, config, udp: false);
        var source = harness.Source!;
        source.WaitForSubscribers(TimeSpan.FromSeconds(10));
        void Send(ulong first, ulong last)
        {
            for (ulong id = first; id <= last; id++)
                for (int m = 0; m < 2; m++)
                    Assert.True(source.Publish(source.WritePattern(m, id)));
        }
        Send(1, 12);
        harness.Collect(12, TimeSpan.FromSeconds(10)); // metadata only: the reader is "busy"
        Assert.Equal(12, harness.Images.Count);
        var ring = harness.Assembler.ImageRing;
        var image = new byte[harness.Assembler.Layout.ImageBytes];
        for (ulong id = 1; id <= 8; id++)
            Assert.False(AssemblerHarness.TryCopy(ring, id, image, out _), $"image {id} was overwritten and must not read as valid");
        for (ulong id = 9; id <= 12; id++)
        {
            Assert.True(AssemblerHarness.TryCopy(ring, id, image, out var header), $"image {id} is still in the ring");
            Assert.Equal(id, header.ImageId);
            Assert.True(AssemblerHarness.ExpectedImage(config, id, _ => true).AsSpan().SequenceEqual(image), $"image {id} differs");
        }

        // Now copy images while the assembler keeps lapping the 4 slots: every copy that
        // validates must be exactly its image, and the torn ones must have been detected.
        var readerDone = false;
        int valid = 0, overrun = 0;
        Exception? failure = null;
        var reader = new Thread(() =>
        {
            try
            {
                var copy = new byte[image.Length];
                for (ulong id = 13; !Volatile.Read(ref readerDone); id = id >= 60 ? 13 : id + 1)
                {
                    if (!AssemblerHarness.TryCopy(ring, id, copy, out var h))
                    {
                        overrun++;
                        continue;
                    }
                    // An incomplete image (a module's notice came too late) is flagged as such and
                    // holds zeros for the missing module: never another image's pixels.
                    var want = AssemblerHarness.ExpectedImage(config, id, h.HasModule);
                    Assert.True(h.Status == SlotStatus.Good || h.NMissingModules != 0, $"image {id}: status {h.Status} without missing modules");
                    Assert.True(want.AsSpan().SequenceEqual(copy), $"image {id} was read as valid but differs (status {h.Status}, missing {h.NMissingModules})");
                    valid++;
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        reader.Start();
        Send(13, 60);
        harness.Collect(60, TimeSpan.FromSeconds(20));
        Volatile.Write(ref readerDone, true);
        Assert.True(reader.Join(TimeSpan.FromSeconds(30)), "the reader finished");
        Assert.Null(failure);
        Assert.True(valid + overrun > 0, "the reader ran");
        Assert.Equal(0, harness.Assembler.Counters.Read()[AssemblerCounter.FramesOverrun]);
    }

    [Fact]
    public async Task ModuleStopsSending_ImagesKeepFlowingIncompleteWithinTheTimeout()
    {
        using var env = new TestEnv();
        var config = Config(env, "jungfrau-raw", 2, 16, 1024, 1024, "{\"0\":[0,0,1023,511],\"1\":[0,512,1023,1023]}") with
        {
            AssemblerTimeoutMs = 300,
        };
        using var harness = new AssemblerHarness(env, config);
        var checkedIncomplete = new List<ulong>();
        Action<ImageMetadata, byte[], SlotHeader> check = (meta, image, header) =>
        {
            bool both = meta.Id <= 5;
            Assert.Equal((ushort)(both ? ImageStatus.Good : ImageStatus.Incomplete), meta.Status);
            Assert.Equal(both ? [] : [1], AssemblerHarness.MissingModules(header, 2));
            var expected = AssemblerHarness.ExpectedImage(config, meta.Id, m => both || m == 0);
            Assert.True(expected.AsSpan().SequenceEqual(image), $"image {meta.Id} differs (module 1 must be zeros)");
            if (!both)
                checkedIncomplete.Add(meta.Id);
        };
        Send(config, new SimOptions { Rate = 50, Frames = 5, StartId = 1 });
        harness.Collect(5, TimeSpan.FromSeconds(20), check);
        // Module 1 stops: only module 0 sends images 6..15, collected while they are sent, so each
        // image's arrival is when it was published.
        var sendStart = Stopwatch.GetTimestamp();
        var sending = Task.Factory.StartNew(() => Send(config, new SimOptions { Rate = 20, Frames = 10, StartId = 6, Modules = [0] }),
            TaskCreationOptions.LongRunning);
        harness.Collect(15, TimeSpan.FromSeconds(20), check);
        await sending;
        Assert.Equal(Enumerable.Range(1, 15).Select(i => (ulong)i), harness.Images.Select(i => i.Meta.Id));
        Assert.True(checkedIncomplete.Count >= 9, $"only {checkedIncomplete.Count} incomplete images checked");
        var c = harness.Assembler.Counters.Read();
        Assert.Equal(5, c[AssemblerCounter.ImagesGood]);
        Assert.Equal(10, c[AssemblerCounter.ImagesIncomplete]);
        Assert.Equal(10, c[AssemblerCounter.ModulesMissing]);
        // No stall: module 0 sent image 6 + i at about i / 20 s after the start; each image was
        // published within the timeout (300 ms) plus scheduling slack after its frame.
        for (int i = 0; i < 10; i++)
        {
            double arrival = (harness.Images[5 + i].ArrivalTicks - sendStart) / (double)Stopwatch.Frequency;
            Assert.True(arrival < i / 20.0 + 0.3 + 0.4, $"image {6 + i} published {arrival:F3} s after the start, expected by {i / 20.0 + 0.3:F3} s + slack; all: "
                + string.Join(", ", harness.Images.Skip(5).Select(x => $"{(x.ArrivalTicks - sendStart) / (double)Stopwatch.Frequency:F3}")));
        }
    }

    [Fact]
    public void DiscardIncomplete_DropsImagesWithAMissingModuleAndCountsThem()
    {
        using var env = new TestEnv();
        var config = Config(env, "jungfrau-raw", 2, 16, 1024, 1024, "{\"0\":[0,0,1023,511],\"1\":[0,512,1023,1023]}") with
        {
            AssemblerTimeoutMs = 100,
        };
        using var harness = new AssemblerHarness(env, config, new AssemblerOptions { DiscardIncomplete = true });
        Send(config, new SimOptions { Rate = 50, Frames = 4, StartId = 1 });
        Send(config, new SimOptions { Rate = 50, Frames = 3, StartId = 5, Modules = [0] });
        Send(config, new SimOptions { Rate = 50, Frames = 2, StartId = 8 });
        harness.Collect(6, TimeSpan.FromSeconds(10), quiet: TimeSpan.FromSeconds(2));
        Assert.Equal(new ulong[] { 1, 2, 3, 4, 8, 9 }, harness.Images.Select(i => i.Meta.Id));
        Assert.All(harness.Images, i => Assert.Equal((ushort)ImageStatus.Good, i.Meta.Status));
        Assert.Equal(3, harness.Assembler.Counters.Read()[AssemblerCounter.ImagesDiscarded]);
    }

    [Fact]
    public async Task ImageMetadata_DecodedByPythonSubscriberInAnotherProcess()
    {
        using var env = new TestEnv();
        var config = Config(env, "jungfrau-raw", 2, 16, 1024, 1024, "{\"0\":[0,0,1023,511],\"1\":[0,512,1023,1023]}");
        using var harness = new AssemblerHarness(env, config);
        string script = Path.Combine(env.Dir, "sub.py");
        File.WriteAllText(script, """
            import struct, sys, zmq
            ctx = zmq.Context()
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.SUBSCRIBE, b"")
            s.setsockopt(zmq.RCVTIMEO, 15000)
            s.connect(sys.argv[1])
            print("ready", flush=True)
            while True:
                m = s.recv()
                v, i, h, w, dtype, enc, src, status, u1, u2 = struct.unpack("<QQQQHHHHQQ", m)
                print(len(m), v, i, h, w, dtype, enc, src, status, u1, u2, flush=True)
                if i == int(sys.argv[2]):
                    break
            """);
        const ulong first = 1001; // the checked images; probes come before them
        var psi = new ProcessStartInfo("/usr/bin/python3", [script, config.AssemblerEndpoint, $"{first + 4}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var py = Process.Start(psi)!;
        try
        {
            Assert.Equal("ready", py.StandardOutput.ReadLine());
            // The assembler publishes on a plain PUB, which drops what it sends before the
            // subscription has reached it, and does not say when it has: only an image that arrives
            // shows it. Probe with single images until the subscriber prints one.
            var printed = py.StandardOutput.ReadLineAsync();
            ulong probe = 0;
            do
            {
                Assert.True(++probe <= 20, "no image reached the python subscriber after 20 probes");
                Send(config, new SimOptions { Rate = 0, Frames = 1, StartId = probe });
            }
            while (!await CompletesWithin(printed, TimeSpan.FromSeconds(1)));
            if (await printed == null)
                Assert.Fail("python subscriber: " + py.StandardError.ReadToEnd());
            Send(config, new SimOptions { Rate = 50, Frames = 5, StartId = first });
            var lines = new List<string>();
            while (py.StandardOutput.ReadLine() is { } line)
                if (ulong.Parse(line.Split(' ')[2]) >= first) // not a late probe
                    lines.Add(line);
            Assert.True(py.WaitForExit(10_000));
            Assert.True(py.ExitCode == 0, "python subscriber: " + py.StandardError.ReadToEnd());
            Assert.Equal(5, lines.Count);
            for (int i = 0; i < 5; i++)
                Assert.Equal($"56 1 {first + (ulong)i} 1024 1024 2 0 0 0 0 0", lines[i]);
        }
        finally
        {
            if (!py.HasExited)
                py.Kill();
        }
    }

    private static async Task<bool> CompletesWithin(Task task, TimeSpan timeout)
    {
        try
        {
            await task.WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>A config through TestEnv (rings registered for cleanup); positions as JSON, "" for none.</summary>
    private static DetectorConfig Config(TestEnv env, string type, int modules, int depth, int width, int height, string positions)
    {
        var pos = positions == "" ? null
            : System.Text.Json.JsonSerializer.Deserialize<Dictionary<int, int[]>>(positions);
        return env.Config(type, modules, depth, width, height, pos) with { ImageBufferSlots = 16 };
    }
}
