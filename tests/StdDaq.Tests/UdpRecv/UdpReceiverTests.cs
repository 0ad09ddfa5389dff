using StdDaq.UdpRecv;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Packets;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.UdpRecv;

[Collection("serial")]
public class UdpReceiverTests
{
    private static SimReport Send(DetectorConfig config, SimOptions options)
    {
        using var sim = new DetectorSimulator(config, options);
        return sim.Run(CancellationToken.None);
    }

    public static TheoryData<string, int, int, int, int> Detectors => new()
    {
        { "jungfrau-raw", 2, 16, 1024, 1024 },
        { "eiger", 2, 8, 1030, 256 },
        { "eiger", 2, 16, 1030, 256 },
        { "eiger", 2, 32, 1030, 256 },
        { "gigafrost", 8, 16, 480, 480 },
    };

    [Theory]
    [MemberData(nameof(Detectors))]
    public async Task Receive_InjectedFaults_CountsEqualTheSimulatorsAndPixelsEqualThePattern(string type, int modules, int depth, int width, int height)
    {
        using var env = new TestEnv();
        Dictionary<int, int[]>? positions = type switch
        {
            "jungfrau-raw" => new() { [0] = [0, 1023, 1023, 512], [1] = [0, 511, 1023, 0] },
            "eiger" => new() { [0] = [0, 0, 513, 255], [1] = [516, 0, 1029, 255] },
            _ => null,
        };
        // Few slots and many frames: slots are reused, so a lost packet left unfilled would show
        // an older frame's pixels instead of zeros.
        var config = env.Config(type, modules, depth, width, height, positions, slots: 16);
        const int frames = 60;
        using var harness = new ReceiverHarness(config);
        var sending = Task.Run(() => Send(config, new SimOptions
        {
            Rate = 100, Frames = frames, Loss = 0.01, Duplicate = 0.01, Reorder = 0.01, Truncate = 0.005, Seed = 42,
        }));
        var g = config.Module;
        int checkedFrames = 0;
        var pending = new List<(ModuleFrameNotice Notice, byte[] Frame)>();
        // Frames are checked once the simulator says which packets it dropped; until then they
        // are copied (under the sequence lock) while the slot still holds them.
        harness.Collect(frames * modules, TimeSpan.FromSeconds(30), (n, frame) => pending.Add((n, frame.ToArray())));
        var report = await sending;
        Assert.True(report.Lost.Count > 0 && report.Duplicated.Count > 0 && report.Reordered.Count > 0 && report.Truncated.Count > 0,
            "the faults were not all exercised: " + report.Summary());
        var lost = report.Lost.Concat(report.Truncated).ToLookup(p => (p.Module, p.ImageId), p => p.Packet);
        foreach (var (n, frame) in pending)
        {
            var expected = ReceiverHarness.Expected(g, n.ImageId, n.ModuleId, lost[(n.ModuleId, n.ImageId)]);
            Assert.True(expected.AsSpan().SequenceEqual(frame), $"module {n.ModuleId} image {n.ImageId}: pixels differ from the pattern");
            Assert.Equal((ulong)lost[(n.ModuleId, n.ImageId)].Count(), n.NMissingPackets);
            checkedFrames++;
        }
        var t = harness.Totals();
        Assert.Equal(0, t[ReceiverCounter.KernelDrops]);
        Assert.Equal(frames * modules, harness.Notices.Count);
        Assert.Equal(frames * modules, t[ReceiverCounter.FramesComplete] + t[ReceiverCounter.FramesIncomplete]);
        Assert.Equal(report.Lost.Count + report.Truncated.Count, t[ReceiverCounter.MissingPackets]);
        Assert.Equal(report.Duplicated.Count, t[ReceiverCounter.DuplicatePackets]);
        Assert.Equal(report.Reordered.Count, t[ReceiverCounter.OutOfOrderPackets]);
        Assert.Equal(report.Truncated.Count, t[ReceiverCounter.MalformedSize]);
        Assert.Equal(report.Packets - report.Duplicated.Count, t[ReceiverCounter.Packets]);
        Assert.Equal(0, t[ReceiverCounter.LatePackets]);
        Assert.True(checkedFrames >= frames * modules * 9 / 10, $"only {checkedFrames} frames checked, {harness.Overrun} overrun");
        // Notices come in image-id order per module.
        foreach (var byModule in harness.Notices.GroupBy(n => n.ModuleId))
            Assert.Equal(Enumerable.Range(1, frames).Select(i => (ulong)i), byModule.Select(n => n.ImageId));
    }

    [Fact]
    public void Replay_RealEigerCaptures_FiveCompleteFramesPerPortEqualToTheCaptures()
    {
        using var env = new TestEnv();
        string src = Path.Combine(TestEnv.SharedData, "eiger-500k-32bit");
        var baseConfig = DetectorConfigLoader.Load(Path.Combine(src, "detector.json"));
        var config = baseConfig with { DetectorName = env.Name, StartUdpPort = TestEnv.FreeUdpPorts(4), FrameBufferSlots = 16, UdpFrameTimeoutMs = 50 };
        for (int m = 0; m < 4; m++)
            env.Ring(m.ToString());
        // Copy the captures under names that map to this test's ports (file i -> start port + i).
        string dir = Path.Combine(env.Dir, "captures");
        Directory.CreateDirectory(dir);
        for (int i = 0; i < 4; i++)
            File.Copy(Path.Combine(src, $"{50020 + i}.dat"), Path.Combine(dir, $"port{i}.dat"));
        using var harness = new ReceiverHarness(config);
        var report = new CaptureReplay(config, new SimOptions { Replay = dir, Rate = 50 }).Run(CancellationToken.None);
        Assert.Equal(20, report.Frames);
        var frames = new Dictionary<(int, ulong), byte[]>();
        harness.Collect(20, TimeSpan.FromSeconds(20), (n, frame) => frames[(n.ModuleId, n.ImageId)] = frame.ToArray());
        var t = harness.Totals();
        Assert.Equal(20, t[ReceiverCounter.FramesComplete]);
        Assert.Equal(0, t[ReceiverCounter.FramesIncomplete] + t.Malformed + t[ReceiverCounter.KernelDrops]);
        Assert.Equal(20, frames.Count);
        for (int m = 0; m < 4; m++)
        {
            byte[] capture = File.ReadAllBytes(Path.Combine(src, $"{50020 + m}.dat"));
            for (int f = 0; f < 5; f++)
            {
                ulong id = 29512UL + (ulong)f;
                var frame = frames[(m, id)];
                for (int k = 0; k < 128; k++)
                {
                    int record = (f * 128 + k) * (8 + 4144);
                    var payload = capture.AsSpan(record + 8 + 48, 4096);
                    Assert.True(payload.SequenceEqual(frame.AsSpan(k * 4096, 4096)), $"port {m} frame {id} packet {k} differs");
                }
            }
        }
    }

    [Fact]
    public void Receive_100kMalformedDatagrams_AllCountedAndValidFramesAroundThemIntact()
    {
        using var env = new TestEnv();
        var config = env.Config("jungfrau-raw", 1, 16, 1024, 512, new() { [0] = [0, 0, 1023, 511] }, slots: 64);
        using var harness = new ReceiverHarness(config);
        Send(config, new SimOptions { Rate = 200, Frames = 5, StartId = 1 });
        harness.Collect(5, TimeSpan.FromSeconds(10));

        const int garbage = 100_000;
        var rnd = new Random(7);
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var to = new IPEndPoint(IPAddress.Loopback, config.StartUdpPort);
        var buf = new byte[9000];
        long expectSize = 0, expectNumber = 0, expectProtocol = 0;
        for (int i = 0; i < garbage; i++)
        {
            int kind = i % 5;
            int len = 8240;
            rnd.NextBytes(buf);
            switch (kind)
            {
                case 0: // random bytes, any length but the right one
                    len = rnd.Next(0, 9000);
                    if (len == 8240) len = 8239;
                    expectSize++;
                    break;
                case 1: // oversized
                    len = 8240 + 1 + rnd.Next(0, 700);
                    expectSize++;
                    break;
                case 2: // right size, packet number out of range
                    WriteHeader(buf, frame: 3, packet: 128 + (uint)rnd.Next(0, 1 << 20), type: 3);
                    expectNumber++;
                    break;
                case 3: // right size, another detector's packet
                    WriteHeader(buf, frame: 3, packet: 5, type: 1);
                    expectProtocol++;
                    break;
                default: // shorter than a header
                    len = rnd.Next(0, 48);
                    expectSize++;
                    break;
            }
            udp.SendTo(buf.AsSpan(0, len), SocketFlags.None, to);
            if (i % 2000 == 1999)
                Thread.Sleep(5); // stay within what one core can take on loopback
        }
        harness.Notices.Clear();
        Send(config, new SimOptions { Rate = 200, Frames = 5, StartId = 6 });
        var g = config.Module;
        int good = 0;
        harness.Collect(5, TimeSpan.FromSeconds(10));
        var t = harness.Totals();
        Assert.Equal(0, t[ReceiverCounter.KernelDrops]);
        Assert.Equal(expectSize, t[ReceiverCounter.MalformedSize]);
        Assert.Equal(expectNumber, t[ReceiverCounter.MalformedPacketNumber]);
        Assert.Equal(expectProtocol, t[ReceiverCounter.MalformedProtocol]);
        Assert.Equal(garbage, t.Malformed);
        Assert.Equal(10, t[ReceiverCounter.FramesComplete]);
        Assert.Equal(0, t[ReceiverCounter.FramesIncomplete]);
        var ring = harness.Receivers[0].Ring;
        for (ulong id = 1; id <= 10; id++)
        {
            int slot = ring.SlotOf(id);
            ulong seq = ring.ReadSequence(slot);
            var frame = ring.SlotSpan(slot)[..(int)g.FrameBytes].ToArray();
            Assert.True(ring.Validate(slot, seq));
            Assert.Equal(id, ring.Slot(slot).ImageId);
            Assert.True(ReceiverHarness.Expected(g, id, 0, []).AsSpan().SequenceEqual(frame), $"frame {id} corrupted");
            good++;
        }
        Assert.Equal(10, good);
    }

    private static void WriteHeader(byte[] buf, ulong frame, uint packet, byte type)
    {
        var h = new SlsHeader(frame, packet, 0, 0, 0, 0, 0, 0, type);
        MemoryMarshal.Write(buf, in h);
    }
}
