using System.CommandLine;
using System.Net;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Metrics;
using StdDaq.UdpRecv;

var configPath = CliOptions.ConfigArgument();
var moduleArg = new Argument<string>("module_id") { Description = "the module this process receives: 0 .. n_modules - 1" };
var bind = CliOptions.Ipv4("--bind", "the local address to receive on", IPAddress.Any);
var metricsPort = CliOptions.MetricsPort();
var command = new RootCommand(
    "Receives one detector module's UDP packets into its shared-memory FrameBuffer and announces each frame " +
    "(one process per module; UDP port start_udp_port + module_id).")
{
    configPath, moduleArg, bind, metricsPort,
};
command.SetBody((a, logger, ct) =>
{
    var config = ServiceHost.LoadConfig(a.GetValue(configPath)!, logger);
    string module = a.GetValue(moduleArg)!;
    if (!int.TryParse(module, out int moduleId) || moduleId < 0 || moduleId >= config.NModules)
        throw new UsageException($"module_id '{module}' is not in 0..{config.NModules - 1}");
    int port = MetricsConfig.Port(a.GetValue(metricsPort), config.Metrics.UdpRecvPort, moduleId, "udp_recv_port");
    using var receiver = new UdpReceiver(config, moduleId, logger, a.GetValue(bind)!);
    using var presence = ServicePresence.StartFor("StdUdpRecv", $"{config.DetectorName}.udp_recv_{moduleId}", a.GetValue(configPath)!, logger);
    using var metrics = MetricsServer.Start(port, "StdUdpRecv", presence.ServiceName, receiver.Counters, logger);
    receiver.Run(ct);
    return 0;
});
return ServiceHost.Run(args, command);
