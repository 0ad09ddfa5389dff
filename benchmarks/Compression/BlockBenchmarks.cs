using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using K4os.Compression.LZ4;
using StdDaq.Shared.Compression;
using StdDaq.Shared.Interop;

namespace StdDaq.Benchmarks.Compression;

/// <summary>
/// The two halves of bitshuffle-LZ4 on one default block (8192 bytes = 2048 uint32 of an EIGER
/// frame) at a time, 64 blocks per operation (one frame's worth of work), without the memory
/// traffic of whole frames: the bit transpose of the same block in L1 (ours with GFNI, ours with
/// AVX2 alone, C), and LZ4 of each of frame 0's 64 bitshuffled blocks (in L2) by K4os (what we
/// use) and by the system liblz4 (what the C plugin uses).
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public unsafe class BlockBenchmarks
{
    private const int Elements = 2048, BlockBytes = Elements * 4, Blocks = 64;
    private static readonly int Room = LZ4Codec.MaximumOutputSize(BlockBytes);
    private byte* _src, _dst, _tmp, _shuffled, _lz4;

    [GlobalSetup]
    public void Setup()
    {
        H5Bshuf.EnsureAvailable();
        var frame = EigerFrames.Load()[0];
        _src = (byte*)NativeMemory.AlignedAlloc(BlockBytes, 64);
        _dst = (byte*)NativeMemory.AlignedAlloc(BlockBytes, 64);
        _tmp = (byte*)NativeMemory.AlignedAlloc(BlockBytes, 64);
        _shuffled = (byte*)NativeMemory.AlignedAlloc((nuint)frame.Length, 64);
        _lz4 = (byte*)NativeMemory.AlignedAlloc((nuint)Room, 64);
        frame.AsSpan(0, BlockBytes).CopyTo(new Span<byte>(_src, BlockBytes));
        Bitshuffle.Shuffle(frame, new Span<byte>(_shuffled, frame.Length), 4);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_src);
        NativeMemory.AlignedFree(_dst);
        NativeMemory.AlignedFree(_tmp);
        NativeMemory.AlignedFree(_shuffled);
        NativeMemory.AlignedFree(_lz4);
    }

    [Benchmark(Baseline = true), BenchmarkCategory("shuffle block")]
    public long ShuffleC()
    {
        long r = 0;
        for (int i = 0; i < Blocks; i++)
            r += H5Bshuf.bshuf_bitshuffle(_src, _dst, Elements, 4, 0);
        return r;
    }

    [Benchmark, BenchmarkCategory("shuffle block")]
    public void ShuffleGfni()
    {
        for (int i = 0; i < Blocks; i++)
            Bitshuffle.ShuffleBlock(_src, _dst, Elements, 4, _tmp, Bitshuffle.Kernel.Best);
    }

    [Benchmark, BenchmarkCategory("shuffle block")]
    public void ShuffleAvx2()
    {
        for (int i = 0; i < Blocks; i++)
            Bitshuffle.ShuffleBlock(_src, _dst, Elements, 4, _tmp, Bitshuffle.Kernel.Avx2);
    }

    [Benchmark(Baseline = true), BenchmarkCategory("unshuffle block")]
    public long UnshuffleC()
    {
        long r = 0;
        for (int i = 0; i < Blocks; i++)
            r += H5Bshuf.bshuf_bitunshuffle(_src, _dst, Elements, 4, 0);
        return r;
    }

    [Benchmark, BenchmarkCategory("unshuffle block")]
    public void UnshuffleGfni()
    {
        for (int i = 0; i < Blocks; i++)
            Bitshuffle.UnshuffleBlock(_src, _dst, Elements, 4, _tmp, Bitshuffle.Kernel.Best);
    }

    [Benchmark, BenchmarkCategory("unshuffle block")]
    public void UnshuffleAvx2()
    {
        for (int i = 0; i < Blocks; i++)
            Bitshuffle.UnshuffleBlock(_src, _dst, Elements, 4, _tmp, Bitshuffle.Kernel.Avx2);
    }

    [Benchmark(Baseline = true), BenchmarkCategory("lz4 block")]
    public long Lz4Liblz4()
    {
        long r = 0;
        for (int i = 0; i < Blocks; i++)
            r += Liblz4.LZ4_compress_default(_shuffled + i * BlockBytes, _lz4, BlockBytes, Room);
        return r;
    }

    [Benchmark, BenchmarkCategory("lz4 block")]
    public long Lz4K4os()
    {
        long r = 0;
        for (int i = 0; i < Blocks; i++)
            r += LZ4Codec.Encode(_shuffled + i * BlockBytes, BlockBytes, _lz4, Room, LZ4Level.L00_FAST);
        return r;
    }
}
