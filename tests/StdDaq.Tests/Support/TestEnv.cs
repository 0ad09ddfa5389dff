using System.Net;
using System.Net.Sockets;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;

namespace StdDaq.Tests.Support;

/// <summary>Unique names, free ports and paths for one test, cleaned up on dispose.</summary>
public sealed class TestEnv : IDisposable
{
    private static int _counter;
    private readonly List<string> _rings = new();

    public string Name { get; }
    public string Dir { get; }

    public TestEnv()
    {
        Name = $"t{Environment.ProcessId}x{Interlocked.Increment(ref _counter)}";
        Dir = Path.Combine(Path.GetTempPath(), "stddaq-tests", Name);
        Directory.CreateDirectory(Dir);
    }

    public static string RepoRoot
    {
        get
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d != null && !File.Exists(Path.Combine(d.FullName, "StdDaq.slnx")))
                d = d.Parent;
            return d?.FullName ?? throw new InvalidOperationException("repository root not found");
        }
    }

    /// <summary>The shared real-data folder (../shared/data next to the repository).</summary>
    public static string SharedData => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data"));

    /// <summary>A ring name that is removed when the test ends.</summary>
    public string Ring(string suffix)
    {
        string n = $"{Name}-{suffix}";
        _rings.Add(n);
        return n;
    }

    /// <summary>The first of <paramref name="count"/> consecutive free UDP ports on 127.0.0.1.</summary>
    public static int FreeUdpPorts(int count) => FreePorts(count, SocketType.Dgram, ProtocolType.Udp);

    /// <summary>The first of <paramref name="count"/> consecutive free TCP ports on 127.0.0.1.</summary>
    public static int FreeTcpPorts(int count) => FreePorts(count, SocketType.Stream, ProtocolType.Tcp);

    private static int FreePorts(int count, SocketType type, ProtocolType protocol)
    {
        for (int attempt = 0; attempt < 200; attempt++)
        {
            int start = Random.Shared.Next(20000, 60000 - count);
            var sockets = new List<Socket>();
            try
            {
                for (int i = 0; i < count; i++)
                {
                    var s = new Socket(AddressFamily.InterNetwork, type, protocol);
                    sockets.Add(s);
                    s.Bind(new IPEndPoint(IPAddress.Any, start + i));
                }
                return start;
            }
            catch (SocketException)
            {
            }
            finally
            {
                foreach (var s in sockets)
                    s.Dispose();
            }
        }
        throw new InvalidOperationException($"no free {protocol} port range");
    }

    /// <summary>A config for this test's detector, with its rings registered for cleanup.</summary>
    public DetectorConfig Config(string type, int nModules, int bitDepth, int width, int height,
        Dictionary<int, int[]>? positions, int slots = 32, double timeoutMs = 50)
    {
        string json = ConfigJson(type, nModules, bitDepth, width, height, positions, FreeUdpPorts(nModules), slots, timeoutMs);
        var cfg = DetectorConfigLoader.Parse(json);
        for (int m = 0; m < nModules; m++)
            _rings.Add(cfg.FrameBufferName(m));
        return cfg;
    }

    public string ConfigJson(string type, int nModules, int bitDepth, int width, int height,
        Dictionary<int, int[]>? positions, int port, int slots = 32, double timeoutMs = 50)
    {
        string pos = positions == null ? "" :
            ",\"module_positions\":{" + string.Join(",", positions.Select(p => $"\"{p.Key}\":[{string.Join(",", p.Value)}]")) + "}";
        return $"{{\"detector_name\":\"{Name}\",\"detector_type\":\"{type}\",\"n_modules\":{nModules},\"bit_depth\":{bitDepth}," +
            $"\"image_pixel_height\":{height},\"image_pixel_width\":{width},\"start_udp_port\":{port}{pos}," +
            $"\"frame_buffer_slots\":{slots},\"udp_frame_timeout_ms\":{timeoutMs},\"stats_collection_period\":3600}}";
    }

    public static Dictionary<int, int[]> JungfrauColumn(int n) =>
        Enumerable.Range(0, n).ToDictionary(m => m, m => new[] { 0, m * 512, 1023, m * 512 + 511 });

    /// <summary>The module_positions of an EIGER of columns x rows modules (<see cref="EigerLayout"/>), and the image size.</summary>
    public static (Dictionary<int, int[]> Positions, int Width, int Height) EigerPorts(int columns, int rows) =>
        (EigerLayout.Ports(columns, rows).Select((p, i) => (p, i)).ToDictionary(x => x.i, x => new[] { x.p.X0, x.p.Y0, x.p.X1, x.p.Y1 }),
            EigerLayout.Width(columns), EigerLayout.Height(rows));

    public void Dispose()
    {
        foreach (var r in _rings)
            ShmRing.Unlink(r);
        // Lock files and temporaries that a process killed by the test left behind.
        foreach (var pattern in new[] { $"{Name}-*.lock", $"{Name}-*.new-*" })
            foreach (var f in Directory.EnumerateFiles("/dev/shm", pattern))
                File.Delete(f);
        // ZMQ ipc:// socket files of this test's endpoints (/tmp/<name>-<m>, /tmp/std-daq-<name>-*).
        foreach (var pattern in new[] { $"{Name}-*", $"std-daq-{Name}-*" })
            foreach (var f in Directory.EnumerateFiles("/tmp", pattern))
                try
                {
                    File.Delete(f);
                }
                catch (IOException)
                {
                }
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
