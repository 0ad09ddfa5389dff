using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Assembler;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;
using StdDaq.Tests.UdpRecv;

namespace StdDaq.Tests.Assembler;

/// <summary>
/// Real receivers (loopback UDP), or a <see cref="ModuleFrameSource"/> writing frames straight
/// into the FrameBuffers, feeding a real assembler (shared memory, zmq), and a subscriber to its
/// ImageMetadata that copies each image out of the ImageBuffer under the sequence lock.
/// </summary>
public sealed class AssemblerHarness : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _task;
    private readonly ZmqSocket _metadata;

    public ReceiverHarness? Receivers { get; }
    /// <summary>Set instead of <see cref="Receivers"/> when the harness was built without UDP.</summary>
    public ModuleFrameSource? Source { get; }
    public StdDaq.Assembler.Assembler Assembler { get; }
    public List<(ImageMetadata Meta, long ArrivalTicks)> Images { get; } = new();
    /// <summary>Images overwritten before they could be copied.</summary>
    public int Overrun { get; private set; }

    public AssemblerHarness(TestEnv env, DetectorConfig config, AssemblerOptions? options = null, IEnumerable<int>? receiverModules = null,
        bool udp = true)
    {
        env.Ring("image");
        if (udp)
            Receivers = new ReceiverHarness(config, receiverModules);
        else
            Source = new ModuleFrameSource(config);
        Assembler = new StdDaq.Assembler.Assembler(config, NullLogger.Instance, options);
        _metadata = ZmqSocket.Subscriber(config.AssemblerEndpoint, receiveTimeoutMs: 20);
        _task = Assembler.RunAsync(_stop.Token);
        Thread.Sleep(200); // let the subscriptions reach the publishers
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
        Receivers?.Dispose();
        _stop.Cancel();
        _task.Wait(TimeSpan.FromSeconds(10));
        _metadata.Dispose();
        Assembler.Dispose();
        Source?.Dispose();
    }
}
