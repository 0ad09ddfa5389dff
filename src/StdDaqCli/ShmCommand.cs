using System.CommandLine;
using System.Diagnostics;
using System.Text.RegularExpressions;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;

namespace StdDaq.Cli;

internal static partial class ShmCommand
{
    public static Command Create()
    {
        var list = new Command("list", "Shows every std-daq segment, temporary and lock in /dev/shm: kind, geometry, creator, state, who maps it.");
        list.SetBody((a, logger, ct) => List());

        var names = new Argument<string[]>("name") { Arity = ArgumentArity.ZeroOrMore, Description = "segments, temporaries or locks in /dev/shm" };
        var detector = CliOptions.Text("--detector", "detector_name", "remove every segment, temporary and stale lock of this detector");
        var force = CliOptions.Flag("--force", "also remove a segment a live process maps, or a file that is not std-daq's");
        var rm = new Command("rm", "Removes std-daq shared memory; refuses (exit 1) while a live process maps a segment or holds a lock.")
        {
            names, detector, force,
        };
        rm.SetBody((a, logger, ct) =>
        {
            var given = a.GetValue(names) ?? [];
            if (a.GetValue(detector) is { } det)
            {
                if (given.Length != 0)
                    throw new UsageException("rm takes names or --detector, not both");
                return RemoveDetector(det, a.GetValue(force));
            }
            if (given.Length == 0)
                throw new UsageException("rm needs a segment name or --detector <detector_name>");
            return Remove([.. given], a.GetValue(force), explicitNames: true);
        });

        var infoName = new Argument<string>("name") { Description = "a ring in /dev/shm" };
        var info = new Command("info", "Describes a shared-memory ring: kind, slots, geometry, creator.") { infoName };
        info.SetBody((a, logger, ct) =>
        {
            string name = a.GetValue(infoName)!;
            using var ring = ShmRing.Attach(name);
            ref readonly var h = ref ring.Header;
            Console.WriteLine($"name={name} kind={h.Kind} slots={h.SlotCount} slot_bytes={h.SlotBytes} slot_stride={h.SlotStride} " +
                $"data_offset={h.DataOffset} total_bytes={h.TotalBytes} creator_pid={h.CreatorPid} " +
                $"created={DateTimeOffset.FromUnixTimeMilliseconds(h.CreationTimeNs / 1_000_000):O}");
            return 0;
        });

        var checkName = new Argument<string>("name") { Description = "a ring in /dev/shm that another process keeps rewriting" };
        var seconds = CliOptions.Number("--seconds", "S", "how long to check", 2.0, 0.01, 3600);
        var seqlockCheck = new Command("seqlock-check",
            "Reads slot 0 of a ring again and again under its sequence lock and reports torn reads (bad_accepted must be 0).")
        {
            checkName, seconds,
        };
        seqlockCheck.SetBody((a, logger, ct) => SeqlockCheck(a.GetValue(checkName)!, a.GetValue(seconds), ct));

        return new Command("shm", "Shared-memory tools: list, remove and inspect rings in /dev/shm.") { list, rm, info, seqlockCheck };
    }

    [GeneratedRegex(@"^(?<ring>.+)\.new-(?<pid>\d+)-\d+$")]
    private static partial Regex TemporaryRegex();

    /// <summary>What a /dev/shm file is, as far as std-daq is concerned.</summary>
    private sealed record Entry(string Name, string Kind, string Geometry, string Creator, string State, bool Ours);

    private static Entry Describe(string name)
    {
        string path = ShmRing.PathOf(name);
        if (name.EndsWith(".lock", StringComparison.Ordinal))
        {
            var (pid, role) = RoleLock.ReadHolder(path);
            bool held = RoleLock.IsHeld(path);
            return new Entry(name, "lock", "-", pid > 0 ? $"pid {pid}" : "-",
                held ? $"held: {role}" : "not held (left by a process that died)", role != null);
        }
        if (TemporaryRegex().Match(name) is { Success: true } t)
        {
            int pid = int.Parse(t.Groups["pid"].Value);
            bool alive = Libc.ProcessAlive(pid);
            return new Entry(name, "temporary", "-", $"pid {pid}{(alive ? "" : " (gone)")}",
                alive ? $"being created for {t.Groups["ring"].Value}" : "left by a creator that died", true);
        }
        var ring = ShmRing.TryAttach(name, null, null, null, writable: false, out var problem, out string message);
        if (ring != null)
        {
            using (ring)
            {
                ref readonly var h = ref ring.Header;
                bool alive = Libc.ProcessAlive(h.CreatorPid);
                return new Entry(name, h.Kind.ToString(), $"{h.SlotCount} x {h.SlotBytes} B ({h.TotalBytes / (1024.0 * 1024):0.#} MiB)",
                    $"pid {h.CreatorPid}{(alive ? "" : " (gone)")}", "ready", true);
            }
        }
        return problem switch
        {
            ShmRing.AttachProblem.Unfinished => new Entry(name, "?", "-", "-", $"unfinished: {message}", true),
            ShmRing.AttachProblem.Missing => new Entry(name, "?", "-", "-", "removed meanwhile", false),
            ShmRing.AttachProblem.NotARing => new Entry(name, "?", "-", "-", message, false),
            _ => new Entry(name, "?", "-", "-", message, true),
        };
    }

    private static int List()
    {
        var entries = Directory.EnumerateFiles("/dev/shm").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)
            .Select(Describe).Where(e => e.Ours).ToList();
        if (entries.Count == 0)
        {
            Console.WriteLine("no std-daq shared memory in /dev/shm");
            return 0;
        }
        var rows = entries.Select(e =>
        {
            var users = e.Kind is "lock" ? [] : ShmUsers.Of(e.Name);
            return new[] { e.Name, e.Kind, e.Geometry, e.Creator, e.State, users.Count == 0 ? "-" : ShmUsers.Describe(users) };
        }).ToList();
        string[] head = ["NAME", "KIND", "SLOTS", "CREATOR", "STATE", "USED BY"];
        var widths = head.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length))).ToArray();
        Console.WriteLine(string.Join("  ", head.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var r in rows)
            Console.WriteLine(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        return 0;
    }

    private static int RemoveDetector(string detector, bool force)
    {
        var pattern = new Regex($@"^{Regex.Escape(detector)}-(\d+|image|writer|writer_agent)(\.new-\d+-\d+|\.lock)?$");
        var names = Directory.EnumerateFiles("/dev/shm").Select(Path.GetFileName).OfType<string>()
            .Where(n => pattern.IsMatch(n)).Order(StringComparer.Ordinal).ToList();
        if (names.Count == 0)
        {
            Console.WriteLine($"no shared memory of detector '{detector}' in /dev/shm");
            return 0;
        }
        return Remove(names, force, explicitNames: false);
    }

    /// <summary>
    /// Removes std-daq segments, temporaries and lock files. A segment some live process maps, or a
    /// lock a live process holds, stays unless forced (that process keeps its mapping, but a
    /// restarted peer would make a new ring it never sees). Files that are not std-daq's stay.
    /// </summary>
    private static int Remove(List<string> names, bool force, bool explicitNames)
    {
        int refused = 0;
        foreach (var name in names)
        {
            if (name.Contains('/') || name is "." or "..")
                throw new UsageException($"'{name}' is not a name in /dev/shm");
            string path = ShmRing.PathOf(name);
            if (!File.Exists(path))
            {
                Console.Error.WriteLine($"std-daq shm rm: {path} does not exist");
                refused++;
                continue;
            }
            var e = Describe(name);
            if (!e.Ours && !force)
            {
                Console.Error.WriteLine($"std-daq shm rm: {path} is not std-daq's ({e.State}); left alone (--force removes it)");
                refused++;
                continue;
            }
            if (e.Kind == "lock" && RoleLock.IsHeld(path))
            {
                // A held lock is a running service: removing the file would let a second instance start.
                if (explicitNames)
                {
                    Console.Error.WriteLine($"std-daq shm rm: {path} is {e.State} ({e.Creator}); stop that service first");
                    refused++;
                }
                continue;
            }
            var users = e.Kind == "lock" ? [] : ShmUsers.Of(name);
            if (users.Count > 0 && !force)
            {
                Console.Error.WriteLine($"std-daq shm rm: {path} is in use by {ShmUsers.Describe(users)}; stop it first, or --force");
                refused++;
                continue;
            }
            if (Libc.unlink(path) != 0)
            {
                Console.Error.WriteLine($"std-daq shm rm: cannot remove {path}: {Libc.strerror(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}");
                refused++;
                continue;
            }
            Console.WriteLine(users.Count > 0 ? $"removed {path} (still mapped by {ShmUsers.Describe(users)})" : $"removed {path}");
        }
        return refused == 0 ? 0 : 1;
    }

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
