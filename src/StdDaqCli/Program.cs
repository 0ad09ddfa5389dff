using StdDaq.Cli;

// std-daq <command> ...: the detector simulator, the local pipeline and tools.
return args.Length == 0 ? Commands.Unknown(null) : args[0] switch
{
    "sim" => SimCommand.Run(args[1..]),
    "up" => UpCommand.Run(args[1..]),
    "shm" => ShmCommand.Run(args[1..]),
    "write" => BrokerCommands.Write(args[1..]),
    "kill" => BrokerCommands.Kill(args[1..]),
    "monitor" => BrokerCommands.Monitor(args[1..]),
    "--help" or "-h" or "help" => Commands.Help(),
    var other => Commands.Unknown(other),
};
