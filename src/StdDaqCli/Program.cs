using System.CommandLine;
using StdDaq.Cli;
using StdDaq.Shared.Hosting;

var command = new RootCommand("std-daq: the detector simulator, the whole pipeline in one process, the broker client and shared-memory tools.")
{
    SimCommand.Create(), UpCommand.Create(), BrokerCommands.Write(), BrokerCommands.Kill(), BrokerCommands.Monitor(), ShmCommand.Create(),
};
return ServiceHost.Run(args, command);
