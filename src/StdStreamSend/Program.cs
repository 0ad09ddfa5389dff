using System.CommandLine;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Metrics;
using StdDaq.StreamSend;

var configPath = CliOptions.ConfigArgument();
var address = CliOptions.TcpEndpoint("stream_address",
    "where to send: tcp://<ip>:<port> to bind (tcp://0.0.0.0:5700 on every interface); receivers connect to it");
var images = CliOptions.Share("--images", "send only the images with id % N == i (whole images, for writing on N servers)");
var part = CliOptions.Part("--part",
    "send only byte range i of N of every image (std-daq's image_part: N senders share the bandwidth, N receivers fill one replica; not with --images)");
var noChecksum = CliOptions.Flag("--no-checksum", "send no xxHash3-64 of the image bytes (the header carries 0 and receivers check nothing)");
var timeout = CliOptions.Number("--send-timeout-ms", "MS",
    "how long an image may wait for room at the high-water mark before it is dropped (images_dropped_hwm)", 200, 1, 60_000);
var metricsPort = CliOptions.MetricsPort();
var command = new RootCommand(
    "Sends every image of the detector's ImageBuffer (or every N-th, --images i/N) over TCP to StdStreamRecv on another " +
    "server: its ImageMetadata, its bytes read under the slot's sequence lock, and a header with a sequence number and a checksum.")
{
    configPath, address, images, part, noChecksum, timeout, metricsPort,
};
command.SetBody((a, logger, ct) =>
{
    var (share, range) = a.ImagesOrPart(images, part);
    var config = ServiceHost.LoadConfig(a.GetValue(configPath)!, logger);
    int port = MetricsConfig.Port(a.GetValue(metricsPort), config.Metrics.StreamSendPort, range?.Index ?? share.Index, "stream_send_port");
    var options = new StreamSendOptions
    {
        Images = share,
        Part = range,
        Checksum = !a.GetValue(noChecksum),
        SendTimeoutMs = a.GetValue(timeout),
    };
    using var sender = new StreamSender(config, a.GetValue(address)!, options, logger);
    using var presence = ServicePresence.StartFor("StdStreamSend",
        $"{config.DetectorName}.stream_send_{options.Images.Index}of{options.Images.Count}", a.GetValue(configPath)!, logger);
    using var metrics = MetricsServer.Start(port, "StdStreamSend", presence.ServiceName, sender.Counters, logger);
    sender.Run(ct);
    sender.DisposeFlushing(StreamSender.StopLingerMs);
    return 0;
});
return ServiceHost.Run(args, command);
