using System.Diagnostics;
using System.Net.Sockets;
using StackExchange.Redis;

namespace StdDaq.Tests.Support;

/// <summary>
/// A private Redis (Debian's redis-server) on a free loopback port, no persistence, killed and its
/// folder removed when disposed. <see cref="Stop"/> and <see cref="Start"/> take it away and bring
/// it back on the same port.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private const string Server = "/usr/bin/redis-server";
    private Process? _process;
    private ConnectionMultiplexer? _client;

    public int Port { get; }
    public string Dir { get; }
    public string Address => $"127.0.0.1:{Port}";

    public RedisServer(bool start = true)
    {
        if (!File.Exists(Server))
            Assert.Fail($"{Server} not found: these tests need Redis; install it with: apt-get install redis-server (or run scripts/setup.sh as root)");
        Port = StdDaq.Tests.Stream.StreamSource.FreeTcpPort();
        Dir = Path.Combine(Path.GetTempPath(), $"stddaq-redis-{Port}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(Dir);
        if (start)
            Start();
    }

    /// <summary>Starts the server and waits (at most 10 s) until it answers PING.</summary>
    public void Start()
    {
        var psi = new ProcessStartInfo(Server) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Dir };
        foreach (var a in new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", Dir })
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var tcp = new TcpClient("127.0.0.1", Port);
                _client?.Dispose();
                _client = ConnectionMultiplexer.Connect($"{Address},abortConnect=true,connectTimeout=2000");
                if (_client.GetDatabase().Ping() >= TimeSpan.Zero)
                    return;
            }
            catch (Exception e) when (e is SocketException or RedisConnectionException)
            {
                Thread.Sleep(50);
            }
        }
        throw new InvalidOperationException($"redis-server on port {Port} did not answer within 10 s");
    }

    /// <summary>Kills the server (SIGKILL: as if it died).</summary>
    public void Stop()
    {
        _client?.Dispose();
        _client = null;
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            p.WaitForExit();
        }
        _process?.Dispose();
        _process = null;
    }

    /// <summary>The test's own connection.</summary>
    public IDatabase Db => (_client ?? throw new InvalidOperationException("redis-server is stopped")).GetDatabase();

    /// <summary>The environment a service needs to find this server.</summary>
    public Dictionary<string, string> Environment(string service) => new()
    {
        ["REDIS_HOST"] = "127.0.0.1",
        ["REDIS_PORT"] = Port.ToString(),
        ["SERVICE_NAME"] = service,
    };

    public void Dispose()
    {
        Stop();
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
