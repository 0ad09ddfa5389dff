using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using K4os.Compression.LZ4;
using StdDaq.Shared.Compression;
using StdDaq.Shared.Interop;

namespace StdDaq.Benchmarks.Compression;

/// <summary>
/// Compression of the 20 EIGER frames side by side on a shared, noisy machine: by the C plugin,
/// by ours with each kernel, by the earlier loop with K4os LZ4 ("as before"), and its parts (the
/// transpose of each block into one in-cache buffer, as compression does it; LZ4 coding and
/// decoding of the already shuffled blocks by K4os and by liblz4), taken in turn within each
/// round so that load from other work falls on all of them alike. Prints the median and the
/// fastest round of each, in ms per 20 frames, and C's median over each median.
/// </summary>
public static unsafe class Interleaved
{
    public static int Run(int rounds)
    {
        H5Bshuf.EnsureAvailable();
        var frames = EigerFrames.Load();
        const int n = EigerFrames.FrameBytes / 4, blockBytes = 8192;
        int room = BitshuffleLz4.MaxCompressedSize(EigerFrames.FrameBytes, 4);
        long bytes = (long)EigerFrames.Count * EigerFrames.FrameBytes;
        byte* src = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        byte* shuffled = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        byte* dst = (byte*)NativeMemory.AlignedAlloc((nuint)(room * EigerFrames.Count), 64);
        byte* block = (byte*)NativeMemory.AlignedAlloc(2 * blockBytes, 64);
        for (int f = 0; f < EigerFrames.Count; f++)
        {
            frames[f].CopyTo(new Span<byte>(src + (long)f * EigerFrames.FrameBytes, EigerFrames.FrameBytes));
            Bitshuffle.Shuffle(frames[f], new Span<byte>(shuffled + (long)f * EigerFrames.FrameBytes, EigerFrames.FrameBytes), 4);
        }
        int lz4Room = LZ4Codec.MaximumOutputSize(blockBytes);
        string best = BitshuffleGfni.IsSupported ? "GFNI + AVX2" : "best = AVX2";
        int blocks = (int)(bytes / blockBytes);
        byte* packed = (byte*)NativeMemory.AlignedAlloc((nuint)(blocks * lz4Room), 64);
        var packedLen = new int[blocks];
        for (int b = 0; b < blocks; b++)
            packedLen[b] = Liblz4.LZ4_compress_default(shuffled + (long)b * blockBytes, packed + (long)b * lz4Room, blockBytes, lz4Room);

        var cases = new (string Name, Action Run)[]
        {
            ("compress, C plugin (SSE2)", () =>
            {
                for (int f = 0; f < EigerFrames.Count; f++)
                {
                    byte* chunk = dst + (long)f * room;
                    BinaryPrimitives.WriteUInt64BigEndian(new Span<byte>(chunk, 8), EigerFrames.FrameBytes);
                    BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(chunk + 8, 4), blockBytes);
                    if (H5Bshuf.bshuf_compress_lz4(src + (long)f * EigerFrames.FrameBytes, chunk + 12, n, 4, 0) < 0)
                        throw new InvalidOperationException("bshuf_compress_lz4 failed");
                }
            }),
            ($"compress, ours {best}", () => CompressAll(src, dst, room, Bitshuffle.Kernel.Best)),
            ("compress, ours AVX2 only", () => CompressAll(src, dst, room, Bitshuffle.Kernel.Avx2)),
            ($"  as before: {best}, K4os LZ4", () => CompressK4os(src, dst, room, block, Bitshuffle.Kernel.Best)),
            ("  as before: AVX2 only, K4os LZ4", () => CompressK4os(src, dst, room, block, Bitshuffle.Kernel.Avx2)),
            ($"  transpose per block, {best}", () => ShuffleAll(src, block, Bitshuffle.Kernel.Best)),
            ("  transpose per block, AVX2", () => ShuffleAll(src, block, Bitshuffle.Kernel.Avx2)),
            ("  LZ4 of shuffled blocks, K4os", () =>
            {
                for (long o = 0; o < bytes; o += blockBytes)
                    LZ4Codec.Encode(shuffled + o, blockBytes, dst, lz4Room, LZ4Level.L00_FAST);
            }),
            ("  LZ4 of shuffled blocks, liblz4", () =>
            {
                for (long o = 0; o < bytes; o += blockBytes)
                    Liblz4.LZ4_compress_default(shuffled + o, dst, blockBytes, lz4Room);
            }),
            ("  LZ4 decode, K4os", () =>
            {
                byte* c = packed;
                for (int b = 0; b < blocks; b++)
                {
                    LZ4Codec.Decode(c, packedLen[b], block, blockBytes);
                    c += lz4Room;
                }
            }),
            ("  LZ4 decode, liblz4 safe", () =>
            {
                byte* c = packed;
                for (int b = 0; b < blocks; b++)
                {
                    Liblz4.LZ4_decompress_safe(c, block, packedLen[b], blockBytes);
                    c += lz4Room;
                }
            }),
        };
        var theirs = new byte[room];
        var mine = new byte[room];
        fixed (byte* t = theirs, m = mine)
        {
            CompressK4os(src, m, room, block, Bitshuffle.Kernel.Avx2, frames: 1);
            int n0 = BitshuffleLz4.Compress(new ReadOnlySpan<byte>(src, EigerFrames.FrameBytes), 4, theirs);
            if (!theirs.AsSpan(0, n0).SequenceEqual(mine.AsSpan(0, n0)))
                throw new InvalidOperationException("the K4os loop does not give the same chunk as BitshuffleLz4");
        }
        var times = new double[cases.Length][];
        for (int c = 0; c < cases.Length; c++)
        {
            times[c] = new double[rounds];
            for (int w = 0; w < 5; w++)
                cases[c].Run();
        }
        for (int r = 0; r < rounds; r++)
            for (int c = 0; c < cases.Length; c++)
            {
                long t0 = Stopwatch.GetTimestamp();
                cases[c].Run();
                times[c][r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
        double cMedian = Median(times[0]);
        Console.WriteLine($"{"ms per 20 frames",-36} {"median",8} {"fastest",8} {"C / this",9}");
        for (int c = 0; c < cases.Length; c++)
        {
            double m = Median(times[c]);
            Console.WriteLine($"{cases[c].Name,-36} {m,8:F3} {times[c].Min(),8:F3} {cMedian / m,8:F2}x");
        }
        NativeMemory.AlignedFree(src);
        NativeMemory.AlignedFree(shuffled);
        NativeMemory.AlignedFree(dst);
        NativeMemory.AlignedFree(block);
        return 0;
    }

    private static void CompressAll(byte* src, byte* dst, int room, Bitshuffle.Kernel kernel)
    {
        for (int f = 0; f < EigerFrames.Count; f++)
            BitshuffleLz4.Compress(new ReadOnlySpan<byte>(src + (long)f * EigerFrames.FrameBytes, EigerFrames.FrameBytes), 4,
                new Span<byte>(dst + (long)f * room, room), kernel);
    }

    /// <summary>
    /// The compression loop as it was with K4os.Compression.LZ4 (L00_FAST) in place of liblz4:
    /// the same chunks (checked against C once at the start), to show the change in the same run.
    /// </summary>
    private static void CompressK4os(byte* src, byte* dst, int room, byte* block, Bitshuffle.Kernel kernel, int frames = EigerFrames.Count)
    {
        const int elements = 2048, blockBytes = 4 * elements;
        for (int f = 0; f < frames; f++)
        {
            byte* s = src + (long)f * EigerFrames.FrameBytes, d = dst + (long)f * room;
            BinaryPrimitives.WriteUInt64BigEndian(new Span<byte>(d, 8), EigerFrames.FrameBytes);
            BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(d + 8, 4), blockBytes);
            int o = 12;
            for (int b = 0; b < EigerFrames.FrameBytes / blockBytes; b++)
            {
                Bitshuffle.ShuffleBlock(s + b * blockBytes, block, elements, 4, block + blockBytes, kernel);
                int c = LZ4Codec.Encode(block, blockBytes, d + o + 4, room - o - 4, LZ4Level.L00_FAST);
                BinaryPrimitives.WriteUInt32BigEndian(new Span<byte>(d + o, 4), (uint)c);
                o += 4 + c;
            }
        }
    }

    private static void ShuffleAll(byte* src, byte* block, Bitshuffle.Kernel kernel)
    {
        const int elements = 2048;
        long bytes = (long)EigerFrames.Count * EigerFrames.FrameBytes;
        for (long o = 0; o < bytes; o += 4 * elements)
            Bitshuffle.ShuffleBlock(src + o, block, elements, 4, block + 4 * elements, kernel);
    }

    private static double Median(double[] x)
    {
        var s = x.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
