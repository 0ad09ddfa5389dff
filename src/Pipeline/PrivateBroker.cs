using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using RabbitMQ.Client;

namespace StdDaq.Pipeline;

/// <summary>
/// A private RabbitMQ broker on loopback (Debian's rabbitmq-server, no system service): its own
/// node name, ports, data and log folder, started as the rabbitmq user (the server refuses to run
/// as root) and stopped with SIGTERM. For `std-daq up --private-broker`, the demo and the tests.
/// </summary>
public sealed class PrivateBroker : IAsyncDisposable
{
    private const string Server = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    private readonly bool _ownsDir;
    private Process? _process;

    public int Port { get; }
    public int DistPort { get; }
    public int EpmdPort { get; }
    public string NodeName { get; }
    public string Dir { get; }

    /// <summary>The address for --broker-url.</summary>
    public string Url => $"127.0.0.1:{Port}";

    private PrivateBroker(string dir, bool ownsDir)
    {
        Dir = dir;
        _ownsDir = ownsDir;
        Port = FreePort();
        DistPort = FreePort();
        EpmdPort = FreePort();
        NodeName = $"stddaq{Port}@localhost";
    }

    /// <summary>Starts a broker and waits until it takes AMQP connections.</summary>
    public static async Task<PrivateBroker> StartAsync(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        if (!File.Exists(Server))
            throw new IOException($"{Server} not found: install Debian's rabbitmq-server (scripts/setup.sh does)");
        if (Environment.UserName != "root" && Environment.UserName != "rabbitmq")
            throw new IOException("a private RabbitMQ is started as the rabbitmq user, which needs root (run as root, or use --broker-url)");
        string dir = Path.Combine(Path.GetTempPath(), $"std-daq-rabbitmq-{Environment.ProcessId}-{Guid.NewGuid():N}"[..48]);
        var broker = new PrivateBroker(dir, ownsDir: true);
        try
        {
            await broker.StartServerAsync(timeout ?? TimeSpan.FromSeconds(60), ct);
            return broker;
        }
        catch
        {
            await broker.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the server (SIGTERM, as a crash-free broker restart would) and starts it again on the same ports and data.</summary>
    public async Task RestartAsync(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        Stop();
        await StartServerAsync(timeout ?? TimeSpan.FromSeconds(60), ct);
    }

    private async Task StartServerAsync(TimeSpan timeout, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.Combine(Dir, "mnesia"));
        Directory.CreateDirectory(Path.Combine(Dir, "log"));
        await File.WriteAllTextAsync(Path.Combine(Dir, "enabled_plugins"), "[].", ct);
        Run("chown", ["-R", "rabbitmq:rabbitmq", Dir]);
        Run("chmod", ["755", Dir]); // the rabbitmq user must be able to enter it

        var psi = new ProcessStartInfo("runuser")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Dir,
        };
        foreach (var a in new[] { "-u", "rabbitmq", "--", "env",
                     $"RABBITMQ_NODENAME={NodeName}", $"RABBITMQ_NODE_PORT={Port}", "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
                     $"RABBITMQ_DIST_PORT={DistPort}", $"ERL_EPMD_PORT={EpmdPort}",
                     $"RABBITMQ_MNESIA_BASE={Dir}/mnesia", $"RABBITMQ_LOG_BASE={Dir}/log",
                     $"RABBITMQ_ENABLED_PLUGINS_FILE={Dir}/enabled_plugins", $"RABBITMQ_PID_FILE={Dir}/pid",
                     $"RABBITMQ_FEATURE_FLAGS_FILE={Dir}/ff", $"HOME={Dir}", Server })
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi) ?? throw new IOException("cannot start runuser for rabbitmq-server");
        var output = new System.Text.StringBuilder();
        _process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var factory = new ConnectionFactory { HostName = "127.0.0.1", Port = Port, RequestedConnectionTimeout = TimeSpan.FromSeconds(2) };
        var sw = Stopwatch.StartNew();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                string text;
                lock (output)
                    text = output.ToString();
                throw new IOException($"rabbitmq-server exited with code {_process.ExitCode} while starting: {LastLines(text)}");
            }
            try
            {
                await using var c = await factory.CreateConnectionAsync(ct);
                return;
            }
            catch (Exception e) when (e is RabbitMQ.Client.Exceptions.BrokerUnreachableException or IOException)
            {
                if (sw.Elapsed > timeout)
                    throw new IOException($"rabbitmq-server on port {Port} not ready within {timeout.TotalSeconds:F0} s");
                await Task.Delay(200, ct);
            }
        }
    }

    /// <summary>Stops the server (SIGTERM to its process group, then SIGKILL after 20 s) and its epmd.</summary>
    public void Stop()
    {
        var p = Interlocked.Exchange(ref _process, null);
        if (p == null)
            return;
        // runuser → sh → beam.smp: signal the Erlang VM, which runs as rabbitmq under our node name.
        Run("pkill", ["-TERM", "-f", $"beam.smp.*{Dir}"]);
        if (!p.WaitForExit(20_000))
        {
            Run("pkill", ["-KILL", "-f", $"beam.smp.*{Dir}"]);
            p.Kill(entireProcessTree: true);
            p.WaitForExit(5_000);
        }
        p.Dispose();
        try
        {
            Run("epmd", ["-kill"], new() { ["ERL_EPMD_PORT"] = EpmdPort.ToString() });
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No epmd binary on PATH: the server started its own from the Erlang tree; it exits when idle.
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        if (_ownsDir)
        {
            try
            {
                Directory.Delete(Dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
        return ValueTask.CompletedTask;
    }

    private static void Run(string file, string[] args, Dictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? [])
            psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new IOException($"cannot run {file}");
        p.WaitForExit(30_000);
    }

    private static string LastLines(string text) =>
        string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(5));

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
