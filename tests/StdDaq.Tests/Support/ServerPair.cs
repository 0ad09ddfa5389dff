using System.Diagnostics;

namespace StdDaq.Tests.Support;

/// <summary>
/// Two "servers" on this machine: each a network namespace (joined to the other by a veth pair,
/// addresses of a /30 of 10.231.0.0/16 that exist only inside them) plus a mount namespace of its
/// own with a private <c>/dev/shm</c> and <c>/tmp</c>, so processes on both use exactly the same
/// ring and endpoint names without meeting. Processes join a server through
/// <c>nsenter --net --mount</c> (<see cref="Command"/>), which execs, so a started process's pid is
/// the program's own. While the pair exists the host routes its /30 to "unreachable": an address of
/// theirs used from the host fails at once instead of leaving the machine. Needs root. Files the
/// processes read or write must not lie under /tmp (hidden there): use <see cref="Dir"/>.
/// </summary>
public sealed class ServerPair : IDisposable
{
    private const string MountState = "/run/stddaq-ns";
    private static int _counter;

    private readonly string _route;
    private bool _disposed;

    /// <summary>The two servers' names (their netns names; ≤ 12 characters).</summary>
    public string A { get; }
    public string B { get; }

    /// <summary>Their addresses on the veth link: reachable from inside either server only.</summary>
    public string AddressA { get; }
    public string AddressB { get; }

    /// <summary>A folder both servers and the host see (under /var/tmp, not /tmp), removed at dispose.</summary>
    public string Dir { get; }

    public ServerPair()
    {
        if (Environment.UserName != "root")
            Assert.Fail("these tests make network and mount namespaces, which needs root (run them as root, as CI does)");
        int n = Interlocked.Increment(ref _counter);
        // Unique per process and pair: pid and counter pick the /30 and the names.
        int id = (Environment.ProcessId * 16 + n) & 0x3FFF; // 14 bits: 16384 /30s of 10.231.0.0/16
        string tag = $"{Environment.ProcessId % 100000}{(char)('a' + n % 26)}";
        A = $"sdA{tag}";
        B = $"sdB{tag}";
        int third = id >> 6, fourth = (id & 63) << 2;
        AddressA = $"10.231.{third}.{fourth + 1}";
        AddressB = $"10.231.{third}.{fourth + 2}";
        _route = $"10.231.{third}.{fourth}/30";
        Dir = Path.Combine("/var/tmp", $"stddaq-ns-{Environment.ProcessId}-{n}");
        try
        {
            Directory.CreateDirectory(Dir);
            Run("ip", "route", "add", "unreachable", _route);
            Run("ip", "netns", "add", A);
            Run("ip", "netns", "add", B);
            Run("ip", "link", "add", $"v{A}", "type", "veth", "peer", "name", $"v{B}");
            Run("ip", "link", "set", $"v{A}", "netns", A);
            Run("ip", "link", "set", $"v{B}", "netns", B);
            Run("ip", "-n", A, "addr", "add", $"{AddressA}/30", "dev", $"v{A}");
            Run("ip", "-n", B, "addr", "add", $"{AddressB}/30", "dev", $"v{B}");
            foreach (var (ns, dev) in new[] { (A, $"v{A}"), (B, $"v{B}") })
            {
                Run("ip", "-n", ns, "link", "set", "lo", "up");
                Run("ip", "-n", ns, "link", "set", dev, "up");
            }
            Run("sh", "-c", $"mkdir -p {MountState} && (mountpoint -q {MountState} || (mount --bind {MountState} {MountState} && mount --make-private {MountState}))");
            foreach (var ns in new[] { A, B })
            {
                File.WriteAllBytes(MountFile(ns), []);
                // nsenter --net, not "ip netns exec" (which makes a throw-away mount namespace):
                // the mount namespace is pinned on a file for the server's later processes.
                Run("nsenter", $"--net=/run/netns/{ns}", "unshare", $"--mount={MountFile(ns)}", "--propagation", "private",
                    "sh", "-c", "mount -t tmpfs -o size=2g,mode=1777 tmpfs /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /tmp");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private static string MountFile(string ns) => Path.Combine(MountState, ns + ".mnt");

    /// <summary>The command line that runs <paramref name="program"/> with its arguments on server <paramref name="server"/>.</summary>
    public string[] Command(string server, string program, params string[] args) =>
        ["nsenter", $"--net=/run/netns/{server}", $"--mount={MountFile(server)}", "--", program, .. args];

    /// <summary>Runs a program on a server to its end (at most <paramref name="timeout"/>, default 60 s).</summary>
    public Programs.Result Exec(string server, string program, string[] args, TimeSpan? timeout = null)
    {
        var cmd = Command(server, program, args);
        return Programs.RunProcess(cmd[0], cmd[1..], timeout);
    }

    /// <summary>Starts one of our programs (a dll built next to the tests) on a server, its output collected; the caller disposes it.</summary>
    public ServiceProcess StartOurs(string server, string program, params string[] args) =>
        new($"{program}@{server}", (IReadOnlyList<string>)Command(server, "dotnet", [Programs.Dll(program), .. args]));

    /// <summary>Starts a program on a server; the caller ends it (its pid is the program's).</summary>
    public Process Start(string server, string program, params string[] args)
    {
        var cmd = Command(server, program, args);
        var psi = new ProcessStartInfo(cmd[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in cmd[1..])
            psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    private static void Run(string file, params string[] args)
    {
        var r = Programs.RunProcess(file, args, TimeSpan.FromSeconds(30));
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {r.ExitCode}: {r.Stderr.Trim()}");
    }

    private static void TryRun(string file, params string[] args) => Programs.RunProcess(file, args, TimeSpan.FromSeconds(30));

    /// <summary>
    /// Kills what still runs in the servers, then removes their mounts, namespaces (and the veth
    /// with them), the route and the folder. The caller stops its own processes first.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var ns in new[] { A, B })
        {
            var pids = Programs.RunProcess("ip", ["netns", "pids", ns], TimeSpan.FromSeconds(10)).Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var pid in pids)
                TryRun("kill", "-9", pid);
            TryRun("umount", MountFile(ns));
            try
            {
                File.Delete(MountFile(ns));
            }
            catch (IOException)
            {
            }
            TryRun("ip", "netns", "del", ns);
        }
        TryRun("sh", "-c", $"mountpoint -q {MountState} && [ -z \"$(ls -A {MountState})\" ] && umount {MountState} && rmdir {MountState}; true");
        TryRun("ip", "route", "del", "unreachable", _route);
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
