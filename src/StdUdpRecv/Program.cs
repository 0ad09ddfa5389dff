using System.Net;
using Microsoft.Extensions.Logging;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.UdpRecv;

// StdUdpRecv <config.json> <module_id> [--bind <ipv4>]
return ServiceHost.Run("StdUdpRecv", args, "StdUdpRecv <config.json> <module_id> [--bind <ipv4 address>]", (a, logger, ct) =>
{
    if (a.Positional.Count != 2)
        throw new UsageException("expected <config.json> <module_id>");
    var config = ServiceHost.LoadConfig(a.Positional[0], logger);
    if (!int.TryParse(a.Positional[1], out int moduleId) || moduleId < 0 || moduleId >= config.NModules)
        throw new UsageException($"module_id '{a.Positional[1]}' is not in 0..{config.NModules - 1}");
    var bind = a.Option("bind") is { } b
        ? (IPAddress.TryParse(b, out var ip) ? ip : throw new UsageException($"--bind '{b}' is not an IPv4 address"))
        : IPAddress.Any;
    using var receiver = new UdpReceiver(config, moduleId, logger, bind);
    receiver.Run(ct);
    return 0;
});
