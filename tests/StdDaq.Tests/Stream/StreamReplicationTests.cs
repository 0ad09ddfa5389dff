using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Shared.Config;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.StreamRecv;
using StdDaq.StreamSend;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Stream;

/// <summary>
/// StdStreamSend → TCP on loopback → StdStreamRecv, both in-process, between a source ImageBuffer
/// the test fills and a replica ImageBuffer of the same geometry under another detector name: the
/// replica's pixels, slot headers and ImageMetadata against the source's, and every fault with its
/// exact count (overwritten slots, a bad checksum, shares, a sender and a receiver restart).
/// </summary>
public class StreamReplicationTests
{
    internal static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    /// <summary>A service running on its own thread until <see cref="Dispose"/> stops it and disposes it.</summary>
    internal sealed class Running<T>(T service, Func<T, CancellationToken, Task> run) : IDisposable where T : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private Task? _task;

        public T Service { get; } = service;

        public Running<T> Start()
        {
            _task = run(Service, _stop.Token);
            return this;
        }

        public void Dispose()
        {
            _stop.Cancel();
            Assert.True(_task?.Wait(Timeout) ?? true, $"{typeof(T).Name} did not stop");
            Service.Dispose();
            _stop.Dispose();
        }
    }

    internal static Running<StreamSender> StartSender(StreamSource source, string address, StreamSendOptions? options = null)
    {
        // A sender stopped in this process a moment ago may still hold the port: libzmq closes its
        // listener on its own thread (a process that exits releases it at once).
        var deadline = DateTime.UtcNow + Timeout;
        StreamSender made;
        while (true)
        {
            try
            {
                made = new StreamSender(source.Config, address, options ?? new StreamSendOptions { SendTimeoutMs = 5000 }, NullLogger.Instance);
                break;
            }
            catch (IOException e) when (e.Message.Contains("Address already in use") && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(10);
            }
        }
        var sender = new Running<StreamSender>(made, (s, ct) => s.RunAsync(ct)).Start();
        try
        {
            source.WaitForSubscriber(Timeout);
        }
        catch
        {
            sender.Dispose();
            throw;
        }
        return sender;
    }

    internal static Running<StreamReceiver> StartReceiver(DetectorConfig replica, string address, StreamRecvOptions? options = null) =>
        new Running<StreamReceiver>(new StreamReceiver(replica, address, options ?? new StreamRecvOptions(), NullLogger.Instance),
            (r, ct) => r.RunAsync(ct)).Start();

    /// <summary>A subscriber to the replica's metadata endpoint, connected once <paramref name="start"/> has bound it.</summary>
    internal static (ZmqSocket Subscriber, T Started) Subscribed<T>(DetectorConfig replica, Func<T> start)
    {
        using var connections = new SubscriberConnections();
        var sub = connections.Subscribe(replica.AssemblerEndpoint, receiveTimeoutMs: 100);
        var started = start();
        connections.WaitAll(Timeout);
        return (sub, started);
    }

    internal static void WaitConnected(Running<StreamReceiver> receiver, long connections = 1) =>
        StreamSource.WaitUntil(() => receiver.Service.Counters.Read()[StreamRecvCounter.SenderConnections] >= connections,
            $"{connections} connection(s) of the receiver to its sender");

    /// <summary>The next <paramref name="n"/> ImageMetadata messages the replica publishes (bounded in time).</summary>
    internal static List<byte[]> Take(ZmqSocket sub, int n)
    {
        var list = new List<byte[]>();
        var buffer = new byte[ImageMetadata.Size + 1];
        var deadline = DateTime.UtcNow + Timeout;
        while (list.Count < n && DateTime.UtcNow < deadline)
        {
            int len = sub.Receive(buffer);
            if (len >= 0)
                list.Add(buffer.AsSpan(0, len).ToArray());
        }
        Assert.True(list.Count == n, $"the replica published {list.Count} of {n} ImageMetadata messages");
        return list;
    }

    /// <summary>Nothing more is published within a short while (after the last expected message came).</summary>
    internal static void NoMore(ZmqSocket sub)
    {
        var buffer = new byte[ImageMetadata.Size + 1];
        Assert.Equal(-1, sub.Receive(buffer));
    }

    internal static ulong IdOf(byte[] meta) => ImageMetadata.Read(meta).Id;

    /// <summary>Image <paramref name="id"/> in the replica: every pixel, its id, status and the source slot's header fields.</summary>
    internal static void AssertReplicated(StreamSource source, ShmRing replica, ulong id)
    {
        int slot = replica.SlotOf(id);
        Assert.True(replica.TryBeginRead(id, out _, out _), $"image {id} is not in the replica's slot {slot} (it holds {replica.Slot(slot).ImageId})");
        var pixels = MemoryMarshal.Cast<byte, ushort>(replica.SlotSpan(slot));
        for (int i = 0; i < pixels.Length; i++)
            if (pixels[i] != StreamSource.Pixel(id, i))
                Assert.Fail($"image {id} pixel {i}: {pixels[i]} in the replica, {StreamSource.Pixel(id, i)} in the source");
        Assert.True(replica.SlotSpan(slot).SequenceEqual(source.Ring.SlotSpan(source.Ring.SlotOf(id))));
        ref readonly var r = ref replica.Slot(slot);
        ref readonly var s = ref source.Ring.Slot(source.Ring.SlotOf(id));
        Assert.Equal((s.ImageId, s.Status, s.FrameIndex, s.Detector1, s.Detector2, s.ReceiveTimeNs, s.NReceivedPackets, s.BitDepth),
            (r.ImageId, r.Status, r.FrameIndex, r.Detector1, r.Detector2, r.ReceiveTimeNs, r.NReceivedPackets, r.BitDepth));
        Assert.True(r.HasModule(0));
        Assert.Equal((uint)StreamSource.Status(id), r.Status);
    }

    [Fact]
    public void Replica_TwelveImages_EveryPixelHeaderAndMetadataEqualTheSourceInOrder()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        using var sender = StartSender(source, address);
        var (sub, receiver) = Subscribed(replica, () => StartReceiver(replica, address));
        using (sub)
        using (receiver)
        {
            WaitConnected(receiver);
            Assert.True(receiver.Service.Ring.Created);
            Assert.Equal((source.Ring.SlotBytes, source.Ring.SlotCount), (receiver.Service.Ring.SlotBytes, receiver.Service.Ring.SlotCount));

            source.Images(1, 12);
            var metas = Take(sub, 12);

            Assert.Equal(Enumerable.Range(1, 12).Select(i => (ulong)i), metas.Select(IdOf));
            foreach (var m in metas)
                Assert.Equal(source.Published[IdOf(m)], m);
            for (ulong id = 1; id <= 12; id++)
                AssertReplicated(source, receiver.Service.Ring, id);
            var sent = sender.Service.Counters.Read();
            var got = receiver.Service.Counters.Read();
            Assert.Equal((12, 12, 12L * 1024 * 1024, 0, 0, 0), (sent[StreamSendCounter.ImagesReceived], sent[StreamSendCounter.ImagesSent],
                sent[StreamSendCounter.BytesSent], sent[StreamSendCounter.ImagesOverrun], sent[StreamSendCounter.MetadataGaps],
                sent[StreamSendCounter.ImagesDroppedHwm]));
            Assert.Equal(got.With(StreamRecvCounter.ImagesPublished, 0).With(StreamRecvCounter.BytesReceived, 0)
                .With(StreamRecvCounter.SenderConnections, 0), default);
            Assert.Equal((12, 12L * 1024 * 1024, 1), (got[StreamRecvCounter.ImagesPublished], got[StreamRecvCounter.BytesReceived],
                got[StreamRecvCounter.SenderConnections]));
        }
    }

    [Fact]
    public void Sender_SlotOverwrittenBeforeOrDuringTheCopy_CountsOverrunsAndNeverSendsThem()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        // Image 7 is rewritten (as image 7 + 16) in the moment after the sender copied it.
        var options = new StreamSendOptions
        {
            SendTimeoutMs = 5000,
            AfterCopy = id =>
            {
                if (id == 7)
                    source.Write(id + StreamSource.Slots);
            },
        };
        using var sender = StartSender(source, address, options);
        var (sub, receiver) = Subscribed(replica, () => StartReceiver(replica, address));
        using (sub)
        using (receiver)
        {
            WaitConnected(receiver);
            source.Images(1, 4);
            // Image 5's slot already holds image 21 when its metadata comes.
            source.Write(5);
            source.Write(5 + StreamSource.Slots);
            source.Announce(5);
            source.Images(6, 10);
            var metas = Take(sub, 8);
            NoMore(sub);

            Assert.Equal(new ulong[] { 1, 2, 3, 4, 6, 8, 9, 10 }, metas.Select(IdOf));
            foreach (ulong id in new ulong[] { 1, 2, 3, 4, 6, 8, 9, 10 })
                AssertReplicated(source, receiver.Service.Ring, id);
            var sent = sender.Service.Counters.Read();
            Assert.Equal((10, 8, 2), (sent[StreamSendCounter.ImagesReceived], sent[StreamSendCounter.ImagesSent], sent[StreamSendCounter.ImagesOverrun]));
            var got = receiver.Service.Counters.Read();
            // Not numbered by the sender (never sent), so no message is lost; the replica sees two ids skipped.
            Assert.Equal((8, 0, 2), (got[StreamRecvCounter.ImagesPublished], got[StreamRecvCounter.MessagesLost], got[StreamRecvCounter.ImagesSkipped]));
        }
    }

    [Fact]
    public void Sender_LentImagesRewrittenWhileQueued_GoOutWithAWrongChecksumAndAreCounted()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        using var sender = StartSender(source, address, new StreamSendOptions { SendTimeoutMs = 300 });
        // A receiver that takes nothing yet, with small buffers: the images stay queued in the
        // sender's libzmq (lent: read from their slots only when they go).
        var (pull, monitor) = ZmqSocket.ConnectedPuller(address, 1, 2000, Zmq.EVENT_HANDSHAKE_SUCCEEDED, receiveBufferBytes: 64 * 1024);
        using (pull)
        using (monitor)
        {
            StreamSource.WaitUntil(() => sender.Service.Counters[StreamSendCounter.ReceiverConnections] == 1, "the receiver to connect");
            source.Images(1, 12);
            StreamSource.WaitUntil(() => sender.Service.Counters[StreamSendCounter.ImagesSent] + sender.Service.Counters[StreamSendCounter.ImagesDroppedHwm] == 12,
                "12 images sent or dropped");
            for (ulong id = 1; id <= 12; id++)
                source.Write(id + StreamSource.Slots); // every slot rewritten while images wait in the queue

            var meta = new byte[ImageMetadata.Size];
            var image = new byte[1024 * 512 * 2];
            var header = new byte[StreamHeader.Size];
            int good = 0, torn = 0;
            while (pull.Receive(meta) == ImageMetadata.Size)
            {
                Assert.Equal(image.Length, pull.Receive(image));
                Assert.Equal(StreamHeader.Size, pull.Receive(header));
                ulong id = ImageMetadata.Read(meta).Id;
                if (StreamHeader.ChecksumOf(image) != StreamHeader.Read(header).Checksum)
                {
                    torn++;
                    continue;
                }
                // What matches its checksum is the image itself, never the one written over it.
                good++;
                Assert.Equal(StreamSource.Pixel(id, 1000), MemoryMarshal.Cast<byte, ushort>(image.AsSpan())[1000]);
            }
            long sent = sender.Service.Counters[StreamSendCounter.ImagesSent];
            Assert.Equal(sent, good + torn);
            Assert.True(torn > 0, $"no image went out torn ({good} whole): none was still queued when the slots were rewritten");
            // libzmq gives bytes back some time after writing them: the sender's count bounds the torn ones from above.
            StreamSource.WaitUntil(() => sender.Service.Counters[StreamSendCounter.ImagesRewrittenInFlight] >= torn,
                $"the sender to count at least the {torn} torn images (it counted {sender.Service.Counters[StreamSendCounter.ImagesRewrittenInFlight]})");
            Assert.True(sender.Service.Counters[StreamSendCounter.ImagesRewrittenInFlight] <= sent);
        }
    }

    /// <summary>
    /// A message as a sender makes it, from the test's own PUSH socket; <paramref name="tamper"/>
    /// changes the image after the checksum; <paramref name="part"/>: only that byte range, as a part
    /// sender sends it; <paramref name="frameIndex"/>: the source slot's (else id × 10).
    /// </summary>
    internal static void SendCrafted(ZmqSocket push, ulong session, ulong sequence, ulong id, int payloadBytes = 1024 * 512 * 2,
        Action<byte[]>? tamper = null, ImagePart? part = null, ulong? frameIndex = null)
    {
        var meta = new byte[ImageMetadata.Size];
        new ImageMetadata(id, 512, 1024, ImageDtype.UInt16, ImageEncoding.Raw, 0, ImageStatus.Good, id + 7, 0).Write(meta);
        var image = new byte[payloadBytes];
        var pixels = MemoryMarshal.Cast<byte, ushort>(image.AsSpan());
        for (int i = 0; i < pixels.Length; i++)
            pixels[i] = StreamSource.Pixel(id, i);
        if (part is { } p)
        {
            var (start, length) = p.RangeOf(payloadBytes);
            image = image.AsSpan((int)start, (int)length).ToArray();
        }
        var slot = new SlotHeader { ImageId = id, FrameIndex = frameIndex ?? id * 10, BitDepth = 16 };
        slot.MarkModule(0);
        var header = new byte[StreamHeader.Size];
        new StreamHeader(session, sequence, ImageShare.All, (ulong)image.Length, StreamHeader.ChecksumOf(image), slot, part).Write(header);
        tamper?.Invoke(image);
        Assert.True(push.Send(meta, more: true));
        Assert.True(push.Send(image, more: true));
        Assert.True(push.Send(header));
    }

    [Fact]
    public void Receiver_BadChecksumWrongSizeAndOldId_CountedEachByCauseAndNeverPublished()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        var bound = ZmqSocket.BoundPusher(address, 100, 5000, Zmq.EVENT_HANDSHAKE_SUCCEEDED);
        using var push = bound.Socket;
        using var pushMonitor = bound.Monitor;
        var (sub, receiver) = Subscribed(replica, () => StartReceiver(replica, address));
        using (sub)
        using (receiver)
        {
            WaitConnected(receiver);
            const ulong session = 0x5eed;
            SendCrafted(push, session, 0, 1);
            SendCrafted(push, session, 1, 2, tamper: image => image[1000] ^= 0x10); // one bit flipped on the way
            SendCrafted(push, session, 2, 3, payloadBytes: 1000); // not the size its metadata says
            SendCrafted(push, session, 3, 4);
            SendCrafted(push, session, 4, 4); // not above the last published id
            SendCrafted(push, session, 6, 6); // sequence 5 never came
            var metas = Take(sub, 3);
            NoMore(sub);

            Assert.Equal(new ulong[] { 1, 4, 6 }, metas.Select(IdOf));
            var got = receiver.Service.Counters.Read();
            Assert.Equal((3, 1, 1, 1, 1, 3), (got[StreamRecvCounter.ImagesPublished], got[StreamRecvCounter.ImagesCorrupt],
                got[StreamRecvCounter.ImagesMalformed], got[StreamRecvCounter.ImagesOutOfOrder], got[StreamRecvCounter.MessagesLost],
                got[StreamRecvCounter.ImagesSkipped]));
            // The corrupt image's slot holds no image: zeroed and marked empty.
            var ring = receiver.Service.Ring;
            ref readonly var corrupt = ref ring.Slot(ring.SlotOf(2));
            Assert.Equal((0UL, SlotStatus.Empty), (corrupt.ImageId, corrupt.Status));
            Assert.False(ring.TryBeginRead(2, out _, out _));
            Assert.True(ring.SlotSpan(ring.SlotOf(2)).IndexOfAnyExcept((byte)0) < 0);
            Assert.Equal(StreamSource.Pixel(6, 9), MemoryMarshal.Cast<byte, ushort>(ring.SlotSpan(ring.SlotOf(6)))[9]);
        }
    }

    [Fact]
    public void Receiver_SenderRestartThenReceiverRestart_WhatNeitherRunGotIsCountedByCause()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        var bound = ZmqSocket.BoundPusher(address, 100, 5000, Zmq.EVENT_HANDSHAKE_SUCCEEDED | Zmq.EVENT_DISCONNECTED);
        using var push = bound.Socket;
        using var pushMonitor = bound.Monitor;
        var (sub, receiver) = Subscribed(replica, () => StartReceiver(replica, address));
        using (sub)
        using (receiver)
        {
            WaitConnected(receiver);
            // Session A sends ids 1..3; a restarted sender (session B) numbered 2 messages before its first that came, id 8.
            SendCrafted(push, 0xA, 0, 1);
            SendCrafted(push, 0xA, 1, 2);
            SendCrafted(push, 0xA, 2, 3);
            SendCrafted(push, 0xB, 2, 8);
            Assert.Equal(new ulong[] { 1, 2, 3, 8 }, Take(sub, 4).Select(IdOf));
            var got = receiver.Service.Counters.Read();
            // Ids 4..7 skipped: 2 of them B's numbered losses, the other 2 nobody numbered.
            Assert.Equal((1, 2, 2, 4), (got[StreamRecvCounter.SenderRestarts], got[StreamRecvCounter.MessagesLost],
                got[StreamRecvCounter.ImagesLostSenderRestart], got[StreamRecvCounter.ImagesSkipped]));
        }
        Assert.True(pushMonitor.WaitFor(Zmq.EVENT_DISCONNECTED, Timeout), "the first receiver run's connection did not end");

        // A second receiver run on the same ring: session B goes on at sequence 6, so 3, 4 and 5 reached neither run.
        var (sub2, receiver2) = Subscribed(replica, () => StartReceiver(replica, address));
        using (sub2)
        using (receiver2)
        {
            WaitConnected(receiver2);
            SendCrafted(push, 0xB, 6, 12);
            Assert.Equal(new ulong[] { 12 }, Take(sub2, 1).Select(IdOf));
            var got = receiver2.Service.Counters.Read();
            Assert.Equal((1, 3, 0, 0), (got[StreamRecvCounter.ImagesPublished], got[StreamRecvCounter.MessagesLostReceiverRestart],
                got[StreamRecvCounter.MessagesLost], got[StreamRecvCounter.SenderRestarts]));
        }
    }

    [Fact]
    public void Shares_ImagesZeroOfTwoAndOneOfTwo_EachReplicaGetsItsHalfAndNothingIsCountedLost()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replicas = new[] { source.Replica(env, "r0"), source.Replica(env, "r1") };
        var addresses = new[] { $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}", $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}" };
        var shares = new[] { new ImageShare(0, 2), new ImageShare(1, 2) };
        using var sender0 = StartSender(source, addresses[0], new StreamSendOptions { SendTimeoutMs = 5000, Images = shares[0] });
        using var sender1 = StartSender(source, addresses[1], new StreamSendOptions { SendTimeoutMs = 5000, Images = shares[1] });
        var (sub0, receiver0) = Subscribed(replicas[0], () => StartReceiver(replicas[0], addresses[0], new StreamRecvOptions { Images = shares[0] }));
        var (sub1, receiver1) = Subscribed(replicas[1], () => StartReceiver(replicas[1], addresses[1], new StreamRecvOptions { Images = shares[1] }));
        using (sub0)
        using (sub1)
        using (receiver0)
        using (receiver1)
        {
            WaitConnected(receiver0);
            WaitConnected(receiver1);
            source.Images(1, 12);

            Assert.Equal(new ulong[] { 2, 4, 6, 8, 10, 12 }, Take(sub0, 6).Select(IdOf));
            Assert.Equal(new ulong[] { 1, 3, 5, 7, 9, 11 }, Take(sub1, 6).Select(IdOf));
            for (ulong id = 1; id <= 12; id++)
                AssertReplicated(source, (id % 2 == 0 ? receiver0 : receiver1).Service.Ring, id);
            foreach (var s in new[] { sender0, sender1 })
            {
                var c = s.Service.Counters.Read();
                Assert.Equal((12, 6, 6, 0), (c[StreamSendCounter.ImagesReceived], c[StreamSendCounter.ImagesSent],
                    c[StreamSendCounter.ImagesOtherShare], c[StreamSendCounter.MetadataGaps]));
            }
            foreach (var r in new[] { receiver0, receiver1 })
            {
                var c = r.Service.Counters.Read();
                Assert.Equal((6, 0, 0, 0), (c[StreamRecvCounter.ImagesPublished], c[StreamRecvCounter.ImagesSkipped],
                    c[StreamRecvCounter.MessagesLost], c[StreamRecvCounter.ImagesWrongShare]));
            }
        }
    }

    [Fact]
    public void Sender_RestartedMidStream_ReceiverResumesCountingOneRestartAndNothingLost()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        var first = StartSender(source, address);
        var (sub, receiver) = Subscribed(replica, () => StartReceiver(replica, address));
        using (sub)
        using (receiver)
        {
            ulong firstSession;
            try
            {
                WaitConnected(receiver);
                source.Images(1, 6);
                Assert.Equal(new ulong[] { 1, 2, 3, 4, 5, 6 }, Take(sub, 6).Select(IdOf));
                firstSession = first.Service.SessionId;
            }
            finally
            {
                first.Dispose();
            }

            using var second = StartSender(source, address);
            Assert.NotEqual(firstSession, second.Service.SessionId);
            WaitConnected(receiver, 2);
            source.Images(7, 12);

            Assert.Equal(new ulong[] { 7, 8, 9, 10, 11, 12 }, Take(sub, 6).Select(IdOf));
            for (ulong id = 1; id <= 12; id++)
                AssertReplicated(source, receiver.Service.Ring, id);
            var c = receiver.Service.Counters.Read();
            Assert.Equal((12, 1, 0, 0, 0), (c[StreamRecvCounter.ImagesPublished], c[StreamRecvCounter.SenderRestarts],
                c[StreamRecvCounter.MessagesLost], c[StreamRecvCounter.ImagesSkipped], c[StreamRecvCounter.ImagesOutOfOrder]));
            Assert.Equal(6, second.Service.Counters.Read()[StreamSendCounter.ImagesSent]);
        }
    }

    [Fact]
    public void Receiver_Restarted_ReusesItsRingAndResumesWithNothingLost()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        using var sender = StartSender(source, address);
        var (sub1, receiver1) = Subscribed(replica, () => StartReceiver(replica, address));
        using (sub1)
        {
            using (receiver1)
            {
                WaitConnected(receiver1);
                source.Images(1, 6);
                Assert.Equal(new ulong[] { 1, 2, 3, 4, 5, 6 }, Take(sub1, 6).Select(IdOf));
            }
        }
        StreamSource.WaitUntil(() => !ZmqSocket.IsListening(replica.AssemblerEndpoint), "the first receiver's endpoint to go");

        var (sub2, receiver2) = Subscribed(replica, () => StartReceiver(replica, address));
        using (sub2)
        using (receiver2)
        {
            Assert.False(receiver2.Service.Ring.Created);
            WaitConnected(receiver2);
            StreamSource.WaitUntil(() => sender.Service.Counters.Read()[StreamSendCounter.ReceiverConnections] >= 2, "the sender to see the receiver again");
            source.Images(7, 12);

            Assert.Equal(new ulong[] { 7, 8, 9, 10, 11, 12 }, Take(sub2, 6).Select(IdOf));
            // The images the first receiver wrote are still there, next to the second's.
            for (ulong id = 1; id <= 12; id++)
                AssertReplicated(source, receiver2.Service.Ring, id);
            var c = receiver2.Service.Counters.Read();
            Assert.Equal((6, 0, 0, 0), (c[StreamRecvCounter.ImagesPublished], c[StreamRecvCounter.MessagesLost],
                c[StreamRecvCounter.SenderRestarts], c[StreamRecvCounter.ImagesMalformed]));
            var s = sender.Service.Counters.Read();
            Assert.Equal((12, 0), (s[StreamSendCounter.ImagesSent], s[StreamSendCounter.ImagesDroppedHwm]));
        }
    }

    [Fact]
    public void Sender_NoReceiver_DropsAtTheSendTimeoutWithoutWaitingForEach_ThenSendsToOneThatComes()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        using var sender = StartSender(source, address, new StreamSendOptions { SendTimeoutMs = 300 });

        // Nobody to send to: the first image waits the send timeout, the next ones not at all.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        source.Images(1, 5);
        StreamSource.WaitUntil(() => sender.Service.Counters[StreamSendCounter.ImagesDroppedHwm] == 5, "5 images dropped");
        var dropped = sender.Service.Counters.Read();
        Assert.Equal(0, dropped[StreamSendCounter.ImagesSent]);
        Assert.Equal(1, dropped[StreamSendCounter.SendBlocked]);
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(5 * 300), $"5 drops took {clock.Elapsed.TotalMilliseconds:F0} ms: each waited the timeout");

        var (sub, receiver) = Subscribed(replica, () => StartReceiver(replica, address));
        using (sub)
        using (receiver)
        {
            WaitConnected(receiver);
            source.Images(6, 8);
            Assert.Equal(new ulong[] { 6, 7, 8 }, Take(sub, 3).Select(IdOf));
            for (ulong id = 6; id <= 8; id++)
                AssertReplicated(source, receiver.Service.Ring, id);
            Assert.Equal(3, sender.Service.Counters[StreamSendCounter.ImagesSent]);
            Assert.Equal(5, sender.Service.Counters[StreamSendCounter.ImagesDroppedHwm]);
        }
    }

    [Fact]
    public void Processes_SenderAndReplicaOnOneHost_ReplicateRefuseASecondSenderAndStopOnSigterm()
    {
        using var env = new TestEnv();
        using var source = new StreamSource(env);
        var replica = source.Replica(env);
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        using var sender = new ServiceProcess("StdStreamSend", source.ConfigPath, address, "--send-timeout-ms", "5000");
        source.WaitForSubscriber(Timeout);
        var (sub, receiver) = Subscribed(replica, () =>
            new ServiceProcess("StdStreamRecv", source.ConfigPath, address, "--detector-name", replica.DetectorName));
        using (sub)
        using (receiver)
        {
            Assert.True(receiver.WaitForLine($"connected to the sender at {address}", Timeout), receiver.Output);
            Assert.True(sender.WaitForLine($"a receiver connected to {address}", Timeout), sender.Output);

            var second = Programs.Run("StdStreamSend", [source.ConfigPath, address]);
            Assert.Equal(1, second.ExitCode);
            Assert.Contains($"StdStreamSend of detector '{source.Config.DetectorName}' for images 0/1 to {address} is already running as pid {sender.Pid}",
                second.Stderr);

            source.Images(1, 8);
            Assert.Equal(Enumerable.Range(1, 8).Select(i => (ulong)i), Take(sub, 8).Select(IdOf));
            using (var ring = ShmRing.Attach(replica.ImageBufferName, RingKind.ImageBuffer, replica.ImageBytes, StreamSource.Slots))
                for (ulong id = 1; id <= 8; id++)
                    AssertReplicated(source, ring, id);

            Assert.True(sender.Terminate(Timeout));
            Assert.True(receiver.Terminate(Timeout));
            Assert.Equal((0, 0), (sender.ExitCode, receiver.ExitCode));
            Assert.Contains("images_sent=8 bytes_sent=8388608 images_overrun=0", sender.Output);
            Assert.Contains("images_published=8 bytes_received=8388608 images_corrupt=0 images_malformed=0 messages_lost=0", receiver.Output);
        }
    }
}
