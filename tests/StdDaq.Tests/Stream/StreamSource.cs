using System.Net;
using System.Net.Sockets;
using StdDaq.Shared.Config;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.Testing;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Stream;

/// <summary>
/// The source server of a replication test, in the assembler's place: the detector's ImageBuffer,
/// filled by the test with a pattern every pixel of which depends on the image id, and the
/// ImageMetadata stream on an XPUB (which sees its subscribers, so the test waits for the sender's
/// subscription instead of sleeping). Also the replica's config: the same detector under another
/// name, as a replica on the same host needs.
/// </summary>
public sealed class StreamSource : IDisposable
{
    public const int Slots = 16;
    private readonly ZmqSocket _publisher;
    private readonly byte[] _buffer = new byte[64];

    public DetectorConfig Config { get; }
    public ShmRing Ring { get; }
    /// <summary>Every ImageMetadata published, by id (the bytes as sent).</summary>
    public Dictionary<ulong, byte[]> Published { get; } = [];

    /// <summary>The config as a file, for the services run as processes.</summary>
    public string ConfigPath { get; }

    public StreamSource(TestEnv env)
    {
        env.Ring("image");
        string json = env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1), TestEnv.FreeUdpPorts(1));
        json = json[..^1] + $",\"image_buffer_slots\":{Slots}}}";
        ConfigPath = Path.Combine(env.Dir, "source.json");
        File.WriteAllText(ConfigPath, json);
        Config = DetectorConfigLoader.Parse(json);
        Ring = ShmRing.CreateOrAttach(Config.ImageBufferName, RingKind.ImageBuffer, Config.ImageBytes, Config.ImageBufferSlotCount);
        _publisher = ZmqSocket.Publisher(Config.AssemblerEndpoint, seeSubscriptions: true);
        // Every subscription, not only the first to a topic: a second or restarted sender is seen too.
        _publisher.SetInt(StdDaq.Shared.Interop.Zmq.XPUB_VERBOSE, 1);
    }

    /// <summary>The replica's config: this detector named <c>&lt;name&gt;-&lt;suffix&gt;</c>, its ImageBuffer registered for cleanup.</summary>
    public DetectorConfig Replica(TestEnv env, string suffix = "replica")
    {
        env.Ring($"{suffix}-image");
        return Config with { DetectorName = $"{Config.DetectorName}-{suffix}" };
    }

    /// <summary>Waits until a subscriber (a sender) has subscribed; unsubscriptions of subscribers that left are passed over.</summary>
    public void WaitForSubscriber(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !_publisher.WaitReadable(left))
                throw new TimeoutException($"no subscriber to {Config.AssemblerEndpoint}");
            if (_publisher.TryReceive(_buffer) >= 1 && _buffer[0] == 1)
                return;
        }
    }

    /// <summary>The pixel of image <paramref name="id"/> at index i.</summary>
    public static ushort Pixel(ulong id, int i) => ImagePattern.Pixel(id, i);

    /// <summary>Writes image <paramref name="id"/> into its slot (pattern, header fields derived from the id) under the sequence lock.</summary>
    public void Write(ulong id) => ImagePattern.Write(Ring, id);

    /// <summary>Every 5th image is incomplete, so statuses other than good travel too.</summary>
    public static ImageStatus Status(ulong id) => ImagePattern.Status(id);

    /// <summary>Publishes the ImageMetadata of image <paramref name="id"/> (as the assembler would).</summary>
    public void Announce(ulong id)
    {
        var meta = ImagePattern.Metadata(id, 512, 1024);
        var bytes = new byte[ImageMetadata.Size];
        meta.Write(bytes);
        Published[id] = bytes;
        Assert.True(_publisher.TrySend(bytes));
    }

    /// <summary>Writes and announces images <paramref name="first"/>..<paramref name="last"/>.</summary>
    public void Images(ulong first, ulong last)
    {
        for (ulong id = first; id <= last; id++)
        {
            Write(id);
            Announce(id);
        }
    }

    /// <summary>A TCP port free on 127.0.0.1 now.</summary>
    public static int FreeTcpPort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>Checks a condition (a counter of another thread) until it holds; fails the test at the timeout.</summary>
    public static void WaitUntil(Func<bool> condition, string what, double seconds = 15)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            Thread.Sleep(5);
        }
    }

    public void Dispose()
    {
        _publisher.Dispose();
        Ring.Dispose();
    }
}
