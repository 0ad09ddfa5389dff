using System.CommandLine;
using StdDaq.Cli;
using StdDaq.Shared.Hosting;

var command = new RootCommand("std-daq: the detector simulator, the whole pipeline in one process, the broker client, shared-memory tools and the services' configs and heartbeats in Redis.")
{
    SimCommand.Create(), UpCommand.Create(), BrokerCommands.Write(), BrokerCommands.Kill(), BrokerCommands.Monitor(), ShmCommand.Create(), RedisCommands.Config(), RedisCommands.Status(),
};
return ServiceHost.Run(args, command);
