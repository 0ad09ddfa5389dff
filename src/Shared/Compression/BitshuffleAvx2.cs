using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace StdDaq.Shared.Compression;

/// <summary>
/// The AVX2 kernels of <see cref="Bitshuffle"/> for 1-, 2-, 4- and 8-byte elements, and the
/// in-register transposes the GFNI kernels share. Forward: 32 elements per step, a byte transpose
/// gives one vector per byte plane (byte j of 32 consecutive elements) and 8 movemasks of it,
/// shifted one bit each time, are 32-bit pieces of its 8 bit-rows (the C library's approach).
/// Reverse: per plane, 8 bit-rows → 8×8 bit transposes in 64-bit lanes → plane bytes, 256
/// elements per step; then planes → elements, 32 per step.
/// </summary>
internal static unsafe class BitshuffleAvx2
{
    // Per 128-bit lane: bytes of 4 uint32 → [byte 0 of the 4, byte 1 of the 4, byte 2…, byte 3…]; its own inverse.
    public static Vector256<byte> Bytes4 => Vector256.Create((byte)0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);

    // Per lane: 8 uint16 → [low bytes, high bytes]; the inverse of Interleave8.
    public static Vector256<byte> Split2 => Vector256.Create((byte)0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);

    // Per lane: 2 uint64 → 8 words (byte j of both); the inverse of Split2.
    public static Vector256<byte> Interleave8 => Vector256.Create((byte)0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);

    // ---- elements → bit-rows, from element `start` (a multiple of 32) while 32 remain; each returns where it stopped. ----

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Shuffle1(byte* src, byte* dst, int n, int start)
    {
        nint rowBytes = n / 8;
        int i = start;
        for (; i + 32 <= n; i += 32)
            StoreBitRows(Vector256.Load(src + i), dst + i / 8, rowBytes);
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Shuffle2(byte* src, byte* dst, int n, int start)
    {
        nint rowBytes = n / 8;
        var split = Split2;
        int i = start;
        for (; i + 32 <= n; i += 32)
        {
            // Lanes hold elements 0-7 | 16-23 and 8-15 | 24-31, so the planes come out in element order.
            byte* e = src + 2 * i;
            var a = Avx2.Shuffle(Load2(e, e + 32), split).AsUInt64();
            var b = Avx2.Shuffle(Load2(e + 16, e + 48), split).AsUInt64();
            byte* o = dst + i / 8;
            StoreBitRows(Avx2.UnpackLow(a, b).AsByte(), o, rowBytes);
            StoreBitRows(Avx2.UnpackHigh(a, b).AsByte(), o + 8 * rowBytes, rowBytes);
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Shuffle4(byte* src, byte* dst, int n, int start)
    {
        nint rowBytes = n / 8;
        var bytes4 = Bytes4;
        int i = start;
        for (; i + 32 <= n; i += 32)
        {
            // Lanes hold elements 0-3 | 16-19, 4-7 | 20-23, 8-11 | 24-27, 12-15 | 28-31; after the
            // in-lane byte transpose each lane is [plane 0, 1, 2, 3] of its 4 elements as uint32s,
            // and a 4×4 transpose of those uint32s across the vectors gives one vector per plane.
            byte* e = src + 4 * i;
            var a = Avx2.Shuffle(Load2(e, e + 64), bytes4).AsUInt32();
            var b = Avx2.Shuffle(Load2(e + 16, e + 80), bytes4).AsUInt32();
            var c = Avx2.Shuffle(Load2(e + 32, e + 96), bytes4).AsUInt32();
            var d = Avx2.Shuffle(Load2(e + 48, e + 112), bytes4).AsUInt32();
            Transpose4x4(ref a, ref b, ref c, ref d);
            byte* o = dst + i / 8;
            StoreBitRows(a.AsByte(), o, rowBytes);
            StoreBitRows(b.AsByte(), o + 8 * rowBytes, rowBytes);
            StoreBitRows(c.AsByte(), o + 16 * rowBytes, rowBytes);
            StoreBitRows(d.AsByte(), o + 24 * rowBytes, rowBytes);
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Shuffle8(byte* src, byte* dst, int n, int start)
    {
        nint rowBytes = n / 8;
        var interleave = Interleave8;
        int i = start;
        for (; i + 32 <= n; i += 32)
        {
            // Vector k holds elements 2k, 2k+1 | 16+2k, 17+2k; per lane, words [plane 0, …, plane 7]
            // of its 2 elements; an 8×8 transpose of the words gives one vector per plane.
            byte* e = src + 8 * i;
            var x0 = Avx2.Shuffle(Load2(e, e + 128), interleave).AsUInt16();
            var x1 = Avx2.Shuffle(Load2(e + 16, e + 144), interleave).AsUInt16();
            var x2 = Avx2.Shuffle(Load2(e + 32, e + 160), interleave).AsUInt16();
            var x3 = Avx2.Shuffle(Load2(e + 48, e + 176), interleave).AsUInt16();
            var x4 = Avx2.Shuffle(Load2(e + 64, e + 192), interleave).AsUInt16();
            var x5 = Avx2.Shuffle(Load2(e + 80, e + 208), interleave).AsUInt16();
            var x6 = Avx2.Shuffle(Load2(e + 96, e + 224), interleave).AsUInt16();
            var x7 = Avx2.Shuffle(Load2(e + 112, e + 240), interleave).AsUInt16();
            Transpose8x8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
            byte* o = dst + i / 8;
            StoreBitRows(x0.AsByte(), o, rowBytes);
            StoreBitRows(x1.AsByte(), o + 8 * rowBytes, rowBytes);
            StoreBitRows(x2.AsByte(), o + 16 * rowBytes, rowBytes);
            StoreBitRows(x3.AsByte(), o + 24 * rowBytes, rowBytes);
            StoreBitRows(x4.AsByte(), o + 32 * rowBytes, rowBytes);
            StoreBitRows(x5.AsByte(), o + 40 * rowBytes, rowBytes);
            StoreBitRows(x6.AsByte(), o + 48 * rowBytes, rowBytes);
            StoreBitRows(x7.AsByte(), o + 56 * rowBytes, rowBytes);
        }
        return i;
    }

    /// <summary>The 8 bit-rows of one plane vector (byte j of 32 consecutive elements) at <paramref name="row0"/>, row0 + rowBytes, ….</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreBitRows(Vector256<byte> plane, byte* row0, nint rowBytes)
    {
        // Bit 7 first: movemask takes each byte's top bit; doubling the bytes brings up the next.
        byte* p = row0 + 7 * rowBytes;
        *(int*)p = Avx2.MoveMask(plane);
        plane = Avx2.Add(plane, plane);
        *(int*)(p -= rowBytes) = Avx2.MoveMask(plane);
        plane = Avx2.Add(plane, plane);
        *(int*)(p -= rowBytes) = Avx2.MoveMask(plane);
        plane = Avx2.Add(plane, plane);
        *(int*)(p -= rowBytes) = Avx2.MoveMask(plane);
        plane = Avx2.Add(plane, plane);
        *(int*)(p -= rowBytes) = Avx2.MoveMask(plane);
        plane = Avx2.Add(plane, plane);
        *(int*)(p -= rowBytes) = Avx2.MoveMask(plane);
        plane = Avx2.Add(plane, plane);
        *(int*)(p -= rowBytes) = Avx2.MoveMask(plane);
        plane = Avx2.Add(plane, plane);
        *(int*)(p - rowBytes) = Avx2.MoveMask(plane);
    }

    // ---- bit-rows → elements, through byte planes. ----

    /// <summary>
    /// The 8 bit-rows at <paramref name="rows"/> (each n / 8 bytes) → plane bytes for elements
    /// [0, <paramref name="count"/>) (a multiple of 256), 32 bytes of each row per step. The 8×8
    /// bit transposes are one GF2P8AFFINEQB each with <paramref name="gfni"/>, else three
    /// shift-and-mask swaps.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RowsToPlane(byte* rows, byte* plane, int n, int count, bool gfni)
    {
        nint rowBytes = n / 8;
        // With GFNI the rows are taken last to first (see BitshuffleGfni.Transpose).
        byte* first = gfni ? rows + 7 * rowBytes : rows;
        nint step = gfni ? -rowBytes : rowBytes;
        for (int g = 0; g < count / 8; g += 32)
        {
            byte* r = first + g;
            var r0 = Vector256.Load(r);
            var r1 = Vector256.Load(r + step);
            var r2 = Vector256.Load(r + 2 * step);
            var r3 = Vector256.Load(r + 3 * step);
            var r4 = Vector256.Load(r + 4 * step);
            var r5 = Vector256.Load(r + 5 * step);
            var r6 = Vector256.Load(r + 6 * step);
            var r7 = Vector256.Load(r + 7 * step);
            // Bytes → uint16 → uint32 → uint64: each uint64 gathers byte g of rows 0-7 (r_b in
            // byte b). Lane 0 covers groups g..g+15, lane 1 groups g+16..g+31; vector k ends up
            // with groups 2k, 2k+1 | 16+2k, 17+2k.
            var a0 = Avx2.UnpackLow(r0, r1).AsUInt16();  // groups 0-7 | 16-23, rows 0,1
            var a1 = Avx2.UnpackHigh(r0, r1).AsUInt16(); // groups 8-15 | 24-31
            var a2 = Avx2.UnpackLow(r2, r3).AsUInt16();
            var a3 = Avx2.UnpackHigh(r2, r3).AsUInt16();
            var a4 = Avx2.UnpackLow(r4, r5).AsUInt16();
            var a5 = Avx2.UnpackHigh(r4, r5).AsUInt16();
            var a6 = Avx2.UnpackLow(r6, r7).AsUInt16();
            var a7 = Avx2.UnpackHigh(r6, r7).AsUInt16();
            var b0 = Avx2.UnpackLow(a0, a2).AsUInt32();  // groups 0-3, rows 0-3
            var b1 = Avx2.UnpackHigh(a0, a2).AsUInt32(); // groups 4-7
            var b2 = Avx2.UnpackLow(a4, a6).AsUInt32();  // groups 0-3, rows 4-7
            var b3 = Avx2.UnpackHigh(a4, a6).AsUInt32();
            var b4 = Avx2.UnpackLow(a1, a3).AsUInt32();  // groups 8-11, rows 0-3
            var b5 = Avx2.UnpackHigh(a1, a3).AsUInt32();
            var b6 = Avx2.UnpackLow(a5, a7).AsUInt32();
            var b7 = Avx2.UnpackHigh(a5, a7).AsUInt32();
            byte* p = plane + 8 * g;
            StorePlaneBytes(Avx2.UnpackLow(b0, b2).AsUInt64(), p, gfni);        // groups 0,1 | 16,17
            StorePlaneBytes(Avx2.UnpackHigh(b0, b2).AsUInt64(), p + 16, gfni);  // groups 2,3 | 18,19
            StorePlaneBytes(Avx2.UnpackLow(b1, b3).AsUInt64(), p + 32, gfni);
            StorePlaneBytes(Avx2.UnpackHigh(b1, b3).AsUInt64(), p + 48, gfni);
            StorePlaneBytes(Avx2.UnpackLow(b4, b6).AsUInt64(), p + 64, gfni);
            StorePlaneBytes(Avx2.UnpackHigh(b4, b6).AsUInt64(), p + 80, gfni);
            StorePlaneBytes(Avx2.UnpackLow(b5, b7).AsUInt64(), p + 96, gfni);
            StorePlaneBytes(Avx2.UnpackHigh(b5, b7).AsUInt64(), p + 112, gfni);
        }
    }

    /// <summary>
    /// Each uint64 of <paramref name="x"/> holds one group's byte from rows 0-7 (7-0 with GFNI);
    /// its 8×8 bit transpose is that group's 8 plane bytes. Lane 0 goes to <paramref name="p"/>,
    /// lane 1 to p + 128 (16 groups further on).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePlaneBytes(Vector256<ulong> x, byte* p, bool gfni)
    {
        if (gfni)
        {
            x = BitshuffleGfni.Transpose(x.AsByte()).AsUInt64();
        }
        else
        {
            // The three swap steps of an 8×8 bit transpose (bit i of byte j ↔ bit j of byte i).
            var t = (x ^ (x >>> 7)) & Vector256.Create(0x00AA00AA00AA00AAUL);
            x = x ^ t ^ (t << 7);
            t = (x ^ (x >>> 14)) & Vector256.Create(0x0000CCCC0000CCCCUL);
            x = x ^ t ^ (t << 14);
            t = (x ^ (x >>> 28)) & Vector256.Create(0x00000000F0F0F0F0UL);
            x = x ^ t ^ (t << 28);
        }
        x.GetLower().Store((ulong*)p);
        x.GetUpper().Store((ulong*)(p + 128));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PlanesToElements2(byte* planes, byte* dst, int n, int count)
    {
        var interleave = Interleave8;
        for (int i = 0; i < count; i += 32)
        {
            var p0 = Vector256.Load(planes + i).AsUInt64();
            var p1 = Vector256.Load(planes + n + i).AsUInt64();
            var a = Avx2.Shuffle(Avx2.UnpackLow(p0, p1).AsByte(), interleave);  // elements 0-7 | 16-23
            var b = Avx2.Shuffle(Avx2.UnpackHigh(p0, p1).AsByte(), interleave); // elements 8-15 | 24-31
            byte* e = dst + 2 * i;
            StoreSplit(a, e, e + 32);
            StoreSplit(b, e + 16, e + 48);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PlanesToElements4(byte* planes, byte* dst, int n, int count)
    {
        var bytes4 = Bytes4;
        for (int i = 0; i < count; i += 32)
        {
            var a = Vector256.Load(planes + i).AsUInt32();
            var b = Vector256.Load(planes + n + i).AsUInt32();
            var c = Vector256.Load(planes + 2 * n + i).AsUInt32();
            var d = Vector256.Load(planes + 3 * n + i).AsUInt32();
            Transpose4x4(ref a, ref b, ref c, ref d); // now as in Shuffle4 before its transpose
            byte* e = dst + 4 * i;
            StoreSplit(Avx2.Shuffle(a.AsByte(), bytes4), e, e + 64);
            StoreSplit(Avx2.Shuffle(b.AsByte(), bytes4), e + 16, e + 80);
            StoreSplit(Avx2.Shuffle(c.AsByte(), bytes4), e + 32, e + 96);
            StoreSplit(Avx2.Shuffle(d.AsByte(), bytes4), e + 48, e + 112);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PlanesToElements8(byte* planes, byte* dst, int n, int count)
    {
        var split = Split2;
        for (int i = 0; i < count; i += 32)
        {
            byte* p = planes + i;
            var x0 = Vector256.Load(p).AsUInt16();
            var x1 = Vector256.Load(p + n).AsUInt16();
            var x2 = Vector256.Load(p + 2 * n).AsUInt16();
            var x3 = Vector256.Load(p + 3 * n).AsUInt16();
            var x4 = Vector256.Load(p + 4 * n).AsUInt16();
            var x5 = Vector256.Load(p + 5 * n).AsUInt16();
            var x6 = Vector256.Load(p + 6 * n).AsUInt16();
            var x7 = Vector256.Load(p + 7 * n).AsUInt16();
            Transpose8x8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
            byte* e = dst + 8 * i;
            StoreSplit(Avx2.Shuffle(x0.AsByte(), split), e, e + 128);
            StoreSplit(Avx2.Shuffle(x1.AsByte(), split), e + 16, e + 144);
            StoreSplit(Avx2.Shuffle(x2.AsByte(), split), e + 32, e + 160);
            StoreSplit(Avx2.Shuffle(x3.AsByte(), split), e + 48, e + 176);
            StoreSplit(Avx2.Shuffle(x4.AsByte(), split), e + 64, e + 192);
            StoreSplit(Avx2.Shuffle(x5.AsByte(), split), e + 80, e + 208);
            StoreSplit(Avx2.Shuffle(x6.AsByte(), split), e + 96, e + 224);
            StoreSplit(Avx2.Shuffle(x7.AsByte(), split), e + 112, e + 240);
        }
    }

    // ---- shared pieces ----

    /// <summary>Two 16-byte loads into one vector: <paramref name="lo"/> in lane 0, <paramref name="hi"/> in lane 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load2(byte* lo, byte* hi) => Vector256.Create(Vector128.Load(lo), Vector128.Load(hi));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreSplit(Vector256<byte> v, byte* lo, byte* hi)
    {
        v.GetLower().Store(lo);
        v.GetUpper().Store(hi);
    }

    /// <summary>Per 128-bit lane, transposes the 4×4 uint32 matrix whose rows are a, b, c, d (its own inverse).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transpose4x4(ref Vector256<uint> a, ref Vector256<uint> b, ref Vector256<uint> c, ref Vector256<uint> d)
    {
        var ab0 = Avx2.UnpackLow(a, b).AsUInt64();  // a0 b0 a1 b1
        var ab1 = Avx2.UnpackHigh(a, b).AsUInt64(); // a2 b2 a3 b3
        var cd0 = Avx2.UnpackLow(c, d).AsUInt64();
        var cd1 = Avx2.UnpackHigh(c, d).AsUInt64();
        a = Avx2.UnpackLow(ab0, cd0).AsUInt32();   // a0 b0 c0 d0
        b = Avx2.UnpackHigh(ab0, cd0).AsUInt32();  // a1 b1 c1 d1
        c = Avx2.UnpackLow(ab1, cd1).AsUInt32();
        d = Avx2.UnpackHigh(ab1, cd1).AsUInt32();
    }

    /// <summary>Per 128-bit lane, transposes the 8×8 uint16 matrix whose rows are x0 … x7 (its own inverse).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transpose8x8(ref Vector256<ushort> x0, ref Vector256<ushort> x1, ref Vector256<ushort> x2, ref Vector256<ushort> x3,
        ref Vector256<ushort> x4, ref Vector256<ushort> x5, ref Vector256<ushort> x6, ref Vector256<ushort> x7)
    {
        // Words → pairs (uint32) → quads (uint64) → rows of 8.
        var a0 = Avx2.UnpackLow(x0, x1).AsUInt32();  // columns 0-3 of rows 0,1
        var a1 = Avx2.UnpackHigh(x0, x1).AsUInt32(); // columns 4-7 of rows 0,1
        var a2 = Avx2.UnpackLow(x2, x3).AsUInt32();
        var a3 = Avx2.UnpackHigh(x2, x3).AsUInt32();
        var a4 = Avx2.UnpackLow(x4, x5).AsUInt32();
        var a5 = Avx2.UnpackHigh(x4, x5).AsUInt32();
        var a6 = Avx2.UnpackLow(x6, x7).AsUInt32();
        var a7 = Avx2.UnpackHigh(x6, x7).AsUInt32();
        var b0 = Avx2.UnpackLow(a0, a2).AsUInt64();  // columns 0,1 of rows 0-3
        var b1 = Avx2.UnpackHigh(a0, a2).AsUInt64(); // columns 2,3 of rows 0-3
        var b2 = Avx2.UnpackLow(a1, a3).AsUInt64();  // columns 4,5
        var b3 = Avx2.UnpackHigh(a1, a3).AsUInt64(); // columns 6,7
        var b4 = Avx2.UnpackLow(a4, a6).AsUInt64();  // columns 0,1 of rows 4-7
        var b5 = Avx2.UnpackHigh(a4, a6).AsUInt64();
        var b6 = Avx2.UnpackLow(a5, a7).AsUInt64();
        var b7 = Avx2.UnpackHigh(a5, a7).AsUInt64();
        x0 = Avx2.UnpackLow(b0, b4).AsUInt16();
        x1 = Avx2.UnpackHigh(b0, b4).AsUInt16();
        x2 = Avx2.UnpackLow(b1, b5).AsUInt16();
        x3 = Avx2.UnpackHigh(b1, b5).AsUInt16();
        x4 = Avx2.UnpackLow(b2, b6).AsUInt16();
        x5 = Avx2.UnpackHigh(b2, b6).AsUInt16();
        x6 = Avx2.UnpackLow(b3, b7).AsUInt16();
        x7 = Avx2.UnpackHigh(b3, b7).AsUInt16();
    }
}
