using System.Diagnostics;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Memory;

namespace StdDaq.Cli;

internal static class ShmCommand
{
    private const string UsageText = "std-daq shm info <name> | std-daq shm seqlock-check <name> [--seconds S]";

    public static int Run(string[] args) => ServiceHost.Run("std-daq shm", args, UsageText, (a, logger, ct) =>
    {
        if (a.Positional.Count != 2)
            throw new UsageException("expected a sub-command and a ring name");
        string name = a.Positional[1];
        switch (a.Positional[0])
        {
            case "info":
            {
                using var ring = ShmRing.Attach(name);
                ref readonly var h = ref ring.Header;
                Console.WriteLine($"name={name} kind={h.Kind} slots={h.SlotCount} slot_bytes={h.SlotBytes} slot_stride={h.SlotStride} " +
                    $"data_offset={h.DataOffset} total_bytes={h.TotalBytes} creator_pid={h.CreatorPid} " +
                    $"created={DateTimeOffset.FromUnixTimeMilliseconds(h.CreationTimeNs / 1_000_000):O}");
                return 0;
            }
            case "seqlock-check":
                return SeqlockCheck(name, a.Double("seconds", 2, 0.01, 3600), ct);
            default:
                throw new UsageException($"unknown shm sub-command '{a.Positional[0]}'");
        }
    }, ["seconds"]);

    /// <summary>
    /// Copies slot 0 again and again under its sequence lock while another process rewrites it
    /// with a uniform byte per version. A copy the lock accepts must be uniform; prints
    /// "accepted=N busy=N torn=N bad_accepted=N" (busy: found mid-write; torn: overwritten during the copy) (bad_accepted must be 0).
    /// </summary>
    private static int SeqlockCheck(string name, double seconds, CancellationToken ct)
    {
        using var ring = ShmRing.Attach(name);
        var copy = new byte[ring.SlotBytes];
        long accepted = 0, busy = 0, torn = 0, bad = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds && !ct.IsCancellationRequested)
        {
            ulong s = ring.ReadSequence(0);
            if ((s & 1) != 0 || s == 0)
            {
                busy++;
                Thread.SpinWait(10);
                continue;
            }
            ring.SlotSpan(0).CopyTo(copy);
            if (!ring.Validate(0, s))
            {
                torn++;
                continue;
            }
            accepted++;
            byte first = copy[0];
            if (copy.AsSpan().IndexOfAnyExcept(first) >= 0)
                bad++;
        }
        Console.WriteLine($"accepted={accepted} busy={busy} torn={torn} bad_accepted={bad}");
        return bad == 0 ? 0 : 1;
    }
}
