using Microsoft.Extensions.Logging;
using StdDaq.Agent;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;

// WriterAgent <config.json> [--broker-url <host or amqp:// URI>] [--service-name NAME] [--tag TAG]
const string usage = "WriterAgent <config.json> [--broker-url <host or amqp:// URI>] [--service-name NAME] [--tag TAG]";
return ServiceHost.Run("WriterAgent", args, usage, (a, logger, ct) =>
{
    if (a.Positional.Count != 1)
        throw new UsageException("expected <config.json>");
    var config = ServiceHost.LoadConfig(a.Positional[0], logger);
    var options = new WriterAgentOptions
    {
        BrokerUrl = a.Option("broker-url"),
        ServiceName = a.Option("service-name") ?? Environment.GetEnvironmentVariable("SERVICE_NAME"),
        Tag = a.Option("tag") ?? "#",
    };
    var agent = new WriterAgentService(config, options, logger);
    agent.RunAsync(ct).GetAwaiter().GetResult();
    return 0;
}, options: ["broker-url", "service-name", "tag"]);
