using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using StdDaq.Agent.Broker;
using StdDaq.Assembler;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;

namespace StdDaq.Cli;

/// <summary>
/// The write part of `std-daq up --write`: sends the request through the broker like
/// `std-daq write --wait`, then opens the file with libhdf5 and prints what is in it: shape, dtype,
/// image ids, statuses, attributes, and every image compared with the simulator's pattern.
/// </summary>
internal static class DemoRequest
{
    public static async Task<int> RunAsync(DetectorConfig config, string brokerUrl, string file, long n, string compression,
        bool overwrite, TimeSpan timeout, ILogger logger, CancellationToken ct)
    {
        await using var client = await BrokerClient.ConnectAsync(brokerUrl, logger, ct);
        var body = new JsonObject { ["output_file"] = file, ["n_images"] = n, ["compression"] = compression };
        if (overwrite)
            body["overwrite"] = true;
        // The request asks for the next N images: sent once the assembler publishes images.
        if (!await Task.Run(() => WaitForImages(config, timeout, ct), ct))
        {
            Console.Error.WriteLine($"std-daq up: no image from the assembler on {config.AssemblerEndpoint} within {timeout.TotalSeconds:0} s");
            return 1;
        }
        Console.WriteLine($"std-daq write {file} {n} --wait   (compression {compression})");
        Console.Write("request id: ");
        string id = await client.SendRequestAsync(body.ToJsonString(), "", ct);
        Console.WriteLine(id);
        var (code, final) = await BrokerCommands.WaitAsync(client, id, n, timeout, ct);
        if (final == null || !File.Exists(file))
            return 1;
        return Check(config, file, n) && code == 0 ? 0 : 1;
    }

    /// <summary>True once an ImageMetadata arrives on the assembler's endpoint (images flow); false at the timeout.</summary>
    private static bool WaitForImages(DetectorConfig config, TimeSpan timeout, CancellationToken ct)
    {
        using var images = ZmqSocket.Subscriber(config.AssemblerEndpoint, receiveTimeoutMs: 0);
        var buffer = new byte[ImageMetadata.Size];
        var deadline = DateTime.UtcNow + timeout;
        while (!ct.IsCancellationRequested && DateTime.UtcNow < deadline)
            if (images.WaitReadable(TimeSpan.FromMilliseconds(200)) && images.TryReceive(buffer) > 0)
                return true;
        return false;
    }

    /// <summary>Reads the file back and prints its summary; false if anything differs from what was asked.</summary>
    public static bool Check(DetectorConfig config, string file, long n)
    {
        using var h5 = Hdf5File.OpenRead(file);
        long[] shape = h5.Shape("/entry/data/data");
        string dtype = h5.TypeName("/entry/data/data");
        var ids = new ulong[shape[0]];
        h5.ReadUInt64("/entry/data/image_id", ids);
        var status = new ushort[shape[0]];
        h5.ReadUInt16("/entry/data/status", status);
        Console.WriteLine($"file {file} ({new FileInfo(file).Length / 1e6:F1} MB):");
        Console.WriteLine($"  /entry/data/data: shape [{string.Join(", ", shape)}], {dtype}");
        bool consecutive = ids.Length > 0 && ids.Zip(ids.Skip(1)).All(p => p.Second == p.First + 1);
        Console.WriteLine(ids.Length == 0 ? "  image ids: none"
            : $"  image ids: {ids[0]} .. {ids[^1]} ({(consecutive ? "consecutive" : "NOT consecutive")})");
        int Count(ImageStatus which) => status.Count(s => s == (ushort)which);
        Console.WriteLine($"  status: {Count(ImageStatus.Good)} good, {Count(ImageStatus.Incomplete)} incomplete, " +
            $"{Count(ImageStatus.IdMismatch)} id mismatch, {Count(ImageStatus.NotWritten)} not written");

        int bad = 0;
        if (config.Kind is not (DetectorKind.JungfrauConverted))
        {
            var image = new byte[(long)config.ImagePixelHeight * config.ImagePixelWidth * StdDaq.Shared.Streams.ImageMetadata.BytesPerPixel(config.ImageDtype)];
            for (int i = 0; i < ids.Length; i++)
            {
                if (status[i] == (ushort)ImageStatus.NotWritten)
                    continue; // not written: counted above
                h5.ReadImage("/entry/data/data", i, image);
                if (!SimulatedImage.Expected(config, ids[i], _ => true).AsSpan().SequenceEqual(image))
                    bad++;
            }
            int written = status.Length - Count(ImageStatus.NotWritten);
            Console.WriteLine(bad == 0
                ? $"  pixels: all {written} written images equal the simulator pattern"
                : $"  pixels: {bad} of {written} written images DIFFER from the simulator pattern");
        }
        bool ok = shape[0] == n && consecutive && bad == 0 && status.All(s => s == 0);
        Console.WriteLine(ok ? "  OK: the file holds the requested images, exactly as simulated" : "  CHECK FAILED");
        return ok;
    }
}
