using StdDaq.Shared.Hosting;

namespace StdDaq.Cli;

internal static class Commands
{
    /// <summary>No command or an unknown one: a usage error, reported like every other (one line, a usage line, exit 2).</summary>
    public static int Unknown(string? command) => ServiceHost.Report("std-daq", "std-daq <command> ... (sim, up, write, kill, monitor, shm; std-daq --help lists them)",
        new UsageException(command == null ? "expected a command" : $"unknown command '{command}'"));

    public static int Help()
    {
        Console.WriteLine("""
            usage: std-daq <command> ...
              sim <config.json> [options]   send simulated detector UDP packets (see std-daq sim --help)
              up <config.json> [options]    run the whole pipeline locally (receivers, assembler, writer, agent; --private-broker,
                                --simulate, --write FILE --images N: the demo)
              write <output_file> <n_images> [--wait] [--timeout S]
                                            ask the WriterAgent (through the broker) to write the next N images
              kill <request_id>             end a running write request early (file closed, marked interrupted)
              monitor                       print every status message (time, request id, service, action, message)
              shm list                      every std-daq ring, temporary and lock in /dev/shm, who maps it
              shm rm <name>... | --detector <det> [--force]
                                            remove rings (refused while a live process maps one)
              shm info <name>               describe a shared-memory ring (/dev/shm/<name>)
              shm seqlock-check <name> [--seconds S]
                                            read slot 0 of a ring under its sequence lock and report torn reads
            """);
        return 0;
    }
}
