using System.IO.Hashing;
using BenchmarkDotNet.Attributes;
using StdDaq.Shared.Streams;

namespace StdDaq.Benchmarks.Checksum;

/// <summary>
/// What the replication checksum costs each side per 2 MiB image: the copy out of (sender) or into
/// (receiver) the slot alone, the same copy with xxHash3-64 computed in it as the services do
/// (<see cref="StreamHeader.CopyWithChecksum"/>, 64 KiB blocks), a copy then a hash pass over
/// it, and a hash pass alone. Each operation takes the next of 128 source slots
/// (256 MiB, far more than the caches), as the sender reads a ring written long before.
/// </summary>
[MemoryDiagnoser]
public class ChecksumBenchmarks
{
    private const int ImageBytes = 2 << 20;
    private const int Slots = 128;
    private byte[] _ring = [];
    private byte[] _target = [];
    private int _next;
    private readonly XxHash3 _xxh3 = new();

    [GlobalSetup]
    public void Setup()
    {
        _ring = new byte[(long)ImageBytes * Slots];
        new Random(1).NextBytes(_ring);
        _target = new byte[ImageBytes];
        _target.AsSpan().Fill(1);
    }

    private ReadOnlySpan<byte> NextSlot()
    {
        int slot = _next++ % Slots;
        return _ring.AsSpan(slot * ImageBytes, ImageBytes);
    }

    [Benchmark(Baseline = true, Description = "copy")]
    public void Copy() => NextSlot().CopyTo(_target);

    [Benchmark(Description = "copy + xxHash3-64 in 64 KiB blocks (the services)")]
    public ulong CopyXxh3() => StreamHeader.CopyWithChecksum(NextSlot(), _target, _xxh3);

    [Benchmark(Description = "copy, then xxHash3-64 over the copy (two passes)")]
    public ulong CopyThenXxh3Pass()
    {
        NextSlot().CopyTo(_target);
        return XxHash3.HashToUInt64(_target);
    }

    [Benchmark(Description = "xxHash3-64 alone, from memory")]
    public ulong Xxh3Alone() => XxHash3.HashToUInt64(NextSlot());
}
