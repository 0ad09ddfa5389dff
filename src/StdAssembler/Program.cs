using System.CommandLine;
using StdDaq.Assembler;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Metrics;

var configPath = CliOptions.ConfigArgument();
var gains = CliOptions.Text("--gains-and-pedestals", "file.h5",
    "JUNGFRAU converted: the HDF5 file of gains, pedestals and pixel mask (instead of the config's gains_and_pedestals)");
var workers = CliOptions.Number("--workers", "N", "threads placing and converting images; 0 = the config's assembler_workers", 0, 0, 256);
var timeout = CliOptions.OptionalNumber<double>("--timeout-ms", "MS",
    "publish an image with modules missing this long after its first module came (default: the config's assembler_timeout_ms)", 1, 600_000);
var discard = CliOptions.Flag("--discard-incomplete", "drop images with modules missing instead of publishing them");
var metricsPort = CliOptions.MetricsPort();
var command = new RootCommand(
    "Synchronizes every module's frames by image id into the shared-memory ImageBuffer (converting JUNGFRAU to keV " +
    "when asked) and publishes each image's metadata (one process per detector).")
{
    configPath, gains, workers, timeout, discard, metricsPort,
};
command.SetBody((a, logger, ct) =>
{
    var config = ServiceHost.LoadConfig(a.GetValue(configPath)!, logger);
    if (a.GetValue(gains) is { } gp)
        config = config with { GainsAndPedestals = gp };
    int port = MetricsConfig.Port(a.GetValue(metricsPort), config.Metrics.AssemblerPort, 0, "assembler_port");
    var options = new AssemblerOptions
    {
        Workers = a.GetValue(workers),
        TimeoutMs = a.GetValue(timeout),
        DiscardIncomplete = a.GetValue(discard),
    };
    using var assembler = new Assembler(config, logger, options, startup: ct);
    using var presence = ServicePresence.StartFor("StdAssembler", $"{config.DetectorName}.assembler", a.GetValue(configPath)!, logger);
    using var metrics = MetricsServer.Start(port, "StdAssembler", presence.ServiceName, assembler.Counters, logger);
    assembler.Run(ct);
    return 0;
});
return ServiceHost.Run(args, command);
