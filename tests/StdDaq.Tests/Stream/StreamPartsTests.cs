using System.Runtime.InteropServices;
using StdDaq.Shared.Config;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.StreamRecv;
using StdDaq.StreamSend;
using StdDaq.Tests.Support;
using static StdDaq.Tests.Stream.StreamReplicationTests;

namespace StdDaq.Tests.Stream;

/// <summary>
/// Replication in parts (<c>--part i/N</c>) over loopback TCP, all in-process: N part senders and N
/// part receivers writing into one replica ImageBuffer, part 0's publishing; the replica against
/// the source, and a part that never comes (sender stopped, receiver missing) counted exactly.
/// </summary>
public class StreamPartsTests
{
    /// <summary>N part senders and N part receivers (those of <paramref name="receivers"/>; part 0 last, subscribed to).</summary>
    private sealed class PartReplication : IDisposable
    {
        private readonly List<IDisposable> _owned = [];

        public Running<StreamSender>?[] Senders { get; }
        public Running<StreamReceiver>?[] Receivers { get; }
        public string[] Addresses { get; }
        public ZmqSocket Subscriber { get; }
        public int N { get; }

        public PartReplication(StreamSource source, DetectorConfig replica, int n, int[]? receivers = null,
            int partTimeoutMs = 5000, Func<int, int>? sendTimeoutMs = null)
        {
            N = n;
            Senders = new Running<StreamSender>?[n];
            Receivers = new Running<StreamReceiver>?[n];
            Addresses = Enumerable.Range(0, n).Select(_ => $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}").ToArray();
            try
            {
                for (int i = 0; i < n; i++)
                    StartSender(i, sendTimeoutMs?.Invoke(i) ?? 5000);
                var which = receivers ?? Enumerable.Range(0, n).ToArray();
                foreach (int i in which.Where(i => i > 0))
                    StartReceiver(replica, i, partTimeoutMs);
                var (sub, zero) = Subscribed(replica, () => StreamReplicationTests.StartReceiver(replica, Addresses[0], Options(0, partTimeoutMs)));
                Subscriber = sub;
                Receivers[0] = zero;
                foreach (int i in which)
                    WaitConnected(Receivers[i]!);
            }
            catch
            {
                Dispose();
                throw;
            }

            void StartSender(int i, int timeoutMs) =>
                Senders[i] = StreamReplicationTests.StartSender(source, Addresses[i],
                    new StreamSendOptions { SendTimeoutMs = timeoutMs, Part = new ImagePart(i, n) });
        }

        private StreamRecvOptions Options(int i, int partTimeoutMs) => new() { Part = new ImagePart(i, N), PartTimeoutMs = partTimeoutMs };

        public void StartReceiver(DetectorConfig replica, int i, int partTimeoutMs = 5000) =>
            Receivers[i] = StreamReplicationTests.StartReceiver(replica, Addresses[i], Options(i, partTimeoutMs));

        public void RestartSender(StreamSource source, int i)
        {
            Senders[i]?.Dispose();
            Senders[i] = StreamReplicationTests.StartSender(source, Addresses[i],
                new StreamSendOptions { SendTimeoutMs = 5000, Part = new ImagePart(i, N) });
        }

        public StreamReceiver Publisher => Receivers[0]!.Service;

        public void Dispose()
        {
            foreach (var r in Receivers.Reverse())
                r?.Dispose();
            Subscriber?.Dispose();
            foreach (var s in Senders)
                s?.Dispose();
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void Parts_TwoOrFour_EveryPixelHeaderAndMetadataEqualTheSourceInOrder(int n)
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        using var parts = new PartReplication(source, replica, n);

        source.Images(1, 12);
        var metas = Take(parts.Subscriber, 12);
        NoMore(parts.Subscriber);

        Assert.Equal(Enumerable.Range(1, 12).Select(i => (ulong)i), metas.Select(IdOf));
        foreach (var m in metas)
            Assert.Equal(source.Published[IdOf(m)], m);
        for (ulong id = 1; id <= 12; id++)
            AssertReplicated(source, parts.Publisher.Ring, id);
        long image = source.Config.ImageBytes;
        Assert.Equal(12 * image, parts.Senders.Sum(s => s!.Service.Counters[StreamSendCounter.BytesSent]));
        Assert.Equal(12 * image, parts.Receivers.Sum(r => r!.Service.Counters[StreamRecvCounter.BytesReceived]));
        for (int i = 0; i < n; i++)
        {
            var sent = parts.Senders[i]!.Service.Counters.Read();
            Assert.Equal((12, 12, 0), (sent[StreamSendCounter.ImagesReceived], sent[StreamSendCounter.ImagesSent], sent[StreamSendCounter.ImagesDroppedHwm]));
            Assert.Equal(new ImagePart(i, n).RangeOf(image).Length * 12, sent[StreamSendCounter.BytesSent]);
            var got = parts.Receivers[i]!.Service.Counters.Read();
            Assert.Equal((12, i == 0 ? 12 : 0, 0, 0, 0, 0), (got[StreamRecvCounter.PartsReceived], got[StreamRecvCounter.ImagesPublished],
                got[StreamRecvCounter.ImagesSkipped], got[StreamRecvCounter.MessagesLost], got[StreamRecvCounter.PartsLate],
                got[StreamRecvCounter.ImagesIncomplete]));
        }
    }

    [Fact]
    public void Parts_OneSenderStoppedThenBack_ItsImagesNeverPublishedAndCountedExactly()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        using var parts = new PartReplication(source, replica, 4, partTimeoutMs: 300);

        source.Images(1, 4);
        Assert.Equal(new ulong[] { 1, 2, 3, 4 }, Take(parts.Subscriber, 4).Select(IdOf));
        parts.Senders[2]!.Dispose();
        parts.Senders[2] = null;
        source.Images(5, 8);
        StreamSource.WaitUntil(() => parts.Publisher.Counters[StreamRecvCounter.ImagesIncomplete] == 4, "images 5..8 given up");
        NoMore(parts.Subscriber);
        parts.RestartSender(source, 2);
        WaitConnected(parts.Receivers[2]!, 2);
        source.Images(9, 12);

        Assert.Equal(new ulong[] { 9, 10, 11, 12 }, Take(parts.Subscriber, 4).Select(IdOf));
        NoMore(parts.Subscriber);
        foreach (ulong id in new ulong[] { 1, 2, 3, 4, 9, 10, 11, 12 })
            AssertReplicated(source, parts.Publisher.Ring, id);
        for (ulong id = 5; id <= 8; id++)
            Assert.False(parts.Publisher.Ring.TryBeginRead(id, out _, out _), $"image {id} lacks part 2 but its slot reads as whole");
        var p = parts.Publisher.Counters.Read();
        Assert.Equal((8, 4, 4), (p[StreamRecvCounter.ImagesPublished], p[StreamRecvCounter.ImagesIncomplete], p[StreamRecvCounter.PartsMissing]));
        Assert.Equal(new long[] { 0, 0, 4, 0 }, parts.Publisher.Parts!.MissingByPart);
        var two = parts.Receivers[2]!.Service.Counters.Read();
        Assert.Equal((8, 4, 1, 0), (two[StreamRecvCounter.PartsReceived], two[StreamRecvCounter.ImagesSkipped], two[StreamRecvCounter.SenderRestarts],
            two[StreamRecvCounter.PartsLate]));
        foreach (int i in new[] { 1, 3 })
            Assert.Equal(12, parts.Receivers[i]!.Service.Counters[StreamRecvCounter.PartsReceived]);
    }

    [Fact]
    public void Parts_OneReceiverMissing_NoImagePublishedUntilItComes_CountedExactly()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        // Part 2's sender has nobody to send to: a short send timeout, then it drops without waiting.
        using var parts = new PartReplication(source, replica, 4, receivers: [0, 1, 3], partTimeoutMs: 300, sendTimeoutMs: i => i == 2 ? 200 : 5000);

        source.Images(1, 6);
        StreamSource.WaitUntil(() => parts.Publisher.Counters[StreamRecvCounter.ImagesIncomplete] == 6, "images 1..6 given up");
        StreamSource.WaitUntil(() => parts.Senders[2]!.Service.Counters[StreamSendCounter.ImagesDroppedHwm] == 6, "part 2 of images 1..6 dropped");
        NoMore(parts.Subscriber);
        for (ulong id = 1; id <= 6; id++)
            Assert.False(parts.Publisher.Ring.TryBeginRead(id, out _, out _), $"image {id} lacks part 2 but its slot reads as whole");

        parts.StartReceiver(replica, 2);
        WaitConnected(parts.Receivers[2]!);
        source.Images(7, 10);

        Assert.Equal(new ulong[] { 7, 8, 9, 10 }, Take(parts.Subscriber, 4).Select(IdOf));
        for (ulong id = 7; id <= 10; id++)
            AssertReplicated(source, parts.Publisher.Ring, id);
        var p = parts.Publisher.Counters.Read();
        Assert.Equal((4, 6, 6), (p[StreamRecvCounter.ImagesPublished], p[StreamRecvCounter.ImagesIncomplete], p[StreamRecvCounter.PartsMissing]));
        Assert.Equal(new long[] { 0, 0, 6, 0 }, parts.Publisher.Parts!.MissingByPart);
        Assert.Equal(4, parts.Receivers[2]!.Service.Counters[StreamRecvCounter.PartsReceived]);
        Assert.Equal((4, 6), (parts.Senders[2]!.Service.Counters[StreamSendCounter.ImagesSent],
            parts.Senders[2]!.Service.Counters[StreamSendCounter.ImagesDroppedHwm]));
    }

    [Fact]
    public void Parts_OfTwoSourceImagesWithOneId_NeverPublishedAsOne_Counted()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        var addresses = new[] { $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}", $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}" };
        var bound = addresses.Select(a => ZmqSocket.BoundPusher(a, 100, 5000, Zmq.EVENT_HANDSHAKE_SUCCEEDED)).ToArray();
        try
        {
            var parts = new[] { new ImagePart(0, 2), new ImagePart(1, 2) };
            using var one = StreamReplicationTests.StartReceiver(replica, addresses[1], new StreamRecvOptions { Part = parts[1], PartTimeoutMs = 5000 });
            var (sub, zero) = Subscribed(replica, () =>
                StreamReplicationTests.StartReceiver(replica, addresses[0], new StreamRecvOptions { Part = parts[0], PartTimeoutMs = 5000 }));
            using (sub)
            using (zero)
            {
                WaitConnected(zero);
                WaitConnected(one);
                // Image 1: part 0 of one source image, part 1 of another with the same id (another frame index).
                SendCrafted(bound[0].Socket, 0x5eed, 0, 1, part: parts[0], frameIndex: 10);
                StreamSource.WaitUntil(() => zero.Service.Counters[StreamRecvCounter.PartsReceived] == 1, "part 0 of image 1 in");
                SendCrafted(bound[1].Socket, 0x5eed, 0, 1, part: parts[1], frameIndex: 11);
                SendCrafted(bound[0].Socket, 0x5eed, 1, 2, part: parts[0], frameIndex: 20);
                SendCrafted(bound[1].Socket, 0x5eed, 1, 2, part: parts[1], frameIndex: 20);

                Assert.Equal(new ulong[] { 2 }, Take(sub, 1).Select(IdOf));
                NoMore(sub);
                var ring = zero.Service.Ring;
                Assert.False(ring.TryBeginRead(1, out _, out _));
                Assert.True(ring.TryBeginRead(2, out int slot, out _));
                Assert.Equal(20UL, ring.Slot(slot).FrameIndex);
                Assert.Equal(StreamSource.Pixel(2, 1024 * 512 - 1), MemoryMarshal.Cast<byte, ushort>(ring.SlotSpan(slot))[1024 * 512 - 1]);
                var p = zero.Service.Counters.Read();
                Assert.Equal((1, 1, 1), (p[StreamRecvCounter.ImagesPublished], p[StreamRecvCounter.ImagesIncomplete], p[StreamRecvCounter.PartsMissing]));
                Assert.Equal(new long[] { 0, 1 }, zero.Service.Parts!.MissingByPart);
                var o = one.Service.Counters.Read();
                Assert.Equal((1, 1), (o[StreamRecvCounter.PartsReceived], o[StreamRecvCounter.PartsMismatched]));
            }
        }
        finally
        {
            foreach (var (socket, monitor) in bound)
            {
                monitor.Dispose();
                socket.Dispose();
            }
        }
    }

    [Fact]
    public void PartReceiver_SamePartTwice_SecondRefused()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        var part = new ImagePart(1, 2);
        using var first = new StreamReceiver(replica, address, new StreamRecvOptions { Part = part }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var e = Assert.Throws<RoleBusyException>(() =>
            new StreamReceiver(replica, address, new StreamRecvOptions { Part = part }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance));
        Assert.Contains($"StdStreamRecv of detector '{replica.DetectorName}' for part 1/2", e.Message);
        // Part 1 is not in the assembler's place: part 0's receiver (the publisher) can start beside it.
        using var zero = new StreamReceiver(replica, address, new StreamRecvOptions { Part = new ImagePart(0, 2) },
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        Assert.NotNull(zero.Parts);
        Assert.Null(first.Parts);
    }

    [Theory]
    [InlineData("StdStreamSend", "--images", "0/2", "--part", "1/2", "give --images i/N (whole images, a share of them) or --part i/N")]
    [InlineData("StdStreamRecv", "--part", "1/2", "--images", "0/2", "give --images i/N (whole images, a share of them) or --part i/N")]
    [InlineData("StdStreamSend", "--part", "4/4", null, null, "--part '4/4' is not i/N with 0 <= i < N <= 64")]
    [InlineData("StdStreamRecv", "--part", "0/65", null, null, "--part '0/65' is not i/N with 0 <= i < N <= 64")]
    [InlineData("StdStreamRecv", "--part", "x", null, null, "--part 'x' is not i/N with 0 <= i < N <= 64")]
    public void Programs_BadPartOptions_OneLineUsageErrorExit2(string program, string o1, string v1, string? o2, string? v2, string message)
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        string[] args = o2 == null
            ? [source.ConfigPath, "tcp://127.0.0.1:1", o1, v1]
            : [source.ConfigPath, "tcp://127.0.0.1:1", o1, v1, o2, v2!];
        var r = Programs.Run(program, args);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.Equal("", r.Stdout.Trim());
    }

    [Fact]
    public void SlotParts_LockWordHeldByALiveProcessForever_TakenOverAndTheClaimGoesOn()
    {
        using var env = new TestEnv();
        using var ring = ShmRing.CreateOrAttach(env.Ring("parts"), RingKind.ImageBuffer, 4096, 4);
        // pid 1 is alive and never lets go (or the word is left from another program's layout).
        ring.Slot(1).Parts.Lock = 1;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(SlotParts.ClaimResult.Open, SlotParts.Claim(ring, 1, 5, 0x77, new ImagePart(1, 2)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the claim took {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(0, ring.Slot(1).Parts.Lock);
        Assert.Equal((5UL, SlotPartsPhase.Open), (ring.Slot(1).Parts.ImageId, ring.Slot(1).Parts.Phase));
        Assert.Equal(1UL, ring.ReadSequence(1) & 1);
    }

    [Theory]
    [InlineData(2 * 1024 * 1024L, 4)]
    [InlineData(1_000_003L, 4)]
    [InlineData(1_000_003L, 3)]
    [InlineData(10_000L, 4)]
    [InlineData(1L, 2)]
    [InlineData(0L, 4)]
    [InlineData(5_000_000L, 64)]
    public void ImagePart_Ranges_ContiguousPageAlignedAndCoverThePayloadOnce(long payload, int n)
    {
        long at = 0;
        for (int i = 0; i < n; i++)
        {
            var (start, length) = new ImagePart(i, n).RangeOf(payload);
            Assert.Equal(at, start);
            Assert.True(length >= 0);
            Assert.True(start % ImagePart.Alignment == 0 || length == 0, $"part {i}/{n} of {payload} starts at {start}");
            at += length;
        }
        Assert.Equal(payload, at);
        // As even as whole pages allow: no two parts differ by more than a page.
        var lengths = Enumerable.Range(0, n).Select(i => new ImagePart(i, n).RangeOf(payload).Length).ToList();
        Assert.True(lengths.Max() - lengths.Min() <= ImagePart.Alignment, $"parts of {payload} bytes: {string.Join(", ", lengths)}");
    }

    [Fact]
    public void StreamHeader_Part_FlaggedWithItsIndexAndCount()
    {
        var header = new StreamHeader(1, 2, ImageShare.All, 3, 4, default, new ImagePart(2, 4));
        var bytes = new byte[StreamHeader.Size];
        header.Write(bytes);
        var read = StreamHeader.Read(bytes);
        Assert.True(read.IsPart);
        Assert.True(read.IsPartOf(new ImagePart(2, 4)));
        Assert.False(read.IsPartOf(new ImagePart(1, 4)));
        Assert.Equal((StreamHeader.FlagChecksum | StreamHeader.FlagPart, 2u, 4u), (read.Flags, read.ShareIndex, read.ShareCount));
        Assert.False(new StreamHeader(1, 2, new ImageShare(2, 4), 3, 4, default).IsPart);
    }
}
