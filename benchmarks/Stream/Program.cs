using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.StreamRecv;
using StdDaq.StreamSend;

// One side of the replication benchmark (benchmarks/Stream/run.sh runs both, each on its own
// "server"):
//   source:  an ImageBuffer of the config's geometry filled once with noise, ImageMetadata for ids
//            1..N published as fast as StdStreamSend (in this process) takes them (never more than
//            half a ring ahead, so no image is overwritten before it is sent), the sender binding ADDRESS;
//   replica: StdStreamRecv (in this process) connected to ADDRESS, timed by the images it publishes.
// With --parts N (both sides), N senders each send byte range i of every image (--part i/N) on
// ADDRESS's port + i, and N part receivers (threads of the replica process) fill one ImageBuffer;
// part 0's publishes, and times the run.
// Each prints one JSON line: images, seconds, GB/s of image bytes, CPU seconds of the process and
// per GB, and the losses the services counted.
var side = new Argument<string>("side") { Description = "source|replica" };
side.AcceptOnlyFromAmong("source", "replica");
var configPath = CliOptions.ConfigArgument();
var address = new Argument<string>("address") { Description = "the stream's tcp:// address (the source binds it)" };
var images = CliOptions.Number("--images", "N", "images to replicate", 2000L, 1);
var noChecksum = CliOptions.Flag("--no-checksum", "source: send without the xxHash3-64 of each image");
var parts = CliOptions.Number("--parts", "N", "senders and receivers of --part i/N (1: whole images, one stream)", 1, 1, ImagePart.MaxCount);
var queue = CliOptions.Number("--queue-mib", "MiB", "the high-water mark on each side in MiB of images (the services' default 256)", 256L, 8, 4096);
var copy = CliOptions.Flag("--copy", "source: copy every image into the libzmq message (with checksums the sender lends the slot's bytes instead)");
var done = CliOptions.Text("--done", "FILE", "source: after the last image, keep the sender (and what it has queued) alive until FILE exists (at most 120 s)");
var command = new RootCommand("Replication throughput, one side.") { side, configPath, address, images, noChecksum, parts, queue, copy, done };
command.SetAction(a =>
{
    var config = DetectorConfigLoader.Load(a.GetValue(configPath)!);
    long n = a.GetValue(images);
    if (a.GetValue(side) == "replica")
        StreamReceiver.KeepReceiveBuffers(); // as StdStreamRecv does
    var result = a.GetValue(side) == "source"
        ? Source(config, a.GetValue(address)!, n, !a.GetValue(noChecksum), a.GetValue(parts), a.GetValue(queue) << 20, !a.GetValue(copy), a.GetValue(done))
        : Replica(config, a.GetValue(address)!, n, a.GetValue(parts), a.GetValue(queue) << 20);
    Console.WriteLine(JsonSerializer.Serialize(result));
    return 0;
});
return command.Parse(args).Invoke();

/// <summary>The address of part <paramref name="i"/>: <paramref name="address"/> with its port + i.</summary>
static string PartAddress(string address, int i)
{
    int colon = address.LastIndexOf(':');
    return address[..(colon + 1)] + (int.Parse(address[(colon + 1)..]) + i);
}

// Minor page faults of this process so far (/proc/self/stat field 10): a fresh page per image byte
// would show as ~512 per 2 MiB image.
static long MinorFaults()
{
    string stat = File.ReadAllText("/proc/self/stat");
    return long.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[7]);
}

static ImagePart? PartOf(int i, int parts) => parts > 1 ? new ImagePart(i, parts) : null;

static Dictionary<string, object> Source(DetectorConfig config, string address, long n, bool checksum, int parts, long queued, bool lend, string? done)
{
    using var ring = ShmRing.CreateOrAttach(config.ImageBufferName, RingKind.ImageBuffer, config.ImageBytes, config.ImageBufferSlotCount);
    var noise = new Random(1);
    for (int s = 0; s < ring.SlotCount; s++)
        noise.NextBytes(ring.SlotSpan(s));
    using var metadata = ZmqSocket.Publisher(config.AssemblerEndpoint, sendHwm: 1_000_000, seeSubscriptions: true);
    // Every subscription, not only the first to a topic: each part sender's is waited for.
    metadata.SetInt(StdDaq.Shared.Interop.Zmq.XPUB_VERBOSE, 1);
    var senders = Enumerable.Range(0, parts).Select(i => new StreamSender(config, PartAddress(address, i),
        new StreamSendOptions { Checksum = checksum, SendTimeoutMs = 5000, Part = PartOf(i, parts), QueuedBytes = queued, Lend = lend }, NullLogger.Instance)).ToArray();
    using var stop = new CancellationTokenSource();
    var runs = senders.Select(s => s.RunAsync(stop.Token)).ToArray();
    var buffer = new byte[64];
    var wait = Stopwatch.StartNew();
    for (int subscribed = 0; subscribed < parts;)
    {
        if (metadata.Receive(buffer) > 0 && buffer[0] == 1)
            subscribed++;
        if (wait.Elapsed > TimeSpan.FromSeconds(30))
            throw new TimeoutException("StdStreamSend did not subscribe to the metadata");
    }
    while (senders.Any(s => s.Counters[StreamSendCounter.ReceiverConnections] == 0))
    {
        if (wait.Elapsed > TimeSpan.FromSeconds(120))
            throw new TimeoutException("no replica connected");
        Thread.Sleep(10);
    }
    long Handled() => senders.Min(s => s.Counters[StreamSendCounter.ImagesSent] + s.Counters[StreamSendCounter.ImagesDroppedHwm]
        + s.Counters[StreamSendCounter.ImagesOverrun]);
    int ahead = ring.SlotCount / 2;
    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
    long faults = MinorFaults();
    var clock = Stopwatch.StartNew();
    var meta = new byte[ImageMetadata.Size];
    for (long id = 1; id <= n; id++)
    {
        // Sleeps, not Thread.Yield: a yielding loop keeps a core busy with sched_yield, CPU that the
        // sender and the replica, on the same cores, then lack (and that counts as the source's).
        // 5 ms is a few images at these rates, far less than the half ring ahead.
        while (id - Handled() > ahead)
            Thread.Sleep(5);
        int slot = ring.SlotOf((ulong)id);
        ring.BeginWrite(slot);
        ring.Slot(slot).ImageId = (ulong)id;
        ring.Slot(slot).Status = 0;
        ring.EndWrite(slot);
        new ImageMetadata((ulong)id, (ulong)config.ImagePixelHeight, (ulong)config.ImagePixelWidth, config.ImageDtype, ImageEncoding.Raw,
            0, ImageStatus.Good, 0, 0).Write(meta);
        metadata.Send(meta);
    }
    while (Handled() < n && clock.Elapsed < TimeSpan.FromSeconds(600))
        Thread.Sleep(1);
    double seconds = clock.Elapsed.TotalSeconds;
    double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
    faults = MinorFaults() - faults;
    // "Sent" is queued in libzmq: the last images are still on their way; closing now would drop them.
    var hold = Stopwatch.StartNew();
    while (done != null && !File.Exists(done) && hold.Elapsed < TimeSpan.FromSeconds(120))
        Thread.Sleep(10);
    stop.Cancel();
    Task.WaitAll(runs, TimeSpan.FromSeconds(10));
    long Sum(StreamSendCounter c) => senders.Sum(s => s.Counters[c]);
    double gb = Sum(StreamSendCounter.BytesSent) / 1e9;
    var result = new Dictionary<string, object>
    {
        ["side"] = "source", ["images"] = n, ["parts"] = parts, ["sent"] = Sum(StreamSendCounter.ImagesSent) / parts,
        ["overrun"] = Sum(StreamSendCounter.ImagesOverrun), ["dropped_hwm"] = Sum(StreamSendCounter.ImagesDroppedHwm),
        ["checksum"] = checksum, ["lend"] = lend && checksum, ["rewritten_in_flight"] = Sum(StreamSendCounter.ImagesRewrittenInFlight), ["seconds"] = Math.Round(seconds, 3), ["gb_per_s"] = Math.Round(gb / seconds, 3),
        ["cpu_s"] = Math.Round(cpuSeconds, 3), ["cpu_s_per_gb"] = Math.Round(cpuSeconds / gb, 3),
        ["minor_faults_per_image"] = Math.Round((double)faults / n, 1),
    };
    foreach (var s in senders)
        s.Dispose();
    return result;
}

static Dictionary<string, object> Replica(DetectorConfig config, string address, long n, int parts, long queued)
{
    var receivers = Enumerable.Range(0, parts).Select(i => new StreamReceiver(config, PartAddress(address, i),
        new StreamRecvOptions { Part = PartOf(i, parts), QueuedBytes = queued }, NullLogger.Instance)).ToArray();
    using var stop = new CancellationTokenSource();
    var runs = receivers.Select(r => r.RunAsync(stop.Token)).ToArray();
    Console.Error.WriteLine("replica: ready");
    // Timed by the receiver's own count of published images (a subscriber of its metadata could
    // join after the first ones): from the first to the last, polled every 2 ms (a run takes
    // seconds; not Thread.Sleep of 200 µs, which is Sleep(0), a sched_yield loop that kept a core
    // busy). The process's CPU time and page faults (a read of /proc/self/stat, several system
    // calls) are sampled with the first images and then at most every 20 ms, and taken per GB over
    // the images between their own samples.
    var c = receivers[0].Counters;
    TimeSpan first = default, last = default, cpuFirst = default, cpuLast = default, sampled = default;
    long faultsFirst = 0, faultsLast = 0;
    long count = 0, seen = 0, seenAtSample = 0;
    var clock = Stopwatch.StartNew();
    var idle = Stopwatch.StartNew();
    while (seen < n && idle.Elapsed < TimeSpan.FromSeconds(seen == 0 ? 300 : 30))
    {
        long now = c[StreamRecvCounter.ImagesPublished];
        if (now == seen)
        {
            Thread.Sleep(2);
            continue;
        }
        idle.Restart();
        var t = clock.Elapsed;
        if (seen == 0 || now >= n || t - sampled >= TimeSpan.FromMilliseconds(20))
        {
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            if (seen == 0)
                (first, cpuFirst, count, faultsFirst) = (t, cpu, now, MinorFaults());
            (sampled, cpuLast, seenAtSample, faultsLast) = (t, cpu, now, MinorFaults());
        }
        (last, seen) = (t, now);
    }
    stop.Cancel();
    Task.WaitAll(runs, TimeSpan.FromSeconds(10));
    long Sum(StreamRecvCounter k) => receivers.Sum(r => r.Counters[k]);
    long lost = Sum(StreamRecvCounter.MessagesLost) + Sum(StreamRecvCounter.ImagesSkipped) + Sum(StreamRecvCounter.ImagesCorrupt)
        + Sum(StreamRecvCounter.ImagesMalformed) + Sum(StreamRecvCounter.ImagesOutOfOrder) + Sum(StreamRecvCounter.MetadataDropped)
        + Sum(StreamRecvCounter.ImagesIncomplete) + Sum(StreamRecvCounter.PartsLate) + Sum(StreamRecvCounter.PartsMismatched);
    long incomplete = Sum(StreamRecvCounter.ImagesIncomplete), late = Sum(StreamRecvCounter.PartsLate);
    long skipped = Sum(StreamRecvCounter.ImagesSkipped), messagesLost = Sum(StreamRecvCounter.MessagesLost);
    foreach (var r in receivers)
        r.Dispose();
    double seconds = (last - first).TotalSeconds;
    double gb = (seen - count) * config.ImageBytes / 1e9; // the images after the first poll that saw any, over the time since
    double cpuSeconds = (cpuLast - cpuFirst).TotalSeconds;
    double cpuGb = (seenAtSample - count) * config.ImageBytes / 1e9;
    return new()
    {
        ["side"] = "replica", ["images"] = seen, ["lost"] = lost,
        ["incomplete"] = incomplete, ["parts_late"] = late, ["skipped"] = skipped, ["messages_lost"] = messagesLost,
        ["seconds"] = Math.Round(seconds, 3), ["gb_per_s"] = Math.Round(seconds > 0 ? gb / seconds : 0, 3),
        ["cpu_s"] = Math.Round(cpuSeconds, 3), ["cpu_s_per_gb"] = Math.Round(cpuGb > 0 ? cpuSeconds / cpuGb : 0, 3),
        ["minor_faults_per_image"] = Math.Round(seenAtSample > count ? (double)(faultsLast - faultsFirst) / (seenAtSample - count) : 0, 1),
    };
}
