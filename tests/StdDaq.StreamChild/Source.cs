using System.Diagnostics;
using StdDaq.Shared.Config;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.Testing;

namespace StdDaq.StreamChild;

/// <summary>
/// The source server's assembler, replaced by a known count of images: creates the ImageBuffer,
/// binds the ImageMetadata XPUB, waits for a subscriber (the sender) and for the go file, then
/// writes and announces ids 1..count at a fixed rate (<see cref="ImagePattern"/>); it never waits
/// for anyone after that. Prints "subscribed", "published N" every 25 ids and "published all N",
/// then keeps the ring and the endpoint until SIGTERM (at most 5 minutes).
/// </summary>
public static class Source
{
    public static int Run(string configPath, ulong count, double rateHz, string goFile, CancellationToken ct)
    {
        var config = DetectorConfigLoader.Load(configPath);
        using var ring = ShmRing.CreateOrAttach(config.ImageBufferName, RingKind.ImageBuffer, config.ImageBytes, config.ImageBufferSlotCount);
        using var publisher = ZmqSocket.Publisher(config.AssemblerEndpoint, sendHwm: 1_000_000, seeSubscriptions: true);
        publisher.SetInt(Zmq.XPUB_VERBOSE, 1);
        Console.WriteLine("ready");
        var buffer = new byte[64];
        var wait = Stopwatch.StartNew();
        while (!(publisher.WaitReadable(TimeSpan.FromMilliseconds(100)) && publisher.TryReceive(buffer) >= 1 && buffer[0] == 1))
            if (ct.IsCancellationRequested || wait.Elapsed > TimeSpan.FromSeconds(60))
                return Fail("no subscriber within 60 s");
        Console.WriteLine("subscribed");
        while (!File.Exists(goFile))
        {
            if (ct.IsCancellationRequested || wait.Elapsed > TimeSpan.FromSeconds(120))
                return Fail($"no {goFile} within 120 s");
            Thread.Sleep(10);
        }
        var meta = new byte[ImageMetadata.Size];
        var clock = Stopwatch.StartNew();
        for (ulong id = 1; id <= count && !ct.IsCancellationRequested; id++)
        {
            var due = TimeSpan.FromSeconds((id - 1) / rateHz);
            if (clock.Elapsed < due)
                Thread.Sleep(due - clock.Elapsed);
            ImagePattern.Write(ring, id);
            ImagePattern.Metadata(id, config.ImagePixelHeight, config.ImagePixelWidth).Write(meta);
            if (!publisher.TrySend(meta))
                return Fail($"metadata of {id} not sent");
            if (id % 25 == 0)
                Console.WriteLine($"published {id}");
        }
        Console.WriteLine($"published all {count} in {clock.Elapsed.TotalSeconds:F2} s");
        ct.WaitHandle.WaitOne(TimeSpan.FromMinutes(5));
        return 0;
    }

    private static int Fail(string why)
    {
        Console.Error.WriteLine($"StdDaq.StreamChild source: {why}");
        return 1;
    }
}
