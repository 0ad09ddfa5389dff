using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using System.Net.Sockets;
using System.Numerics;
using System.Runtime.InteropServices;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Packets;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;
using StdDaq.UdpRecv;

namespace StdDaq.Tests.UdpRecv;

/// <summary>
/// Receiving in place (datagrams aimed at their predicted place in the slot) against receiving
/// with one copy per packet: the same hostile datagram stream goes to two receivers, one in each
/// mode. Every frame of each must hold exactly the pattern of the packets its bitmap says arrived,
/// zeros elsewhere, and both must publish the same frames and counts.
/// </summary>
[Collection("serial")]
public class ReceiveInPlaceTests
{
    private const int Slots = 16;

    public static TheoryData<string, int, int, int> Detectors => new()
    {
        // type, bit depth, width, height (one module / port)
        { "jungfrau-raw", 16, 1024, 512 },   // 128 packets per frame, batch 64: spans 2 frames
        { "eiger", 8, 514, 256 },            // 32 packets per frame: a batch spans 3 frames
    };

    [Theory]
    [MemberData(nameof(Detectors))]
    public async Task InPlaceAndCopy_HostileStream_SameFramesAndCountsAndEveryPixelRight(string type, int depth, int width, int height)
    {
        using var envInPlace = new TestEnv();
        using var envCopy = new TestEnv();
        var positions = new Dictionary<int, int[]> { [0] = [0, 0, width - 1, height - 1] };
        var inPlace = envInPlace.Config(type, 1, depth, width, height, positions, slots: Slots, timeoutMs: 2000);
        var copy = envCopy.Config(type, 1, depth, width, height, positions, slots: Slots, timeoutMs: 2000) with { UdpReceiveInPlace = false };
        var g = inPlace.Module;

        var stream = HostileStream(g, seed: 11, frames: 400, out int malformed);
        using var harness = new ReceiverHarness([(inPlace, 0), (copy, 0)]);
        int checkedFrames = 0;
        var failures = new List<string>();
        var sender = Task.Run(() => Send(stream, inPlace.StartUdpPort, copy.StartUdpPort));
        harness.Collect(int.MaxValue, TimeSpan.FromSeconds(60), (i, n, frame, bitmap) =>
        {
            int bits = 0;
            foreach (byte b in bitmap)
                bits += BitOperations.PopCount(b);
            if (bits != n.NReceivedPackets && failures.Count < 5)
                failures.Add($"receiver {i} frame {n.ImageId}: bitmap has {bits} packets, notice says {n.NReceivedPackets}");
            var expected = new byte[g.FrameBytes];
            PixelPattern.Fill(g, n.ImageId, 0, expected);
            for (int k = 0; k < g.PacketsPerFrame; k++)
                if ((bitmap[k >> 3] & (1 << (k & 7))) == 0)
                    expected.AsSpan(k * g.PayloadBytes, g.PayloadBytesOf(k)).Clear();
            if (!expected.AsSpan().SequenceEqual(frame) && failures.Count < 5)
            {
                int at = expected.AsSpan().CommonPrefixLength(frame);
                failures.Add($"receiver {i} frame {n.ImageId}: bytes differ from packet {at / g.PayloadBytes} on");
            }
            checkedFrames++;
        }, quiet: TimeSpan.FromSeconds(5));
        await sender;

        Assert.Empty(failures);
        var a = harness.Receivers[0].Counters.Read();
        var b = harness.Receivers[1].Counters.Read();
        Assert.Equal(0, a[ReceiverCounter.KernelDrops]);
        Assert.Equal(0, b[ReceiverCounter.KernelDrops]);
        Assert.True(b.With(ReceiverCounter.CopiedPackets, 0) == a.With(ReceiverCounter.CopiedPackets, 0), $"in place: {a.Format(0)}\ncopy:     {b.Format(0)}");
        var received = harness.NoticesOf.Select(l => l.Select(n => (n.ImageId, n.NReceivedPackets, n.NMissingPackets)).ToList()).ToArray();
        Assert.Equal(received[1], received[0]);
        Assert.Equal(malformed, a.Malformed);
        Assert.True(a[ReceiverCounter.FrameIdResets] > 0 && a[ReceiverCounter.DuplicatePackets] > 0 && a[ReceiverCounter.OutOfOrderPackets] > 0 && a[ReceiverCounter.LatePackets] > 0 && a[ReceiverCounter.FramesIncomplete] > 0,
            $"the stream did not exercise every path: {a.Format(0)}");
        // Frames followed at once by one in the same slot (6% of the jumps) are gone before they
        // can be checked; all others must have been checked.
        int published = received[0].Count + received[1].Count;
        Assert.True(checkedFrames >= published * 85 / 100, $"only {checkedFrames} of {published} frames checked (the rest were overwritten)");
        // Copy mode copies every packet; in place copies only what landed elsewhere.
        Assert.Equal(b[ReceiverCounter.Packets], b[ReceiverCounter.CopiedPackets]);
        Assert.True(a[ReceiverCounter.CopiedPackets] < a[ReceiverCounter.Packets] / 2, $"in place copied {a[ReceiverCounter.CopiedPackets]} of {a[ReceiverCounter.Packets]} packets");
    }

    [Fact]
    public async Task InPlace_CleanStream_CopiesAlmostNothingAndLeavesNoSlotOpen()
    {
        using var env = new TestEnv();
        var config = env.Config("jungfrau-raw", 1, 16, 1024, 512, new() { [0] = [0, 0, 1023, 511] }, slots: Slots, timeoutMs: 200);
        var g = config.Module;
        var stream = new List<byte[]>();
        var frames = new Dictionary<ulong, byte[]>();
        for (ulong id = 1; id <= 200; id++)
            for (int k = 0; k < g.PacketsPerFrame; k++)
                stream.Add(Packet(g, id, k, frames));
        using var harness = new ReceiverHarness(config);
        var sender = Task.Run(() => Send(stream, config.StartUdpPort, null));
        harness.Collect(200, TimeSpan.FromSeconds(30));
        await sender;
        var c = harness.Receivers[0].Counters.Read();
        Assert.Equal(200, c[ReceiverCounter.FramesComplete]);
        Assert.Equal(0, c[ReceiverCounter.KernelDrops]);
        // Only the first batch, before any frame is known, and batches after a pause of more
        // than the timeout go to scratch buffers.
        Assert.True(c[ReceiverCounter.CopiedPackets] < c[ReceiverCounter.Packets] / 10, $"copied {c[ReceiverCounter.CopiedPackets]} of {c[ReceiverCounter.Packets]} packets");

        // After the timeout the prepared next slot is given back: every slot is even again, and
        // the one prepared for frame 201 holds frame 201 - 16 as before.
        var ring = harness.Receivers[0].Ring;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (Enumerable.Range(0, ring.SlotCount).Any(s => (ring.ReadSequence(s) & 1) != 0) && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
        Assert.All(Enumerable.Range(0, ring.SlotCount), s => Assert.Equal(0ul, ring.ReadSequence(s) & 1));
        int next = ring.SlotOf(201);
        Assert.Equal(201ul - Slots, ring.Slot(next).ImageId);
        Assert.Equal(SlotStatus.Good, ring.Slot(next).Status);
        var frame = ring.SlotSpan(next)[..(int)g.FrameBytes].ToArray();
        var expected = new byte[g.FrameBytes];
        PixelPattern.Fill(g, 201 - Slots, 0, expected);
        Assert.True(expected.AsSpan().SequenceEqual(frame));
    }

    [Fact]
    public void ReceiveOnce_InOrderBatches_WindowSlidesAndEveryPacketLandsInPlace()
    {
        using var env = new TestEnv();
        var config = env.Config("jungfrau-raw", 1, 16, 1024, 512, new() { [0] = [0, 0, 1023, 511] }, slots: 32, timeoutMs: 2000);
        var g = config.Module;
        var patterns = new Dictionary<ulong, byte[]>();
        var stream = new List<byte[]>();
        for (ulong id = 1; id <= 20; id++)
            for (int k = 0; k < g.PacketsPerFrame; k++)
                stream.Add(Packet(g, id, k, patterns));
        using var receiver = new UdpReceiver(config, 0, NullLogger.Instance, IPAddress.Loopback, publish: false);
        var starts = new List<int>();
        ReceiveInChunks(receiver, stream, chunk: 7, starts);

        var c = receiver.Counters.Read();
        Assert.Equal(20, c[ReceiverCounter.FramesComplete]);
        Assert.Equal(0, c[ReceiverCounter.FramesIncomplete]);
        // Frames 1 to 3 teach the id step (their first chunks go to scratch); from then on every
        // packet lands in place.
        Assert.True(c[ReceiverCounter.CopiedPackets] <= 3 * 7, $"copied {c[ReceiverCounter.CopiedPackets]} of {c[ReceiverCounter.Packets]} packets");
        AssertFrames(receiver.Ring, g, patterns, Enumerable.Range(1, 20).Select(i => (ulong)i), lost: []);
        // The window slid past the batches (only the messages entering it were aimed) and wrapped.
        var batch = receiver.Batch;
        Assert.Contains(starts, s => s > batch.Capacity);
        Assert.True(starts.Zip(starts.Skip(1)).Count(p => p.Second < p.First) >= 2, "the window never wrapped: " + string.Join(",", starts));
    }

    [Fact]
    public void ReceiveOnce_FaultsAmongInOrderBatches_ReaimsAndPlacesEveryPacketRight()
    {
        using var env = new TestEnv();
        var config = env.Config("jungfrau-raw", 1, 16, 1024, 512, new() { [0] = [0, 0, 1023, 511] }, slots: 32, timeoutMs: 2000);
        var g = config.Module;
        var patterns = new Dictionary<ulong, byte[]>();
        var stream = new List<byte[]>();
        var lost = new HashSet<(ulong, int)> { (6, 70), (8, 127), (9, 0), (11, 30) };
        var ids = new ulong[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 }; // 10 skipped
        var rnd = new Random(5);
        foreach (ulong id in ids)
        {
            for (int k = 0; k < g.PacketsPerFrame; k++)
            {
                if (lost.Contains((id, k)))
                    continue;
                if (id == 6 && k == 40)
                    continue; // sent after 41
                stream.Add(Packet(g, id, k, patterns));
                if (id == 6 && k == 41)
                    stream.Add(Packet(g, id, 40, patterns));
                if (id == 7 && k == 90)
                    stream.Add(Packet(g, id, k, patterns)); // duplicate
                if (id == 12 && k == 5)
                    stream.Add(Malformed(g, id, rnd));
            }
        }
        using var receiver = new UdpReceiver(config, 0, NullLogger.Instance, IPAddress.Loopback, publish: false);
        long copiedBeforeLast = ReceiveInChunks(receiver, stream, chunk: 5, starts: null, copiedAfterFrame: 15);

        var c = receiver.Counters.Read();
        Assert.Equal(ids.Length, c[ReceiverCounter.FramesComplete] + c[ReceiverCounter.FramesIncomplete]);
        Assert.Equal(4, c[ReceiverCounter.FramesIncomplete]);
        Assert.Equal(lost.Count, c[ReceiverCounter.MissingPackets]);
        Assert.Equal(1, c[ReceiverCounter.DuplicatePackets]);
        Assert.Equal(1, c[ReceiverCounter.OutOfOrderPackets]);
        Assert.Equal(1, c.Malformed);
        Assert.Equal(0, c[ReceiverCounter.LatePackets]);
        AssertFrames(receiver.Ring, g, patterns, ids, lost);
        // Each fault costs at most a few batches of copies; the whole window is re-aimed after
        // it, so the clean frames after the last fault all land in place again.
        Assert.True(c[ReceiverCounter.CopiedPackets] < 20 * 5, $"copied {c[ReceiverCounter.CopiedPackets]} of {c[ReceiverCounter.Packets]} packets");
        Assert.Equal(copiedBeforeLast, c[ReceiverCounter.CopiedPackets]);
    }

    /// <summary>
    /// Sends <paramref name="stream"/> in chunks and has the receiver take each chunk before the
    /// next is sent (one batch per chunk, unless the kernel splits it); records the window start of
    /// each receive. Returns the copied-packet count as of when frame <paramref name="copiedAfterFrame"/>
    /// was closed (-1 if it was not).
    /// </summary>
    private static long ReceiveInChunks(UdpReceiver receiver, List<byte[]> stream, int chunk, List<int>? starts, ulong copiedAfterFrame = 0)
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var to = new IPEndPoint(IPAddress.Loopback, receiver.Port);
        var ring = receiver.Ring;
        long copied = -1;
        for (int i = 0; i < stream.Count; i += chunk)
        {
            int n = Math.Min(chunk, stream.Count - i);
            for (int j = i; j < i + n; j++)
                udp.SendTo(stream[j], to);
            for (int got = 0; got < n;)
            {
                int r = receiver.ReceiveOnce();
                Assert.True(r > 0, "a sent datagram did not arrive");
                starts?.Add(receiver.Batch.Start);
                got += r;
            }
            int slot = ring.SlotOf(copiedAfterFrame);
            if (copied < 0 && copiedAfterFrame > 0 && ring.Slot(slot).ImageId == copiedAfterFrame && (ring.ReadSequence(slot) & 1) == 0)
                copied = receiver.Counters.Read()[ReceiverCounter.CopiedPackets];
        }
        return copied;
    }

    /// <summary>Each frame in the ring holds the pattern, with its lost packets zeroed.</summary>
    private static void AssertFrames(ShmRing ring, ModuleGeometry g, Dictionary<ulong, byte[]> patterns, IEnumerable<ulong> ids, HashSet<(ulong, int)> lost)
    {
        foreach (ulong id in ids)
        {
            int slot = ring.SlotOf(id);
            Assert.Equal(id, ring.Slot(slot).ImageId);
            Assert.Equal(0ul, ring.ReadSequence(slot) & 1);
            var expected = patterns[id].ToArray();
            for (int k = 0; k < g.PacketsPerFrame; k++)
                if (lost.Contains((id, k)))
                    expected.AsSpan(k * g.PayloadBytes, g.PayloadBytesOf(k)).Clear();
            var frame = ring.SlotSpan(slot)[..(int)g.FrameBytes];
            Assert.True(frame.SequenceEqual(expected), $"frame {id}: bytes differ from packet {frame.CommonPrefixLength(expected) / g.PayloadBytes} on");
        }
    }

    /// <summary>
    /// Frames with lost, duplicated, swapped, late and malformed datagrams, id skips, ids that
    /// collide in the ring and id resets. Returns the datagrams; <paramref name="malformed"/> is how
    /// many of them are malformed.
    /// </summary>
    private static List<byte[]> HostileStream(ModuleGeometry g, int seed, int frames, out int malformed)
    {
        var rnd = new Random(seed);
        var list = new List<byte[]>();
        var patterns = new Dictionary<ulong, byte[]>();
        malformed = 0;
        ulong id = 1;
        for (int f = 0; f < frames; f++)
        {
            int kind = rnd.Next(100);
            if (f > 0)
            {
                id = kind switch
                {
                    < 80 => id + 1,
                    < 88 => id + 2,                       // a frame skipped
                    < 94 => id + Slots,                   // same slot as the last frame
                    _ => id > 3 * Slots ? (ulong)rnd.Next(1, 5) : id + 1, // reset
                };
            }
            for (int k = 0; k < g.PacketsPerFrame; k++)
            {
                int r = rnd.Next(1000);
                if (r < 20)
                    continue; // lost
                list.Add(Packet(g, id, k, patterns));
                if (r < 35)
                    list.Add(Packet(g, id, k, patterns)); // duplicate
                else if (r < 45 && id > 2)
                    list.Add(Packet(g, id - 2, rnd.Next(g.PacketsPerFrame), patterns)); // late or duplicate
                else if (r < 60)
                {
                    list.Add(Malformed(g, id, rnd));
                    malformed++;
                }
            }
        }
        // Adjacent swaps, also across frames.
        for (int i = 0; i + 1 < list.Count; i++)
        {
            if (rnd.Next(100) < 3)
            {
                (list[i], list[i + 1]) = (list[i + 1], list[i]);
                i++;
            }
        }
        return list;
    }

    /// <summary>Packet k of image id with the pattern; <paramref name="frames"/> caches the stream's pattern frames.</summary>
    private static byte[] Packet(ModuleGeometry g, ulong id, int k, Dictionary<ulong, byte[]> frames)
    {
        if (!frames.TryGetValue(id, out var frame))
        {
            frame = new byte[g.FrameBytes];
            PixelPattern.Fill(g, id, 0, frame);
            frames[id] = frame;
        }
        var d = new byte[g.HeaderBytes + g.PayloadBytesOf(k)];
        Header(g, id, (uint)k).CopyTo(d, 0);
        frame.AsSpan(k * g.PayloadBytes, g.PayloadBytesOf(k)).CopyTo(d.AsSpan(g.HeaderBytes));
        return d;
    }

    private static byte[] Header(ModuleGeometry g, ulong id, uint k)
    {
        var h = new SlsHeader(id, k, 0, 0, 0, 0, 0, 0, g.SlsDetectorType);
        var b = new byte[SlsHeader.Size];
        MemoryMarshal.Write(b, in h);
        return b;
    }

    /// <summary>A datagram with a plausible header that must be rejected; its bytes are not the pattern.</summary>
    private static byte[] Malformed(ModuleGeometry g, ulong id, Random rnd)
    {
        int k = rnd.Next(g.PacketsPerFrame);
        byte[] d = rnd.Next(4) switch
        {
            0 => new byte[g.PacketBytes - 1 - rnd.Next(g.PayloadBytes / 2)],   // truncated
            1 => new byte[g.PacketBytes + 1 + rnd.Next(32)],                    // too long, but fits the slack
            2 => new byte[g.PacketBytes + 100 + rnd.Next(2000)],                // too long for the buffers
            _ => new byte[g.PacketBytes],                                       // wrong detector type
        };
        rnd.NextBytes(d);
        byte type = d.Length == g.PacketBytes ? (byte)(g.SlsDetectorType == 1 ? 3 : 1) : g.SlsDetectorType;
        var h = new SlsHeader(id, (uint)k, 0, 0, 0, 0, 0, 0, type);
        MemoryMarshal.Write(d, in h);
        return d;
    }

    private static void Send(List<byte[]> stream, int portA, int? portB)
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var a = new IPEndPoint(IPAddress.Loopback, portA);
        var b = portB is { } p ? new IPEndPoint(IPAddress.Loopback, p) : null;
        for (int i = 0; i < stream.Count; i++)
        {
            udp.SendTo(stream[i], a);
            if (b != null)
                udp.SendTo(stream[i], b);
            if (i % 48 == 47)
                Thread.Sleep(1); // stay within what the receivers and the checker take on 2 cores
        }
    }
}
