using System.Runtime.InteropServices;
using StdDaq.StreamChild;

// The replication fault tests' helpers (tests/StdDaq.Tests/Stream/ReplicationFaultTests.cs), one per
// process on a test server:
//   source <config> <count> <rate_hz> <go_file>  the assembler's place: ImageBuffer + ImageMetadata of ids 1..count
//   verify <config> <last_id> <wait_ms>          the replica's ImageBuffer against the source's pattern (one JSON line)
//   proxy <listen_port> <host> <port> <k,k,..>   TCP 127.0.0.1:listen_port → host:port, image bytes of messages k flipped
using var stop = new CancellationTokenSource();
using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
try
{
    return args switch
    {
        ["source", var config, var count, var rate, var go] => Source.Run(config, ulong.Parse(count), double.Parse(rate), go, stop.Token),
        ["verify", var config, var last, var wait] => Verify.Run(config, ulong.Parse(last), int.Parse(wait)),
        ["proxy", var listen, var host, var port, var corrupt] => CorruptingProxy.Run(int.Parse(listen), host, int.Parse(port),
            corrupt == "-" ? [] : corrupt.Split(',').Select(long.Parse).ToHashSet(), stop.Token),
        _ => Usage(),
    };
}
catch (Exception e) when (e is FormatException or OverflowException)
{
    Console.Error.WriteLine($"StdDaq.StreamChild: {e.Message}");
    return 2;
}
catch (Exception e)
{
    // One line, as every program here: a config that is not there, a ring missing, a port taken.
    Console.Error.WriteLine($"StdDaq.StreamChild {args[0]}: {e.GetType().Name}: {e.Message}");
    return 1;
}

static int Usage()
{
    Console.Error.WriteLine("usage: StdDaq.StreamChild source <config> <count> <rate_hz> <go_file> | verify <config> <last_id> <wait_ms> | proxy <listen_port> <host> <port> <k,k,...|->");
    return 2;
}
