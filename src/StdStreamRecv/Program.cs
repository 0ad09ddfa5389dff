using System.CommandLine;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Metrics;
using StdDaq.StreamRecv;

var configPath = CliOptions.ConfigArgument();
var address = CliOptions.TcpEndpoint("stream_address", "the StdStreamSend to connect to: tcp://<host>:<port>");
var images = CliOptions.Share("--images", "take only the images with id % N == i (the share its sender sends)");
var part = CliOptions.Part("--part",
    "take only byte range i of N of every image, from the sender of the same --part; the N part receivers write into one ImageBuffer "
    + "and part 0's publishes each image once all its parts are in (not with --images)");
var partTimeout = CliOptions.Number("--part-timeout-ms", "MS",
    "--part 0/N: how long an image waits for its other parts before it is given up, never published (images_incomplete)", 5000, 1, 600_000);
var detectorName = CliOptions.Text("--detector-name", "name",
    "the detector_name to use instead of the config's, which names the ImageBuffer, the metadata endpoint and the role lock; "
    + "for a replica on the same host as its source");
var metricsPort = CliOptions.MetricsPort();
var command = new RootCommand(
    "Receives the images a StdStreamSend sends into this server's ImageBuffer and publishes their ImageMetadata in the " +
    "assembler's place, so the writer and every other consumer run here as on the source server.")
{
    configPath, address, images, part, partTimeout, detectorName, metricsPort,
};
command.SetBody((a, logger, ct) =>
{
    var (share, range) = a.ImagesOrPart(images, part);
    if (a.GetValue(detectorName) is { } name && !DetectorConfigLoader.IsValidDetectorName(name))
        throw new UsageException($"--detector-name '{name}' is not 1-64 of A-Z a-z 0-9 _ . -");
    var config = ServiceHost.LoadConfig(a.GetValue(configPath)!, logger);
    if (a.GetValue(detectorName) is { } replica)
        config = config with { DetectorName = replica };
    int port = MetricsConfig.Port(a.GetValue(metricsPort), config.Metrics.StreamRecvPort, range?.Index ?? share.Index, "stream_recv_port");
    StreamReceiver.KeepReceiveBuffers();
    var options = new StreamRecvOptions { Images = share, Part = range, PartTimeoutMs = a.GetValue(partTimeout) };
    using var receiver = new StreamReceiver(config, a.GetValue(address)!, options, logger);
    using var presence = ServicePresence.StartFor("StdStreamRecv",
        $"{config.DetectorName}.stream_recv_{options.Images.Index}of{options.Images.Count}", a.GetValue(configPath)!, logger);
    using var metrics = MetricsServer.Start(port, "StdStreamRecv", presence.ServiceName, receiver.Counters, logger);
    receiver.Run(ct);
    return 0;
});
return ServiceHost.Run(args, command);
