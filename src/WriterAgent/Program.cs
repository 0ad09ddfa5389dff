using System.CommandLine;
using StdDaq.Agent;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Metrics;

var configPath = CliOptions.ConfigArgument();
var brokerUrl = CliOptions.Text("--broker-url", "host[:port] or amqp:// URI", "the RabbitMQ broker (default: env BROKER_HOST, else 127.0.0.1)");
var serviceName = CliOptions.Text("--service-name", "NAME", "the agent's name in statuses and its request queue (default: env SERVICE_NAME, else <detector_name>.writer_agent)");
var tag = CliOptions.Text("--tag", "TAG", "the routing key of the requests to take (default: #, every request)");
var share = CliOptions.Share("--images",
    "scale-out writing: write share i/N of every request (ids with id % N == i) with N - 1 agents on other servers; 0/N leads (default: every image)");
var metricsPort = CliOptions.MetricsPort();
var command = new RootCommand(
    "Takes write requests from the broker, checks them, streams each run's images to StdH5Writer and publishes " +
    "their statuses (one process per detector).")
{
    configPath, brokerUrl, serviceName, tag, share, metricsPort,
};
command.SetBody((a, logger, ct) =>
{
    var config = ServiceHost.LoadConfig(a.GetValue(configPath)!, logger);
    int port = MetricsConfig.Port(a.GetValue(metricsPort), config.Metrics.WriterAgentPort, 0, "writer_agent_port");
    var options = new WriterAgentOptions
    {
        BrokerUrl = a.GetValue(brokerUrl),
        ServiceName = a.GetValue(serviceName) ?? Environment.GetEnvironmentVariable("SERVICE_NAME"),
        Tag = a.GetValue(tag) ?? "#",
        Share = a.GetValue(share),
        Metrics = (name, counters) => MetricsServer.Start(port, "WriterAgent", name, counters, logger),
        Presence = name => ServicePresence.StartAs("WriterAgent", name, File.ReadAllText(a.GetValue(configPath)!), logger),
    };
    var agent = new WriterAgentService(config, options, logger);
    agent.RunAsync(ct).GetAwaiter().GetResult();
    return 0;
});
return ServiceHost.Run(args, command);
