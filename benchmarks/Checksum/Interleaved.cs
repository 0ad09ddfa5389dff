using System.Diagnostics;
using System.IO.Hashing;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;

namespace StdDaq.Benchmarks.Checksum;

/// <summary>
/// The replication checksum's cost as the services pay it, measured interleaved so a busy machine
/// slows every variant alike: per round each variant copies the next 2 MiB image of a 256 MiB
/// source ring into the next slot of a 256 MiB target ring (both far out of cache, as the sender's
/// fresh message and the receiver's slot are), with and without xxHash3-64, and the receiver's copy with
/// streaming stores; medians over the rounds.
/// </summary>
public static class Interleaved
{
    private const int ImageBytes = 2 << 20;
    private const int Slots = 128;

    public static int Run(int rounds)
    {
        var source = new byte[(long)ImageBytes * Slots];
        var target = new byte[(long)ImageBytes * Slots];
        new Random(1).NextBytes(source);
        target.AsSpan().Fill(1);
        var hash = new XxHash3();
        var variants = new (string Name, Action<ReadOnlyMemory<byte>, Memory<byte>> Run)[]
        {
            ("copy", (s, t) => s.Span.CopyTo(t.Span)),
            ("copy + xxHash3-64 (the services: 64 KiB blocks)", (s, t) => StreamHeader.CopyWithChecksum(s.Span, t.Span, hash)),
            ("streaming copy (the receiver)", (s, t) => StreamingCopy.Copy(s.Span, t.Span)),
            ("streaming copy + xxHash3-64 of the source (the receiver)", (s, t) => StreamHeader.CopyStreamingWithChecksum(s.Span, t.Span, hash)),
            ("copy, then xxHash3-64 of the copy", (s, t) =>
            {
                s.Span.CopyTo(t.Span);
                XxHash3.HashToUInt64(t.Span);
            }),
        };
        var times = variants.Select(_ => new List<double>()).ToArray();
        int next = 0;
        for (int r = 0; r < rounds + 5; r++)
        {
            for (int v = 0; v < variants.Length; v++)
            {
                int slot = next++ % Slots;
                var s = source.AsMemory(slot * ImageBytes, ImageBytes);
                var t = target.AsMemory(((slot + 37) % Slots) * ImageBytes, ImageBytes);
                long start = Stopwatch.GetTimestamp();
                variants[v].Run(s, t);
                double us = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                if (r >= 5)
                    times[v].Add(us);
            }
        }
        double baseline = Median(times[0]);
        Console.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ssZ}, {Environment.ProcessorCount} CPUs, {rounds} rounds, 2 MiB images, medians:");
        for (int v = 0; v < variants.Length; v++)
        {
            double m = Median(times[v]);
            Console.WriteLine($"  {variants[v].Name}: {m:F1} µs ({ImageBytes / m / 1e3:F2} GB/s), +{m - baseline:F1} µs over the copy");
        }
        return 0;
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s[s.Length / 2];
    }
}
