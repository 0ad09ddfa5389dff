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
// Each prints one JSON line: images, seconds, GB/s of image bytes, CPU seconds of the process and
// per GB, and the losses the services counted.
var side = new Argument<string>("side") { Description = "source|replica" };
side.AcceptOnlyFromAmong("source", "replica");
var configPath = CliOptions.ConfigArgument();
var address = new Argument<string>("address") { Description = "the stream's tcp:// address (the source binds it)" };
var images = CliOptions.Number("--images", "N", "images to replicate", 2000L, 1);
var noChecksum = CliOptions.Flag("--no-checksum", "source: send without the xxHash3-64 of each image");
var done = CliOptions.Text("--done", "FILE", "source: after the last image, keep the sender (and what it has queued) alive until FILE exists (at most 120 s)");
var command = new RootCommand("Replication throughput, one side.") { side, configPath, address, images, noChecksum, done };
command.SetAction(a =>
{
    var config = DetectorConfigLoader.Load(a.GetValue(configPath)!);
    long n = a.GetValue(images);
    var result = a.GetValue(side) == "source"
        ? Source(config, a.GetValue(address)!, n, !a.GetValue(noChecksum), a.GetValue(done))
        : Replica(config, a.GetValue(address)!, n);
    Console.WriteLine(JsonSerializer.Serialize(result));
    return 0;
});
return command.Parse(args).Invoke();

static Dictionary<string, object> Source(DetectorConfig config, string address, long n, bool checksum, string? done)
{
    using var ring = ShmRing.CreateOrAttach(config.ImageBufferName, RingKind.ImageBuffer, config.ImageBytes, config.ImageBufferSlotCount);
    var noise = new Random(1);
    for (int s = 0; s < ring.SlotCount; s++)
        noise.NextBytes(ring.SlotSpan(s));
    using var metadata = ZmqSocket.Publisher(config.AssemblerEndpoint, sendHwm: 1_000_000, seeSubscriptions: true);
    using var sender = new StreamSender(config, address, new StreamSendOptions { Checksum = checksum, SendTimeoutMs = 5000 }, NullLogger.Instance);
    using var stop = new CancellationTokenSource();
    var run = sender.RunAsync(stop.Token);
    var buffer = new byte[64];
    var wait = Stopwatch.StartNew();
    while (!(metadata.Receive(buffer) > 0 && buffer[0] == 1))
        if (wait.Elapsed > TimeSpan.FromSeconds(30))
            throw new TimeoutException("StdStreamSend did not subscribe to the metadata");
    while (sender.Counters[StreamSendCounter.ReceiverConnections] == 0)
    {
        if (wait.Elapsed > TimeSpan.FromSeconds(120))
            throw new TimeoutException("no replica connected");
        Thread.Sleep(10);
    }
    long Handled() => sender.Counters[StreamSendCounter.ImagesSent] + sender.Counters[StreamSendCounter.ImagesDroppedHwm]
        + sender.Counters[StreamSendCounter.ImagesOverrun];
    int ahead = ring.SlotCount / 2;
    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
    var clock = Stopwatch.StartNew();
    var meta = new byte[ImageMetadata.Size];
    for (long id = 1; id <= n; id++)
    {
        while (id - Handled() > ahead)
            Thread.Yield();
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
    // "Sent" is queued in libzmq: the last images are still on their way; closing now would drop them.
    var hold = Stopwatch.StartNew();
    while (done != null && !File.Exists(done) && hold.Elapsed < TimeSpan.FromSeconds(120))
        Thread.Sleep(10);
    stop.Cancel();
    run.Wait(TimeSpan.FromSeconds(10));
    double gb = sender.Counters[StreamSendCounter.BytesSent] / 1e9;
    return new()
    {
        ["side"] = "source", ["images"] = n, ["sent"] = sender.Counters[StreamSendCounter.ImagesSent],
        ["overrun"] = sender.Counters[StreamSendCounter.ImagesOverrun], ["dropped_hwm"] = sender.Counters[StreamSendCounter.ImagesDroppedHwm],
        ["checksum"] = checksum, ["seconds"] = Math.Round(seconds, 3), ["gb_per_s"] = Math.Round(gb / seconds, 3),
        ["cpu_s"] = Math.Round(cpuSeconds, 3), ["cpu_s_per_gb"] = Math.Round(cpuSeconds / gb, 3),
    };
}

static Dictionary<string, object> Replica(DetectorConfig config, string address, long n)
{
    using var receiver = new StreamReceiver(config, address, new StreamRecvOptions(), NullLogger.Instance);
    using var stop = new CancellationTokenSource();
    var run = receiver.RunAsync(stop.Token);
    Console.Error.WriteLine("replica: ready");
    // Timed by the receiver's own count of published images (a subscriber of its metadata could
    // join after the first ones): from the first to the last, polled every 0.2 ms.
    var c = receiver.Counters;
    TimeSpan first = default, last = default, cpuFirst = default, cpuLast = default;
    long count = 0, seen = 0;
    var clock = Stopwatch.StartNew();
    var idle = Stopwatch.StartNew();
    while (seen < n && idle.Elapsed < TimeSpan.FromSeconds(seen == 0 ? 300 : 30))
    {
        long now = c[StreamRecvCounter.ImagesPublished];
        if (now == seen)
        {
            Thread.Sleep(TimeSpan.FromMicroseconds(200));
            continue;
        }
        idle.Restart();
        var t = clock.Elapsed;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        if (seen == 0)
            (first, cpuFirst, count) = (t, cpu, now);
        (last, cpuLast, seen) = (t, cpu, now);
    }
    stop.Cancel();
    run.Wait(TimeSpan.FromSeconds(10));
    double seconds = (last - first).TotalSeconds;
    double gb = (seen - count) * config.ImageBytes / 1e9; // the images after the first poll that saw any, over the time since
    double cpuSeconds = (cpuLast - cpuFirst).TotalSeconds;
    return new()
    {
        ["side"] = "replica", ["images"] = seen,
        ["lost"] = c[StreamRecvCounter.MessagesLost] + c[StreamRecvCounter.ImagesSkipped] + c[StreamRecvCounter.ImagesCorrupt]
            + c[StreamRecvCounter.ImagesMalformed] + c[StreamRecvCounter.ImagesOutOfOrder] + c[StreamRecvCounter.MetadataDropped],
        ["seconds"] = Math.Round(seconds, 3), ["gb_per_s"] = Math.Round(seconds > 0 ? gb / seconds : 0, 3),
        ["cpu_s"] = Math.Round(cpuSeconds, 3), ["cpu_s_per_gb"] = Math.Round(gb > 0 ? cpuSeconds / gb : 0, 3),
    };
}
