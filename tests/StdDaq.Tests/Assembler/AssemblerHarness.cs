using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Assembler;
using StdDaq.Cli.Sim;
using StdDaq.Pipeline;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;
using StdDaq.Tests.UdpRecv;

namespace StdDaq.Tests.Assembler;

/// <summary>
/// Real receivers (loopback UDP), or a <see cref="ModuleFrameSource"/> writing frames straight
/// into the FrameBuffers, feeding a real assembler (shared memory, zmq), composed by
/// <see cref="DaqPipeline"/> as `std-daq up` composes them; and a subscriber to the ImageMetadata
/// that copies each image out of the ImageBuffer under the sequence lock.
/// </summary>
public sealed class AssemblerHarness : IDisposable
{
    private readonly ZmqSocket _metadata;
    private DaqPipeline? _pipeline;

    public ReceiverHarness? Receivers { get; }
    /// <summary>Set instead of <see cref="Receivers"/> when the harness was built without UDP.</summary>
    public ModuleFrameSource? Source { get; }
    public StdDaq.Assembler.Assembler Assembler => _pipeline!.Assembler!;
    public List<(ImageMetadata Meta, long ArrivalTicks)> Images { get; } = new();
    /// <summary>Images overwritten before they could be copied.</summary>
    public int Overrun { get; private set; }

    /// <summary>
    /// Starts the stages and returns once this harness's subscribers (to the assembler and, over
    /// UDP, to the receivers) have made their handshakes; see <see cref="SubscriberConnections"/>
    /// for what that proves. The assembler's own subscriptions are not watched here: a
    /// <see cref="ModuleFrameSource"/> reports them (WaitForSubscribers, which the tests call
    /// before they publish); the receivers' plain PUBs do not.
    /// </summary>
    public AssemblerHarness(TestEnv env, DetectorConfig config, AssemblerOptions? options = null, IEnumerable<int>? receiverModules = null,
        bool udp = true)
    {
        env.Ring("image");
        var connections = new SubscriberConnections();
        // Subscribed before the assembler binds, so the handshake can be waited for.
        _metadata = connections.Subscribe(config.AssemblerEndpoint, receiveTimeoutMs: 20);
        try
        {
            var stages = new PipelineOptions { ReceiverModules = [], Bind = IPAddress.Loopback, AssemblerOptions = options, Writer = false };
            if (udp)
            {
                var modules = (receiverModules ?? Enumerable.Range(0, config.NModules)).ToList();
                Receivers = new ReceiverHarness(modules.Select(m => (config, m)).ToList(),
                    () => _pipeline = new DaqPipeline(config, stages with { ReceiverModules = modules }, NullLoggerFactory.Instance));
            }
            else
            {
                Source = new ModuleFrameSource(config);
                _pipeline = new DaqPipeline(config, stages, NullLoggerFactory.Instance);
            }
            connections.WaitAll(TimeSpan.FromSeconds(20));
        }
        catch
        {
            connections.Dispose();
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Collects ImageMetadata until <paramref name="expected"/> images arrived, the time is up, or
    /// none came for <paramref name="quiet"/>; hands each image (copied, sequence lock checked) and
    /// its slot header to <paramref name="check"/>.
    /// </summary>
    public void Collect(int expected, TimeSpan timeout, Action<ImageMetadata, byte[], SlotHeader>? check = null, TimeSpan? quiet = null)
    {
        var buffer = new byte[ImageMetadata.Size + 1];
        var ring = Assembler.ImageRing;
        var image = new byte[Assembler.Layout.ImageBytes];
        var deadline = DateTime.UtcNow + timeout;
        var last = DateTime.UtcNow;
        while (Images.Count < expected && DateTime.UtcNow < deadline && (quiet == null || DateTime.UtcNow - last < quiet))
        {
            int n = _metadata.Receive(buffer);
            if (n < 0)
                continue;
            Assert.Equal(ImageMetadata.Size, n);
            last = DateTime.UtcNow;
            var meta = ImageMetadata.Read(buffer);
            Images.Add((meta, System.Diagnostics.Stopwatch.GetTimestamp()));
            if (check == null)
                continue;
            if (!TryCopy(ring, meta.Id, image, out var header))
            {
                Overrun++;
                continue;
            }
            check(meta, image, header);
        }
    }

    /// <summary>Copies image <paramref name="id"/> out of the ring under its sequence lock; false if it was overwritten.</summary>
    public static bool TryCopy(ShmRing ring, ulong id, byte[] image, out SlotHeader header)
    {
        header = default;
        if (!ring.TryBeginRead(id, out int slot, out ulong seq))
            return false;
        ring.SlotSpan(slot)[..image.Length].CopyTo(image);
        header = ring.Slot(slot);
        return ring.Validate(slot, seq) && header.ImageId == id;
    }

    /// <summary>The modules an image slot header says are not in the image (their bit clear), checked against its count.</summary>
    public static int[] MissingModules(in SlotHeader header, int nModules)
    {
        var missing = new List<int>();
        for (int m = 0; m < nModules; m++)
            if (!header.HasModule(m))
                missing.Add(m);
        Assert.Equal((uint)missing.Count, header.NMissingModules);
        return missing.ToArray();
    }

    /// <summary>The expected image from the simulator pattern (see <see cref="SimulatedImage"/>).</summary>
    public static byte[] ExpectedImage(DetectorConfig config, ulong imageId, Func<int, bool> present) =>
        SimulatedImage.Expected(config, imageId, present);

    public void Dispose()
    {
        _pipeline?.Dispose();
        Receivers?.Dispose();
        _metadata.Dispose();
        Source?.Dispose();
    }
}
