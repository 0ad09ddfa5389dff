using System.Buffers.Binary;
using StdDaq.Shared.Compression;
using StdDaq.Shared.Interop;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Compression;

/// <summary>
/// Bitshuffle and bitshuffle-LZ4 against the scalar reference and against the C library itself
/// (Debian's libh5bshuf.so), on random data and on the real EIGER frames.
/// </summary>
public unsafe class BitshuffleTests
{
    private static readonly int[] ElemSizes = [1, 2, 4, 8];
    private static readonly int[] Elements = [0, 7, 8, 9, 100, 8191, 8192, 65536 + 17];

    public static TheoryData<int, int> Sizes()
    {
        var data = new TheoryData<int, int>();
        foreach (int s in ElemSizes)
            foreach (int n in Elements)
                data.Add(s, n);
        return data;
    }

    public static TheoryData<int, int> BlockSizes()
    {
        // Every multiple of 8 up to 520 (SIMD steps are 32 and 256 elements), then a few larger.
        var data = new TheoryData<int, int>();
        foreach (int s in ElemSizes)
        {
            for (int n = 8; n <= 520; n += 8)
                data.Add(s, n);
            foreach (int n in new[] { 1016, 1024, 2048, 4096 + 24, 8192 })
                data.Add(s, n);
        }
        return data;
    }

    // Each kernel is tested on its own, whatever the CPU would pick: AVX2 alone (forced, so it is
    // covered on GFNI machines too) and GFNI (with AVX2 for the steps GFNI leaves). Where the CPU
    // lacks one, its tests are reported as skipped ("not exercised"), not passed by the other.

    [CpuTheory(Isa.Avx2)]
    [MemberData(nameof(BlockSizes))]
    public void ShuffleBlock_Avx2Kernel_MatchesScalarReference(int elemSize, int elements) =>
        AssertShuffleBlockMatchesScalar(elemSize, elements, Bitshuffle.Kernel.Avx2);

    [CpuTheory(Isa.Gfni)]
    [MemberData(nameof(BlockSizes))]
    public void ShuffleBlock_GfniKernel_MatchesScalarReference(int elemSize, int elements) =>
        AssertShuffleBlockMatchesScalar(elemSize, elements, Bitshuffle.Kernel.Best);

    [CpuTheory(Isa.Avx2)]
    [MemberData(nameof(BlockSizes))]
    public void UnshuffleBlock_Avx2Kernel_MatchesScalarReference(int elemSize, int elements) =>
        AssertUnshuffleBlockMatchesScalar(elemSize, elements, Bitshuffle.Kernel.Avx2);

    [CpuTheory(Isa.Gfni)]
    [MemberData(nameof(BlockSizes))]
    public void UnshuffleBlock_GfniKernel_MatchesScalarReference(int elemSize, int elements) =>
        AssertUnshuffleBlockMatchesScalar(elemSize, elements, Bitshuffle.Kernel.Best);

    private static void AssertShuffleBlockMatchesScalar(int elemSize, int elements, Bitshuffle.Kernel kernel)
    {
        var src = RandomBytes(elements * elemSize, seed: elements * 10 + elemSize);
        var expected = new byte[src.Length];
        Bitshuffle.ShuffleBlockScalar(src, expected, elemSize);
        var actual = new byte[src.Length];
        var stage = new byte[256 * elemSize];
        fixed (byte* s = src, a = actual, t = stage)
            Bitshuffle.ShuffleBlock(s, a, elements, elemSize, t, kernel);
        Assert.Equal(expected, actual);
    }

    private static void AssertUnshuffleBlockMatchesScalar(int elemSize, int elements, Bitshuffle.Kernel kernel)
    {
        var src = RandomBytes(elements * elemSize, seed: elements * 10 + elemSize);
        var expected = new byte[src.Length];
        Bitshuffle.UnshuffleBlockScalar(src, expected, elemSize);
        var actual = new byte[src.Length];
        var planes = new byte[src.Length];
        fixed (byte* s = src, a = actual, t = planes)
            Bitshuffle.UnshuffleBlock(s, a, elements, elemSize, t, kernel);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void ShuffleBlock_OneBitSet_LandsInItsRowByteAndBit(int elemSize)
    {
        // Bit b of byte j of element e → row 8j + b, byte e / 8, bit e % 8; 256 elements, so the
        // CPU's best kernel runs (GFNI where there is GFNI), both ways.
        const int n = 256;
        var src = new byte[n * elemSize];
        var shuffled = new byte[src.Length];
        var back = new byte[src.Length];
        for (int e = 0; e < n; e += 7)
            for (int bit = 0; bit < 8 * elemSize; bit++)
            {
                Array.Clear(src);
                src[e * elemSize + bit / 8] = (byte)(1 << bit % 8);
                Bitshuffle.ShuffleBlock(src, shuffled, elemSize);
                var expected = new byte[src.Length];
                expected[bit * (n / 8) + e / 8] = (byte)(1 << e % 8);
                Assert.Equal(expected, shuffled);
                Bitshuffle.UnshuffleBlock(shuffled, back, elemSize);
                Assert.Equal(src, back);
            }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Shuffle_RandomData_MatchesScalarReferenceAndC(int elemSize, int elements)
    {
        var src = RandomBytes(elements * elemSize, seed: elements + elemSize);
        var scalar = new byte[src.Length];
        Bitshuffle.ShuffleScalar(src, scalar, elemSize);
        var simd = new byte[src.Length];
        Bitshuffle.Shuffle(src, simd, elemSize);
        Assert.Equal(scalar, simd);
        Assert.Equal(CBitshuffle(src, elemSize), simd);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Unshuffle_RandomData_MatchesScalarReferenceAndC(int elemSize, int elements)
    {
        var src = RandomBytes(elements * elemSize, seed: elements + elemSize);
        var scalar = new byte[src.Length];
        Bitshuffle.UnshuffleScalar(src, scalar, elemSize);
        var simd = new byte[src.Length];
        Bitshuffle.Unshuffle(src, simd, elemSize);
        Assert.Equal(scalar, simd);
        Assert.Equal(CBitunshuffle(src, elemSize), simd);
    }

    [CpuTheory(Isa.Avx2)]
    [MemberData(nameof(Sizes))]
    public void ShuffleAndUnshuffle_Avx2Kernel_MatchScalarReference(int elemSize, int elements)
    {
        var src = RandomBytes(elements * elemSize, seed: elements + elemSize);
        var scalar = new byte[src.Length];
        var simd = new byte[src.Length];
        Bitshuffle.ShuffleScalar(src, scalar, elemSize);
        Bitshuffle.Blocked(src, simd, elemSize, shuffle: true, Bitshuffle.Kernel.Avx2);
        Assert.Equal(scalar, simd);
        Bitshuffle.UnshuffleScalar(src, scalar, elemSize);
        Bitshuffle.Blocked(src, simd, elemSize, shuffle: false, Bitshuffle.Kernel.Avx2);
        Assert.Equal(scalar, simd);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Unshuffle_OfShuffle_GivesTheInput(int elemSize, int elements)
    {
        var src = RandomBytes(elements * elemSize, seed: elements + elemSize);
        var shuffled = new byte[src.Length];
        Bitshuffle.Shuffle(src, shuffled, elemSize);
        var back = new byte[src.Length];
        Bitshuffle.Unshuffle(shuffled, back, elemSize);
        Assert.Equal(src, back);
    }

    [Fact]
    public void DefaultBlockSize_EveryElementSize_MatchesC()
    {
        H5Bshuf.EnsureAvailable();
        for (int s = 1; s <= 200; s++)
            Assert.Equal((int)H5Bshuf.bshuf_default_block_size((nuint)s), Bitshuffle.DefaultBlockSize(s));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void MaxCompressedSize_AnyLength_IsHeaderPlusCBound(int elemSize, int elements)
    {
        H5Bshuf.EnsureAvailable();
        nuint bound = H5Bshuf.bshuf_compress_lz4_bound((nuint)elements, (nuint)elemSize, 0);
        Assert.Equal(BitshuffleLz4.HeaderSize + (int)bound, BitshuffleLz4.MaxCompressedSize(elements * elemSize, elemSize));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Compress_RandomAndCountData_CDecompressesToTheInput(int elemSize, int elements)
    {
        foreach (var src in new[] { RandomBytes(elements * elemSize, elements), CountLikeBytes(elements * elemSize, elements) })
        {
            var chunk = Compress(src, elemSize);
            Assert.Equal(src, CDecompress(chunk, elemSize));
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Decompress_CChunk_GivesTheInput(int elemSize, int elements)
    {
        foreach (var src in new[] { RandomBytes(elements * elemSize, elements), CountLikeBytes(elements * elemSize, elements) })
        {
            var chunk = CCompress(src, elemSize);
            var dst = new byte[src.Length];
            BitshuffleLz4.Decompress(chunk, elemSize, dst);
            Assert.Equal(src, dst);
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Compress_ThenDecompress_GivesTheInput(int elemSize, int elements)
    {
        var src = CountLikeBytes(elements * elemSize, elements + 1);
        var chunk = Compress(src, elemSize);
        Assert.Equal(src.Length, BitshuffleLz4.DecompressedSize(chunk));
        var dst = new byte[src.Length];
        BitshuffleLz4.Decompress(chunk, elemSize, dst);
        Assert.Equal(src, dst);
    }

    [Fact]
    public void Compress_BlocksAndLeftovers_LaidOutAsTheCLibraryDoes()
    {
        // 2048 + 2048 + 1000 (→ a last block of 1000) + 3 uint32s: header, 3 blocks, 12 raw bytes.
        const int elemSize = 4, elements = 2048 * 2 + 1000 + 3;
        var src = CountLikeBytes(elements * elemSize, 5);
        var chunk = Compress(src, elemSize);
        var c = CCompress(src, elemSize);
        Assert.Equal(c[..12], chunk[..12]);
        Assert.Equal((ulong)src.Length, BinaryPrimitives.ReadUInt64BigEndian(chunk));
        Assert.Equal(8192u, BinaryPrimitives.ReadUInt32BigEndian(chunk.AsSpan(8)));
        int p = 12;
        for (int block = 0; block < 3; block++)
            p += 4 + (int)BinaryPrimitives.ReadUInt32BigEndian(chunk.AsSpan(p));
        Assert.Equal(chunk.Length - 12, p);
        Assert.Equal(src[^12..], chunk[^12..]);
    }

    [Fact]
    public void Compress_DestinationBelowMaxCompressedSize_ThrowsArgumentException()
    {
        var src = CountLikeBytes(4096, 1);
        var dst = new byte[BitshuffleLz4.MaxCompressedSize(src.Length, 4) - 1];
        var e = Assert.Throws<ArgumentException>(() => BitshuffleLz4.Compress(src, 4, dst));
        Assert.Contains("MaxCompressedSize", e.Message);
    }

    [Fact]
    public void Compress_LengthNotMultipleOfElementSize_ThrowsArgumentException()
    {
        var dst = new byte[1000];
        var e = Assert.Throws<ArgumentException>(() => BitshuffleLz4.Compress(new byte[102], 4, dst));
        Assert.Contains("multiple of the element size 4", e.Message);
    }

    [Fact]
    public void Decompress_EveryTruncation_ThrowsInvalidData()
    {
        var src = CountLikeBytes(4 * 5000 + 12, 3); // 2 full blocks, a last block, 3 leftover elements
        var chunk = Compress(src, 4);
        var dst = new byte[src.Length];
        for (int len = 0; len < chunk.Length; len++)
        {
            var e = Assert.Throws<InvalidDataException>(() => BitshuffleLz4.Decompress(chunk.AsSpan(0, len), 4, dst));
            Assert.Contains("bitshuffle-LZ4", e.Message);
        }
    }

    [Theory]
    [InlineData(0, 0x01, "destination")]       // uncompressed size
    [InlineData(10, 0x20, "block size")]       // block size 0
    [InlineData(11, 0x01, "block size")]       // block size 8193 bytes: not whole uint32s
    [InlineData(10, 0x40, "decodes to")]       // block size 4 MiB + 8 KiB: one block where the data has three
    [InlineData(12, 0x40, "compressed bytes")] // first block's compressed size beyond the chunk
    public void Decompress_CorruptHeaderField_ThrowsInvalidDataNamingIt(int offset, byte xor, string inMessage)
    {
        var src = CountLikeBytes(4 * 5000, 4);
        var chunk = Compress(src, 4);
        chunk[offset] ^= xor;
        var e = Assert.Throws<InvalidDataException>(() => BitshuffleLz4.Decompress(chunk, 4, new byte[src.Length]));
        Assert.Contains(inMessage, e.Message);
    }

    [Fact]
    public void Decompress_TrailingGarbage_ThrowsInvalidData()
    {
        var src = CountLikeBytes(4 * 4096, 6);
        var chunk = Compress(src, 4);
        var e = Assert.Throws<InvalidDataException>(() => BitshuffleLz4.Decompress([.. chunk, 0], 4, new byte[src.Length]));
        Assert.Contains("after its last block", e.Message);
    }

    [Fact]
    public void Decompress_MatchOffsetBeforeTheBlock_ThrowsInvalidData()
    {
        // One 256-byte block (64 uint32s) of hand-made LZ4: 4 literals and a 204-byte match
        // 1000 bytes back, before the start of the block; then 48 closing literals.
        var lz4 = new List<byte> { 0x4F, 1, 2, 3, 4, 0xE8, 0x03, 200 - 15 };
        lz4.AddRange([0xF0, 48 - 15]);
        lz4.AddRange(new byte[48]);
        var chunk = new byte[12 + 4 + lz4.Count];
        BinaryPrimitives.WriteUInt64BigEndian(chunk, 256);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8), 8192);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(12), (uint)lz4.Count);
        lz4.CopyTo(chunk, 16);
        var e = Assert.Throws<InvalidDataException>(() => BitshuffleLz4.Decompress(chunk, 4, new byte[256]));
        Assert.Contains("not valid LZ4", e.Message);
    }

    [Fact]
    public void Decompress_RandomCorruption_ThrowsInvalidDataOrDecodesWithinBounds()
    {
        // The chunk ends where an inaccessible page starts and the output fills its pages up to
        // another: any read or write past either faults and takes the test run down. LZ4 has no
        // checksum, so a flipped literal may still decode (to other data); anything else must be
        // an InvalidDataException.
        var src = CountLikeBytes(4 * 6000 + 8, 7);
        var good = Compress(src, 4);
        using var input = new GuardedPages(good.Length);
        using var output = new GuardedPages(src.Length);
        var dst = new Span<byte>(output.End - src.Length, src.Length);
        var rng = new Random(11);
        var bad = new byte[good.Length];
        int threw = 0;
        for (int trial = 0; trial < 3000; trial++)
        {
            good.CopyTo(bad, 0);
            int flips = 1 + rng.Next(4);
            for (int f = 0; f < flips; f++)
                bad[rng.Next(bad.Length)] ^= (byte)(1 << rng.Next(8));
            int len = trial % 3 == 0 ? rng.Next(bad.Length + 1) : bad.Length;
            var chunk = new Span<byte>(input.End - len, len);
            bad.AsSpan(0, len).CopyTo(chunk);
            try
            {
                BitshuffleLz4.Decompress(chunk, 4, dst);
            }
            catch (InvalidDataException)
            {
                threw++;
            }
        }
        Assert.InRange(threw, 1500, 3000);
    }

    [Fact]
    public void Compress_EigerFrames_RoundTripCDecompressAndCompressAsWellAsC()
    {
        long total = 0, ours = 0, c = 0;
        foreach (var frame in EigerFrames.All)
        {
            var chunk = Compress(frame, 4);
            var back = new byte[frame.Length];
            BitshuffleLz4.Decompress(chunk, 4, back);
            Assert.Equal(frame, back);
            Assert.Equal(frame, CDecompress(chunk, 4));
            total += frame.Length;
            ours += chunk.Length;
            c += CCompress(frame, 4).Length;
        }
        // Photon counts with a median of 3 fill few of the 32 bit planes: about 7.8 : 1.
        Assert.InRange((double)total / ours, 7.0, 9.0);
        Assert.InRange((double)ours / c, 0.0, 1.01);
    }

    // The same LZ4 (liblz4) and the same bit-rows from every kernel: the chunks are the C plugin's, byte for byte.

    [CpuTheory(Isa.Avx2)]
    [MemberData(nameof(Sizes))]
    public void Compress_Avx2Kernel_ByteIdenticalToC(int elemSize, int elements)
    {
        foreach (var src in new[] { RandomBytes(elements * elemSize, elements), CountLikeBytes(elements * elemSize, elements) })
            Assert.Equal(CCompress(src, elemSize), Compress(src, elemSize, Bitshuffle.Kernel.Avx2));
    }

    [CpuTheory(Isa.Gfni)]
    [MemberData(nameof(Sizes))]
    public void Compress_GfniKernel_ByteIdenticalToC(int elemSize, int elements)
    {
        foreach (var src in new[] { RandomBytes(elements * elemSize, elements), CountLikeBytes(elements * elemSize, elements) })
            Assert.Equal(CCompress(src, elemSize), Compress(src, elemSize, Bitshuffle.Kernel.Best));
    }

    [CpuFact(Isa.Avx2)]
    public void Compress_Avx2KernelEigerFrames_ByteIdenticalToC()
    {
        foreach (var frame in EigerFrames.All)
            Assert.Equal(CCompress(frame, 4), Compress(frame, 4, Bitshuffle.Kernel.Avx2));
    }

    [CpuFact(Isa.Gfni)]
    public void Compress_GfniKernelEigerFrames_ByteIdenticalToC()
    {
        foreach (var frame in EigerFrames.All)
            Assert.Equal(CCompress(frame, 4), Compress(frame, 4, Bitshuffle.Kernel.Best));
    }

    [Fact]
    public void Decompress_CCompressedEigerFrames_GivesTheFrames()
    {
        foreach (var frame in EigerFrames.All)
        {
            var back = new byte[frame.Length];
            BitshuffleLz4.Decompress(CCompress(frame, 4), 4, back);
            Assert.Equal(frame, back);
        }
    }

    [Fact]
    public void Compress_EigerFrameWrittenAsRawChunk_ReadBackByH5pyThroughThePlugin()
    {
        using var env = new TestEnv();
        var frame = EigerFrames.All[3];
        string chunkPath = Path.Combine(env.Dir, "chunk.bin"), framePath = Path.Combine(env.Dir, "frame.bin");
        File.WriteAllBytes(chunkPath, Compress(frame, 4));
        File.WriteAllBytes(framePath, frame);
        string output = Python.Run(env, ReadChunkWithH5py, chunkPath, framePath, Path.Combine(env.Dir, "f.h5"),
            Path.GetDirectoryName(H5Bshuf.Path)!);
        Assert.Equal("same", output.Trim());
    }

    private const string ReadChunkWithH5py = """
        import os, sys
        os.environ["HDF5_PLUGIN_PATH"] = sys.argv[4]
        import h5py, numpy as np
        chunk = open(sys.argv[1], "rb").read()
        frame = np.fromfile(sys.argv[2], dtype="<u4").reshape(256, 512)
        with h5py.File(sys.argv[3], "w") as f:
            d = f.create_dataset("data", shape=(1, 256, 512), dtype="<u4", chunks=(1, 256, 512),
                                 compression=32008, compression_opts=(0, 2))
            d.id.write_direct_chunk((0, 0, 0), chunk)
        with h5py.File(sys.argv[3], "r") as f:
            got = f["data"][0]
        print("same" if np.array_equal(got, frame) else "differ")
        """;

    private static byte[] RandomBytes(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Small values with rare large ones, like photon counts: compressible after bitshuffle.</summary>
    private static byte[] CountLikeBytes(int length, int seed)
    {
        var rng = new Random(seed);
        var b = new byte[length];
        for (int i = 0; i < length; i++)
            b[i] = i % 4 == 0 ? (byte)(rng.Next(100) == 0 ? rng.Next(256) : rng.Next(6)) : (byte)(rng.Next(500) == 0 ? 1 : 0);
        return b;
    }

    private static byte[] Compress(byte[] src, int elemSize)
    {
        var chunk = new byte[BitshuffleLz4.MaxCompressedSize(src.Length, elemSize)];
        return chunk[..BitshuffleLz4.Compress(src, elemSize, chunk)];
    }

    private static byte[] Compress(byte[] src, int elemSize, Bitshuffle.Kernel kernel)
    {
        var chunk = new byte[BitshuffleLz4.MaxCompressedSize(src.Length, elemSize)];
        return chunk[..BitshuffleLz4.Compress(src, elemSize, chunk, kernel)];
    }

    private static byte[] CBitshuffle(byte[] src, int elemSize)
    {
        H5Bshuf.EnsureAvailable();
        var dst = new byte[src.Length];
        fixed (byte* s = src, d = dst)
            Assert.Equal(src.Length, H5Bshuf.bshuf_bitshuffle(s, d, (nuint)(src.Length / elemSize), (nuint)elemSize, 0));
        return dst;
    }

    private static byte[] CBitunshuffle(byte[] src, int elemSize)
    {
        H5Bshuf.EnsureAvailable();
        var dst = new byte[src.Length];
        fixed (byte* s = src, d = dst)
            Assert.Equal(src.Length, H5Bshuf.bshuf_bitunshuffle(s, d, (nuint)(src.Length / elemSize), (nuint)elemSize, 0));
        return dst;
    }

    /// <summary>A filter-32008 chunk from the C library: the filter's header, then bshuf_compress_lz4.</summary>
    private static byte[] CCompress(byte[] src, int elemSize)
    {
        H5Bshuf.EnsureAvailable();
        nuint n = (nuint)(src.Length / elemSize);
        var chunk = new byte[12 + (int)H5Bshuf.bshuf_compress_lz4_bound(n, (nuint)elemSize, 0)];
        BinaryPrimitives.WriteUInt64BigEndian(chunk, (ulong)src.Length);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8), (uint)((int)H5Bshuf.bshuf_default_block_size((nuint)elemSize) * elemSize));
        long written;
        fixed (byte* s = src, c = chunk)
            written = H5Bshuf.bshuf_compress_lz4(s, c + 12, n, (nuint)elemSize, 0);
        Assert.True(written >= 0, $"bshuf_compress_lz4 returned {written}");
        return chunk[..(12 + (int)written)];
    }

    /// <summary>Decompresses a chunk with the C library as the filter does: size and block size from the header.</summary>
    private static byte[] CDecompress(byte[] chunk, int elemSize)
    {
        H5Bshuf.EnsureAvailable();
        ulong size = BinaryPrimitives.ReadUInt64BigEndian(chunk);
        uint blockBytes = BinaryPrimitives.ReadUInt32BigEndian(chunk.AsSpan(8));
        var dst = new byte[size];
        long read;
        fixed (byte* c = chunk, d = dst)
            read = H5Bshuf.bshuf_decompress_lz4(c + 12, d, (nuint)(size / (ulong)elemSize), (nuint)elemSize, blockBytes / (nuint)elemSize);
        Assert.Equal(chunk.Length - 12, read);
        return dst;
    }
}
