using System.Buffers.Binary;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using StdDaq.Shared.Compression;
using StdDaq.Shared.Interop;

namespace StdDaq.Benchmarks.Compression;

/// <summary>
/// Bitshuffle-LZ4 of the 20 real EIGER 32-bit frames (10 MiB) on one core: ours
/// (<see cref="BitshuffleLz4"/>, <see cref="Bitshuffle"/>) against the C library in Debian's HDF5
/// plugin (libh5bshuf.so: bshuf_compress_lz4 / bshuf_decompress_lz4 / bshuf_bitshuffle /
/// bshuf_bitunshuffle), same data, default block size (8192 bytes), one frame per chunk. Each
/// operation does all 20 frames; "GB/s" is uncompressed bytes (1e9) per second of the median.
/// The C compress writes the filter's 12-byte header too, as the plugin does.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
[Config(typeof(Columns))]
public unsafe class CompressionBenchmarks
{
    public const long Bytes = (long)EigerFrames.Count * EigerFrames.FrameBytes;
    private const int N = EigerFrames.FrameBytes / 4;
    private byte* _frames, _out, _ours, _c;
    private int _chunkRoom;
    private readonly int[] _oursLength = new int[EigerFrames.Count], _cLength = new int[EigerFrames.Count];

    private sealed class Columns : ManualConfig
    {
        public Columns() => AddColumn(new ThroughputColumn());
    }

    [GlobalSetup]
    public void Setup()
    {
        H5Bshuf.EnsureAvailable();
        var frames = EigerFrames.Load();
        _chunkRoom = BitshuffleLz4.MaxCompressedSize(EigerFrames.FrameBytes, 4);
        _frames = (byte*)NativeMemory.AlignedAlloc((nuint)Bytes, 64);
        _out = (byte*)NativeMemory.AlignedAlloc((nuint)Bytes, 64);
        _ours = (byte*)NativeMemory.AlignedAlloc((nuint)(_chunkRoom * EigerFrames.Count), 64);
        _c = (byte*)NativeMemory.AlignedAlloc((nuint)(_chunkRoom * EigerFrames.Count), 64);
        for (int f = 0; f < EigerFrames.Count; f++)
            frames[f].CopyTo(new Span<byte>(Frame(f), EigerFrames.FrameBytes));
        CompressOurs();
        CompressC();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_frames);
        NativeMemory.AlignedFree(_out);
        NativeMemory.AlignedFree(_ours);
        NativeMemory.AlignedFree(_c);
    }

    private byte* Frame(int f) => _frames + (long)f * EigerFrames.FrameBytes;

    private byte* Out(int f) => _out + (long)f * EigerFrames.FrameBytes;

    [Benchmark(Baseline = true), BenchmarkCategory("compress")]
    public long CompressC()
    {
        long total = 0;
        for (int f = 0; f < EigerFrames.Count; f++)
        {
            byte* chunk = _c + (long)f * _chunkRoom;
            BinaryPrimitives.WriteUInt64BigEndian(new Span<byte>(chunk, 8), EigerFrames.FrameBytes);
            BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(chunk + 8, 4), 8192);
            long n = H5Bshuf.bshuf_compress_lz4(Frame(f), chunk + 12, N, 4, 0);
            if (n < 0)
                throw new InvalidOperationException($"bshuf_compress_lz4 returned {n}");
            total += _cLength[f] = 12 + (int)n;
        }
        return total;
    }

    [Benchmark, BenchmarkCategory("compress")]
    public long CompressOurs()
    {
        long total = 0;
        for (int f = 0; f < EigerFrames.Count; f++)
            total += _oursLength[f] = BitshuffleLz4.Compress(new ReadOnlySpan<byte>(Frame(f), EigerFrames.FrameBytes), 4,
                new Span<byte>(_ours + (long)f * _chunkRoom, _chunkRoom));
        return total;
    }

    /// <summary>With the AVX2 transpose kernel, GFNI left out: what runs on a CPU without GFNI.</summary>
    [Benchmark, BenchmarkCategory("compress")]
    public long CompressOursAvx2()
    {
        long total = 0;
        for (int f = 0; f < EigerFrames.Count; f++)
            total += BitshuffleLz4.Compress(new ReadOnlySpan<byte>(Frame(f), EigerFrames.FrameBytes), 4,
                new Span<byte>(_ours + (long)f * _chunkRoom, _chunkRoom), Bitshuffle.Kernel.Avx2);
        return total;
    }

    [Benchmark(Baseline = true), BenchmarkCategory("decompress")]
    public long DecompressC()
    {
        long total = 0;
        for (int f = 0; f < EigerFrames.Count; f++)
        {
            long n = H5Bshuf.bshuf_decompress_lz4(_c + (long)f * _chunkRoom + 12, Out(f), N, 4, 8192 / 4);
            if (n != _cLength[f] - 12)
                throw new InvalidOperationException($"bshuf_decompress_lz4 returned {n}");
            total += n;
        }
        return total;
    }

    [Benchmark, BenchmarkCategory("decompress")]
    public long DecompressOurs()
    {
        for (int f = 0; f < EigerFrames.Count; f++)
            BitshuffleLz4.Decompress(new ReadOnlySpan<byte>(_ours + (long)f * _chunkRoom, _oursLength[f]), 4,
                new Span<byte>(Out(f), EigerFrames.FrameBytes));
        return Bytes;
    }

    [Benchmark(Baseline = true), BenchmarkCategory("bitshuffle")]
    public long BitshuffleC()
    {
        long total = 0;
        for (int f = 0; f < EigerFrames.Count; f++)
            total += H5Bshuf.bshuf_bitshuffle(Frame(f), Out(f), N, 4, 0);
        return total;
    }

    [Benchmark, BenchmarkCategory("bitshuffle")]
    public long BitshuffleOurs()
    {
        for (int f = 0; f < EigerFrames.Count; f++)
            Bitshuffle.Shuffle(new ReadOnlySpan<byte>(Frame(f), EigerFrames.FrameBytes), new Span<byte>(Out(f), EigerFrames.FrameBytes), 4);
        return Bytes;
    }

    /// <summary>The AVX2 movemask kernel alone (what runs without GFNI).</summary>
    [Benchmark, BenchmarkCategory("bitshuffle")]
    public long BitshuffleOursAvx2()
    {
        for (int f = 0; f < EigerFrames.Count; f++)
            Bitshuffle.Blocked(new ReadOnlySpan<byte>(Frame(f), EigerFrames.FrameBytes), new Span<byte>(Out(f), EigerFrames.FrameBytes), 4,
                shuffle: true, Bitshuffle.Kernel.Avx2);
        return Bytes;
    }

    [Benchmark(Baseline = true), BenchmarkCategory("bitunshuffle")]
    public long BitunshuffleC()
    {
        long total = 0;
        for (int f = 0; f < EigerFrames.Count; f++)
            total += H5Bshuf.bshuf_bitunshuffle(Frame(f), Out(f), N, 4, 0);
        return total;
    }

    [Benchmark, BenchmarkCategory("bitunshuffle")]
    public long BitunshuffleOurs()
    {
        for (int f = 0; f < EigerFrames.Count; f++)
            Bitshuffle.Unshuffle(new ReadOnlySpan<byte>(Frame(f), EigerFrames.FrameBytes), new Span<byte>(Out(f), EigerFrames.FrameBytes), 4);
        return Bytes;
    }

    /// <summary>The AVX2 kernels alone (8×8 bit transposes by shifts).</summary>
    [Benchmark, BenchmarkCategory("bitunshuffle")]
    public long BitunshuffleOursAvx2()
    {
        for (int f = 0; f < EigerFrames.Count; f++)
            Bitshuffle.Blocked(new ReadOnlySpan<byte>(Frame(f), EigerFrames.FrameBytes), new Span<byte>(Out(f), EigerFrames.FrameBytes), 4,
                shuffle: false, Bitshuffle.Kernel.Avx2);
        return Bytes;
    }

    /// <summary>Uncompressed GB (1e9 bytes) per second, from the median time of one operation.</summary>
    private sealed class ThroughputColumn : IColumn
    {
        public string Id => nameof(ThroughputColumn);
        public string ColumnName => "GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "uncompressed bytes (1e9) per second, from the median";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var s = summary[benchmarkCase]?.ResultStatistics;
            return s == null ? "NA" : (Bytes / s.Median).ToString("F2"); // bytes per ns = GB/s
        }

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public bool IsAvailable(Summary summary) => true;
    }
}
