using System.CommandLine;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Metrics;
using StdDaq.Shared.Interop;
using StdDaq.Writer;

var configPath = CliOptions.ConfigArgument();
var metricsPort = CliOptions.MetricsPort();
var command = new RootCommand(
    "Writes each run the WriterAgent sends (StoreStream) from the shared-memory ImageBuffer into its NeXus HDF5 file " +
    "and acknowledges to the agent (one process per detector).")
{
    configPath, metricsPort,
};
command.SetBody((a, logger, ct) =>
{
    string path = a.GetValue(configPath)!;
    var config = ServiceHost.LoadConfig(path, logger);
    int port = MetricsConfig.Port(a.GetValue(metricsPort), config.Metrics.WriterPort, 0, "writer_port");
    Hdf5.Check(Hdf5.H5open(), "H5open"); // libhdf5 missing: one line and exit 1 now, not at the first request
    Liblz4.EnsureAvailable(); // likewise liblz4, which bitshuffle-LZ4 requests need
    string text = File.ReadAllText(path);
    using var writer = new WriterService(config, new WriterOptions { ConfigText = text }, logger);
    using var presence = ServicePresence.Start("StdH5Writer", $"{config.DetectorName}.writer", text, logger);
    using var metrics = MetricsServer.Start(port, "StdH5Writer", presence.ServiceName, writer.Counters, logger);
    writer.RunAsync(ct).GetAwaiter().GetResult();
    return 0;
});
return ServiceHost.Run(args, command);
