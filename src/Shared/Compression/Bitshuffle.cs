using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace StdDaq.Shared.Compression;

/// <summary>
/// The bit transpose of bitshuffle (kiyo-masui/bitshuffle, the transform inside HDF5 filter 32008).
/// A block of n elements (n a multiple of 8) of s bytes becomes 8·s bit-rows of n / 8 bytes, one
/// after the other: bit b of byte j of element e goes to bit e % 8 of byte e / 8 of row 8·j + b.
/// A whole buffer is cut into blocks as the C library does: blocks of
/// <see cref="DefaultBlockSize"/> elements, then one block of the remaining elements rounded down
/// to a multiple of 8, then the last n % 8 elements copied unchanged.
/// <para>
/// Kernels (x86): with GFNI, one GF2P8AFFINEQB transposes the 8×8 bit matrix of 8 elements'
/// byte j, 256 elements per step (<see cref="BitshuffleGfni"/>); with AVX2 alone, the C
/// library's byte transpose + movemask, 32 elements per step, and 8×8 transposes by shifts on
/// the way back (<see cref="BitshuffleAvx2"/>). Elements beyond the last whole step, element
/// sizes other than 1, 2, 4, 8 and CPUs without AVX2 take the scalar code, which follows the
/// definition bit by bit and is the tests' oracle.
/// </para>
/// <para>
/// The public methods take spans and check their lengths once; the kernels inside work on pointers
/// fixed once per call, on purpose: they walk input and output with several strides at a time
/// (bit-rows n / 8 bytes apart), where span slicing would add a bounds check per vector on the
/// compression hot path.
/// </para>
/// </summary>
public static unsafe class Bitshuffle
{
    /// <summary>Bytes per block the default block size aims at (BSHUF_TARGET_BLOCK_SIZE_B).</summary>
    public const int TargetBlockBytes = 8192;

    /// <summary>Block sizes are multiples of this many elements (BSHUF_BLOCKED_MULT).</summary>
    public const int BlockMultiple = 8;

    private const int MinBlockElements = 128; // BSHUF_MIN_RECOMMEND_BLOCK

    [ThreadStatic]
    private static byte[]? t_scratch;

    /// <summary>Which kernels may run: the best the CPU has, AVX2 without GFNI (to test and measure it here), or the scalar reference.</summary>
    internal enum Kernel
    {
        Best,
        Avx2,
        Scalar,
    }

    /// <summary>
    /// The C library's default block size in elements (bshuf_default_block_size): 8192 bytes'
    /// worth, rounded down to a multiple of 8, at least 128. Chunks written with block size 0
    /// depend on this staying exactly as it is.
    /// </summary>
    public static int DefaultBlockSize(int elemSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elemSize);
        return Math.Max(TargetBlockBytes / elemSize / BlockMultiple * BlockMultiple, MinBlockElements);
    }

    /// <summary>
    /// Bitshuffles a whole buffer in default-size blocks, exactly as <c>bshuf_bitshuffle(…, block_size = 0)</c>.
    /// <paramref name="dst"/> holds at least src.Length bytes and does not overlap <paramref name="src"/>.
    /// </summary>
    public static void Shuffle(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize) => Blocked(src, dst, elemSize, shuffle: true, Kernel.Best);

    /// <summary>Reverses <see cref="Shuffle"/> (<c>bshuf_bitunshuffle</c>).</summary>
    public static void Unshuffle(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize) => Blocked(src, dst, elemSize, shuffle: false, Kernel.Best);

    /// <summary><see cref="Shuffle"/> through the scalar reference.</summary>
    public static void ShuffleScalar(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize) => Blocked(src, dst, elemSize, shuffle: true, Kernel.Scalar);

    /// <summary><see cref="Unshuffle"/> through the scalar reference.</summary>
    public static void UnshuffleScalar(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize) => Blocked(src, dst, elemSize, shuffle: false, Kernel.Scalar);

    /// <summary>Transposes one block: <paramref name="src"/> holds a multiple of 8 elements.</summary>
    public static void ShuffleBlock(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize)
    {
        int n = CheckBlock(src, dst, elemSize);
        var tmp = Scratch(src.Length);
        fixed (byte* s = src, d = dst, t = tmp)
            ShuffleBlock(s, d, n, elemSize, t);
    }

    /// <summary>Reverses <see cref="ShuffleBlock(ReadOnlySpan{byte}, Span{byte}, int)"/>.</summary>
    public static void UnshuffleBlock(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize)
    {
        int n = CheckBlock(src, dst, elemSize);
        var tmp = Scratch(src.Length);
        fixed (byte* s = src, d = dst, t = tmp)
            UnshuffleBlock(s, d, n, elemSize, t);
    }

    /// <summary>The scalar reference of <see cref="ShuffleBlock(ReadOnlySpan{byte}, Span{byte}, int)"/>.</summary>
    public static void ShuffleBlockScalar(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize)
    {
        int n = CheckBlock(src, dst, elemSize);
        fixed (byte* s = src, d = dst)
            ShuffleGroupsScalar(s, d, n, elemSize, 0);
    }

    /// <summary>The scalar reference of <see cref="UnshuffleBlock(ReadOnlySpan{byte}, Span{byte}, int)"/>.</summary>
    public static void UnshuffleBlockScalar(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize)
    {
        int n = CheckBlock(src, dst, elemSize);
        fixed (byte* s = src, d = dst)
            UnshuffleGroupsScalar(s, d, n, elemSize, 0);
    }

    /// <summary>
    /// A per-thread buffer of at least <paramref name="bytes"/>, reused across calls (grown, never
    /// shrunk), so the calls allocate nothing once warm. Callers must not hold it across a call
    /// that takes it again.
    /// </summary>
    internal static byte[] Scratch(int bytes)
    {
        var s = t_scratch;
        if (s == null || s.Length < bytes)
            t_scratch = s = GC.AllocateUninitializedArray<byte>(Math.Max(bytes, 2 * TargetBlockBytes));
        return s;
    }

    /// <summary>
    /// Transposes a block of <paramref name="n"/> (multiple of 8) elements of <paramref name="s"/>
    /// bytes with the best kernel the CPU has: GFNI for whole 256-element steps, then AVX2 for
    /// 32-element steps, then the scalar code. <paramref name="tmp"/> holds 256·s bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ShuffleBlock(byte* src, byte* dst, int n, int s, byte* tmp, Kernel kernel = Kernel.Best)
    {
        int done = 0;
        if (kernel != Kernel.Scalar && Avx2.IsSupported && s is 1 or 2 or 4 or 8)
        {
            if (kernel == Kernel.Best && BitshuffleGfni.IsSupported)
            {
                done = n / 256 * 256;
                BitshuffleGfni.Shuffle(src, dst, n, s, done, tmp);
            }
            done = s switch
            {
                1 => BitshuffleAvx2.Shuffle1(src, dst, n, done),
                2 => BitshuffleAvx2.Shuffle2(src, dst, n, done),
                4 => BitshuffleAvx2.Shuffle4(src, dst, n, done),
                _ => BitshuffleAvx2.Shuffle8(src, dst, n, done),
            };
        }
        ShuffleGroupsScalar(src, dst, n, s, done / 8);
    }

    /// <summary>
    /// Reverses <see cref="ShuffleBlock(byte*, byte*, int, int, byte*, Kernel)"/>: rows → byte planes
    /// (8×8 bit transposes by GFNI when there is GFNI, else by shifts) → elements, 256 elements per
    /// step, the rest by the scalar code. <paramref name="tmp"/> holds n·s bytes of planes (unused when s = 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void UnshuffleBlock(byte* src, byte* dst, int n, int s, byte* tmp, Kernel kernel = Kernel.Best)
    {
        int done = 0;
        if (kernel != Kernel.Scalar && Avx2.IsSupported && s is 1 or 2 or 4 or 8)
        {
            done = n / 256 * 256;
            if (done > 0)
            {
                bool gfni = kernel == Kernel.Best && BitshuffleGfni.IsSupported;
                byte* planes = s == 1 ? dst : tmp;
                for (int j = 0; j < s; j++)
                    BitshuffleAvx2.RowsToPlane(src + j * n, planes + j * n, n, done, gfni);
                switch (s)
                {
                    case 2: BitshuffleAvx2.PlanesToElements2(planes, dst, n, done); break;
                    case 4: BitshuffleAvx2.PlanesToElements4(planes, dst, n, done); break;
                    case 8: BitshuffleAvx2.PlanesToElements8(planes, dst, n, done); break;
                }
            }
        }
        UnshuffleGroupsScalar(src, dst, n, s, done / 8);
    }

    /// <summary>
    /// Scalar reference: bit-rows of the groups of 8 elements from <paramref name="firstGroup"/>
    /// on, straight from the definition (row 8·j + b, byte g, bit m = bit b of byte j of element 8·g + m).
    /// </summary>
    internal static void ShuffleGroupsScalar(byte* src, byte* dst, int n, int s, int firstGroup)
    {
        int rowBytes = n / 8;
        for (int j = 0; j < s; j++)
            for (int b = 0; b < 8; b++)
            {
                byte* row = dst + (8 * j + b) * rowBytes;
                for (int g = firstGroup; g < rowBytes; g++)
                {
                    int v = 0;
                    for (int m = 0; m < 8; m++)
                        v |= (src[(8 * g + m) * s + j] >> b & 1) << m;
                    row[g] = (byte)v;
                }
            }
    }

    /// <summary>Scalar reference of the reverse, for the groups from <paramref name="firstGroup"/> on.</summary>
    internal static void UnshuffleGroupsScalar(byte* src, byte* dst, int n, int s, int firstGroup)
    {
        int rowBytes = n / 8;
        for (int g = firstGroup; g < rowBytes; g++)
            for (int m = 0; m < 8; m++)
                for (int j = 0; j < s; j++)
                {
                    int v = 0;
                    for (int b = 0; b < 8; b++)
                        v |= (src[(8 * j + b) * rowBytes + g] >> m & 1) << b;
                    dst[(8 * g + m) * s + j] = (byte)v;
                }
    }

    /// <summary>The whole-buffer transform (C's blocking) with a chosen kernel; <see cref="Kernel.Avx2"/> leaves GFNI out.</summary>
    internal static void Blocked(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize, bool shuffle, Kernel kernel)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elemSize);
        if (src.Length % elemSize != 0)
            throw new ArgumentException($"source length {src.Length} is not a multiple of the element size {elemSize}", nameof(src));
        CheckDestination(src, dst);
        int blockElems = DefaultBlockSize(elemSize);
        int elems = src.Length / elemSize;
        var tmp = Scratch(blockElems * elemSize);
        fixed (byte* s0 = src, d0 = dst, t = tmp)
        {
            int e = 0;
            while (e < elems - elems % BlockMultiple)
            {
                int n = Math.Min(blockElems, (elems - e) / BlockMultiple * BlockMultiple);
                byte* s = s0 + (long)e * elemSize, d = d0 + (long)e * elemSize;
                if (shuffle)
                    ShuffleBlock(s, d, n, elemSize, t, kernel);
                else
                    UnshuffleBlock(s, d, n, elemSize, t, kernel);
                e += n;
            }
            src[(e * elemSize)..].CopyTo(dst[(e * elemSize)..]);
        }
    }

    private static int CheckBlock(ReadOnlySpan<byte> src, Span<byte> dst, int elemSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elemSize);
        if (src.Length % (elemSize * BlockMultiple) != 0)
            throw new ArgumentException($"a block is a multiple of {BlockMultiple} elements of {elemSize} bytes; the source has {src.Length} bytes", nameof(src));
        CheckDestination(src, dst);
        return src.Length / elemSize;
    }

    private static void CheckDestination(ReadOnlySpan<byte> src, Span<byte> dst)
    {
        if (dst.Length < src.Length)
            throw new ArgumentException($"destination holds {dst.Length} bytes, the source {src.Length}", nameof(dst));
        if (src.Overlaps(dst))
            throw new ArgumentException("source and destination overlap; the transform is not in place", nameof(dst));
    }
}
