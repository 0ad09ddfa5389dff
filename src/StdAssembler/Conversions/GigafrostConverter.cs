using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace StdDaq.Assembler.Conversions;

/// <summary>
/// GigaFRoST: stream m carries every other row (link = m % 2: rows link, link + 2, ...) of
/// quadrant m / 2, 12-bit packed (3 bytes = 2 pixels). Each row is unpacked to uint16 into its
/// image row; the quadrant's rectangle and flip come from module_positions.
/// </summary>
public sealed class GigafrostConverter(ImageLayout layout) : FrameConverter(layout)
{
    public override void Convert(ReadOnlySpan<byte> frame, Span<byte> image, in ModulePlacement p)
    {
        var g = Layout.Module;
        int link = p.Module % 2;
        int pixels = g.FrameWidth;
        int packedRow = pixels / 2 * 3;
        for (int r = 0; r < g.FrameHeight; r++)
        {
            var dst = MemoryMarshal.Cast<byte, ushort>(image.Slice(RowStart(p, 2 * r + link), pixels * sizeof(ushort)));
            Unpack12(frame.Slice(r * packedRow, packedRow), dst, pixels);
        }
    }

    public override void Fill(Span<byte> image, in ModulePlacement p) => FillRows(image, p, p.Module % 2, 2);

    /// <summary>
    /// Unpacks <paramref name="pixels"/> (even) 12-bit pixels like <see cref="Unpack12Scalar"/>,
    /// 16 pixels per 24 bytes with AVX2 and 8 per 12 bytes with 128-bit vectors. Reads exactly
    /// pixels * 3 / 2 bytes and writes exactly <paramref name="pixels"/> values. Fully optimized
    /// at once (see JungfrauConverter.ConvertPixels).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="src"/> is shorter than pixels * 3 / 2 bytes or <paramref name="dst"/> than <paramref name="pixels"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Unpack12(ReadOnlySpan<byte> src, Span<ushort> dst, int pixels)
    {
        CheckLengths(src, dst, pixels);
        // Lengths checked once above, then loads and stores through refs: slicing the spans at the
        // 24- and 12-byte strides (and 8 or 4 bytes back for the last group) would be bounds-checked every step.
        ref byte s = ref MemoryMarshal.GetReference(src);
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        nint bytes = pixels / 2 * 3;
        nint i = 0, o = 0; // input byte, output pixel
        if (Avx2.IsSupported && bytes >= 32)
        {
            // A 32-byte load holds one 24-byte group and 8 bytes beyond it, so the loop stops while
            // 32 bytes remain and the last whole group is loaded from 8 bytes before it. The dword
            // permute puts group bytes 0..11 in the low lane and 12..23 in the high lane.
            for (; bytes - i >= 32; i += 24, o += 16)
                Store16(Avx2.PermuteVar8x32(Vector256.LoadUnsafe(ref s, (nuint)i).AsInt32(), Vector256.Create(0, 1, 2, 2, 3, 4, 5, 5)), ref d, (nuint)o);
            if (bytes - i >= 24)
            {
                Store16(Avx2.PermuteVar8x32(Vector256.LoadUnsafe(ref s, (nuint)(i - 8)).AsInt32(), Vector256.Create(2, 3, 4, 4, 5, 6, 7, 7)), ref d, (nuint)o);
                i += 24;
                o += 16;
            }
        }
        if (Vector128.IsHardwareAccelerated && bytes >= 16)
        {
            // Same scheme with one 12-byte group per 16-byte load; the last is loaded from 4 bytes before it.
            for (; bytes - i >= 16; i += 12, o += 8)
                Finish(Vector128.Shuffle(Vector128.LoadUnsafe(ref s, (nuint)i),
                    Vector128.Create((byte)0, 1, 1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10, 10, 11))).StoreUnsafe(ref d, (nuint)o);
            if (bytes - i >= 12)
            {
                Finish(Vector128.Shuffle(Vector128.LoadUnsafe(ref s, (nuint)(i - 4)),
                    Vector128.Create((byte)4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11, 12, 13, 14, 14, 15))).StoreUnsafe(ref d, (nuint)o);
                i += 12;
                o += 8;
            }
        }
        Unpack12Pairs(ref Unsafe.Add(ref s, i), ref Unsafe.Add(ref d, o), (int)(bytes - i) / 3);
    }

    /// <summary>Unpacks <paramref name="pixels"/> (even) 12-bit pixels: bytes [a &amp; 0xFF, (a >> 8) | (b &amp; 0xF) &lt;&lt; 4, b >> 4].</summary>
    /// <exception cref="ArgumentException"><paramref name="src"/> is shorter than pixels * 3 / 2 bytes or <paramref name="dst"/> than <paramref name="pixels"/>.</exception>
    public static void Unpack12Scalar(ReadOnlySpan<byte> src, Span<ushort> dst, int pixels)
    {
        CheckLengths(src, dst, pixels);
        Unpack12Pairs(ref MemoryMarshal.GetReference(src), ref MemoryMarshal.GetReference(dst), pixels / 2);
    }

    /// <summary>The scalar loop over <paramref name="pairs"/> 3-byte groups, lengths already checked.</summary>
    private static void Unpack12Pairs(ref byte src, ref ushort dst, int pairs)
    {
        // A native-sized index: the byte offsets need no sign extension each step.
        for (nint j = 0; j < pairs; j++)
        {
            uint b0 = Unsafe.Add(ref src, 3 * j), b1 = Unsafe.Add(ref src, 3 * j + 1), b2 = Unsafe.Add(ref src, 3 * j + 2);
            Unsafe.Add(ref dst, 2 * j) = (ushort)(b0 | (b1 & 0xF) << 8);
            Unsafe.Add(ref dst, 2 * j + 1) = (ushort)(b1 >> 4 | b2 << 4);
        }
    }

    private static void CheckLengths(ReadOnlySpan<byte> src, Span<ushort> dst, int pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pixels);
        if (src.Length < pixels / 2 * 3 || dst.Length < pixels)
            throw new ArgumentException($"{pixels} pixels need {pixels / 2 * 3} packed bytes and {pixels} values; src has {src.Length}, dst {dst.Length}");
    }

    /// <summary>
    /// <paramref name="groups"/> holds one 12-byte group in each 128-bit lane; each lane's bytes
    /// are shuffled to (b0, b1) for an even pixel and (b1, b2) for an odd one, then finished.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16(Vector256<int> groups, ref ushort dst, nuint o)
    {
        var pairs = Avx2.Shuffle(groups.AsByte(),
            Vector256.Create((byte)0, 1, 1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10, 10, 11, 0, 1, 1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10, 10, 11));
        // Even pixel: (b0 | b1 << 8) * 16 drops b1's high nibble, >> 4 leaves b0 | (b1 & 0xF) << 8.
        // Odd pixel: (b1 | b2 << 8) >> 4.
        Vector256.ShiftRightLogical(pairs.AsUInt16() * Vector256.Create((ushort)16, 1, 16, 1, 16, 1, 16, 1, 16, 1, 16, 1, 16, 1, 16, 1), 4).StoreUnsafe(ref dst, o);
    }

    /// <summary>Each 16-bit lane of <paramref name="pairs"/> holds (b0, b1) for an even pixel, (b1, b2) for an odd one; see <see cref="Store16"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ushort> Finish(Vector128<byte> pairs) =>
        Vector128.ShiftRightLogical(pairs.AsUInt16() * Vector128.Create((ushort)16, 1, 16, 1, 16, 1, 16, 1), 4);
}
