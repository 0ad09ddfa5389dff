namespace StdDaq.Cli;

internal static class Commands
{
    public static int Usage(int code = 2)
    {
        (code == 0 ? Console.Out : Console.Error).WriteLine("""
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
        return code;
    }
}
