using System.Buffers.Binary;
using System.Runtime.Intrinsics.X86;
using StdDaq.Shared.Compression;
using StdDaq.Shared.Interop;

namespace StdDaq.Benchmarks.Compression;

/// <summary>
/// What the timings need next to them: whether Debian's libh5bshuf.so was compiled with AVX2
/// (bshuf_using_AVX2, and bshuf_trans_bit_elem_AVX returning -12 when it was not), which SIMD
/// our side uses, and the compression ratios of both on the EIGER frames, each chunk checked by
/// the other side's decompressor.
/// </summary>
public static unsafe class Info
{
    public static int Run()
    {
        H5Bshuf.EnsureAvailable();
        var probe = new byte[64 * 4];
        var tmp = new byte[probe.Length];
        long avx;
        fixed (byte* p = probe, t = tmp)
            avx = H5Bshuf.bshuf_trans_bit_elem_AVX(p, t, 64, 4);
        Console.WriteLine($"libh5bshuf.so: bshuf_using_SSE2() = {H5Bshuf.bshuf_using_SSE2()}, bshuf_using_AVX2() = {H5Bshuf.bshuf_using_AVX2()}, " +
            $"bshuf_trans_bit_elem_AVX(64 x 4 bytes) = {avx}{(avx == H5Bshuf.NotCompiledWithAvx2 ? " (compiled without AVX2: SSE2 code path)" : "")}");
        Console.WriteLine($"ours: Avx2 {Avx2.IsSupported}, Avx512BW {Avx512BW.IsSupported}, Gfni {Gfni.IsSupported}: " +
            $"the best kernel is {(Gfni.V256.IsSupported && Avx2.IsSupported ? "GFNI + AVX2" : Avx2.IsSupported ? "AVX2" : "scalar")}");

        var frames = EigerFrames.Load();
        long raw = 0, ours = 0, c = 0;
        int identical = 0;
        var chunk = new byte[BitshuffleLz4.MaxCompressedSize(EigerFrames.FrameBytes, 4)];
        var cChunk = new byte[chunk.Length];
        var back = new byte[EigerFrames.FrameBytes];
        foreach (var frame in frames)
        {
            int n = BitshuffleLz4.Compress(frame, 4, chunk);
            long cn;
            fixed (byte* f = frame, cc = cChunk, b = back, o = chunk)
            {
                cn = H5Bshuf.bshuf_compress_lz4(f, cc + 12, EigerFrames.FrameBytes / 4, 4, 0);
                if (H5Bshuf.bshuf_decompress_lz4(o + 12, b, EigerFrames.FrameBytes / 4, 4, 0) != n - 12 || !back.AsSpan().SequenceEqual(frame))
                    return Fail("C does not decompress our chunk to the frame");
            }
            BinaryPrimitives.WriteUInt64BigEndian(cChunk, EigerFrames.FrameBytes); // the filter's header
            BinaryPrimitives.WriteUInt32BigEndian(cChunk.AsSpan(8), 8192);
            BitshuffleLz4.Decompress(cChunk.AsSpan(0, 12 + (int)cn), 4, back);
            if (!back.AsSpan().SequenceEqual(frame))
                return Fail("we do not decompress C's chunk to the frame");
            if (chunk.AsSpan(0, n).SequenceEqual(cChunk.AsSpan(0, 12 + (int)cn)))
                identical++;
            raw += frame.Length;
            ours += n;
            c += 12 + cn;
        }
        Console.WriteLine($"{frames.Count} EIGER frames, {raw} bytes: ours {ours} bytes (ratio {raw / (double)ours:F3}), C {c} bytes (ratio {raw / (double)c:F3}); " +
            $"{identical} of {frames.Count} chunks byte-identical");
        return 0;
    }

    private static int Fail(string what)
    {
        Console.Error.WriteLine($"cross-check failed: {what}");
        return 1;
    }
}
