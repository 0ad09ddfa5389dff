using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static StdDaq.Shared.Compression.BitshuffleAvx2;

namespace StdDaq.Shared.Compression;

/// <summary>
/// The GFNI kernel of <see cref="Bitshuffle"/> (elements → bit-rows), 256 elements per step: one
/// GF2P8AFFINEQB transposes the 8×8 bit matrix of a whole group of 8 elements, where the
/// movemask kernel needs 8 movemasks, 7 adds and 8 stores per 32 bytes. Per step, the byte
/// planes of the 256 elements are staged (32 bytes per plane and group k = 0..7, holding groups
/// k, k+8 | 16+k, 24+k, each group's bytes last element first), then per plane 8 transposes give
/// each group's 8 row bytes and a 4-stage unpack network turns them into 8 row vectors of 32
/// bytes, stored whole.
/// </summary>
internal static unsafe class BitshuffleGfni
{
    public static bool IsSupported => Gfni.V256.IsSupported && Avx2.IsSupported;

    // Per lane: 4 uint32 → byte j of the 4 as a uint32, last element first (Bytes4 with each group reversed).
    private static Vector256<byte> Bytes4Reversed => Vector256.Create((byte)12, 8, 4, 0, 13, 9, 5, 1, 14, 10, 6, 2, 15, 11, 7, 3, 12, 8, 4, 0, 13, 9, 5, 1, 14, 10, 6, 2, 15, 11, 7, 3);

    // Per lane: 8 uint16 → [low bytes, high bytes], last element first.
    private static Vector256<byte> Split2Reversed => Vector256.Create((byte)14, 12, 10, 8, 6, 4, 2, 0, 15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0, 15, 13, 11, 9, 7, 5, 3, 1);

    // Per lane: 2 uint64 (A, B) → 8 words (B.j, A.j): byte j of both, the second first.
    private static Vector256<byte> Interleave8Reversed => Vector256.Create((byte)8, 0, 9, 1, 10, 2, 11, 3, 12, 4, 13, 5, 14, 6, 15, 7, 8, 0, 9, 1, 10, 2, 11, 3, 12, 4, 13, 5, 14, 6, 15, 7);

    /// <summary>
    /// 8×8 bit transpose of each uint64 with its bytes taken last to first: result byte i, bit k =
    /// bit i of source byte 7 - k (GF2P8AFFINEQB with the data as the matrix and x = 1 &lt;&lt; i).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Transpose(Vector256<byte> x) =>
        Gfni.V256.GaloisFieldAffineTransform(Vector256.Create(0x8040201008040201UL).AsByte(), x, 0);

    /// <summary>
    /// Elements [0, <paramref name="count"/>) (a multiple of 256) of a block of
    /// <paramref name="n"/> elements of <paramref name="s"/> bytes (1, 2, 4, 8) → bit-rows;
    /// <paramref name="stage"/> holds 256·s bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Shuffle(byte* src, byte* dst, int n, int s, int count, byte* stage)
    {
        nint rowBytes = n / 8;
        for (int c = 0; c < count; c += 256)
        {
            byte* e = src + (nint)c * s;
            switch (s)
            {
                case 1: Stage1(e, stage); break;
                case 2: Stage2(e, stage); break;
                case 4: Stage4(e, stage); break;
                default: Stage8(e, stage); break;
            }
            for (int j = 0; j < s; j++)
                PlaneToRows(stage + 256 * j, dst + 8 * j * rowBytes + c / 8, rowBytes);
        }
    }

    // Each StageN fills stage[256·j + 32·k], k = 0..7, with plane j of groups k, k+8 | 16+k, 24+k,
    // every group's 8 bytes last element first; the Load2 addresses below pick those groups.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Stage1(byte* e, byte* stage)
    {
        for (int k = 0; k < 8; k++)
        {
            byte* g = e + 8 * k;
            Vector256.Create(Rev(g), Rev(g + 64), Rev(g + 128), Rev(g + 192)).Store((ulong*)(stage + 32 * k));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Rev(byte* p) => BinaryPrimitives.ReverseEndianness(*(ulong*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Stage2(byte* e, byte* stage)
    {
        var split = Split2Reversed;
        for (int k = 0; k < 8; k++)
        {
            byte* g = e + 16 * k; // a group is 16 bytes
            var a = Avx2.Shuffle(Load2(g, g + 256), split).AsUInt64();        // groups k | 16+k: [plane 0, plane 1]
            var b = Avx2.Shuffle(Load2(g + 128, g + 384), split).AsUInt64();  // groups k+8 | 24+k
            Avx2.UnpackLow(a, b).Store((ulong*)(stage + 32 * k));
            Avx2.UnpackHigh(a, b).Store((ulong*)(stage + 256 + 32 * k));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Stage4(byte* e, byte* stage)
    {
        var bytes4 = Bytes4Reversed;
        for (int k = 0; k < 8; k++)
        {
            // A group is 32 bytes; a goes first in each plane's uint64, so it takes the group's
            // last 4 elements (and c of group k+8 likewise).
            byte* g = e + 32 * k;
            var a = Avx2.Shuffle(Load2(g + 16, g + 528), bytes4).AsUInt32();
            var b = Avx2.Shuffle(Load2(g, g + 512), bytes4).AsUInt32();
            var c = Avx2.Shuffle(Load2(g + 272, g + 784), bytes4).AsUInt32();
            var d = Avx2.Shuffle(Load2(g + 256, g + 768), bytes4).AsUInt32();
            Transpose4x4(ref a, ref b, ref c, ref d);
            a.Store((uint*)(stage + 32 * k));
            b.Store((uint*)(stage + 256 + 32 * k));
            c.Store((uint*)(stage + 512 + 32 * k));
            d.Store((uint*)(stage + 768 + 32 * k));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Stage8(byte* e, byte* stage)
    {
        var interleave = Interleave8Reversed;
        for (int k = 0; k < 8; k++)
        {
            // A group is 64 bytes, 16 per element pair; pairs go in last to first, each pair's
            // words second element first, so each plane's uint64 runs from element 7 down to 0.
            byte* g = e + 64 * k;
            var x0 = Avx2.Shuffle(Load2(g + 48, g + 1072), interleave).AsUInt16();
            var x1 = Avx2.Shuffle(Load2(g + 32, g + 1056), interleave).AsUInt16();
            var x2 = Avx2.Shuffle(Load2(g + 16, g + 1040), interleave).AsUInt16();
            var x3 = Avx2.Shuffle(Load2(g, g + 1024), interleave).AsUInt16();
            var x4 = Avx2.Shuffle(Load2(g + 560, g + 1584), interleave).AsUInt16();
            var x5 = Avx2.Shuffle(Load2(g + 544, g + 1568), interleave).AsUInt16();
            var x6 = Avx2.Shuffle(Load2(g + 528, g + 1552), interleave).AsUInt16();
            var x7 = Avx2.Shuffle(Load2(g + 512, g + 1536), interleave).AsUInt16();
            Transpose8x8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
            byte* p = stage + 32 * k;
            x0.Store((ushort*)p);
            x1.Store((ushort*)(p + 256));
            x2.Store((ushort*)(p + 512));
            x3.Store((ushort*)(p + 768));
            x4.Store((ushort*)(p + 1024));
            x5.Store((ushort*)(p + 1280));
            x6.Store((ushort*)(p + 1536));
            x7.Store((ushort*)(p + 1792));
        }
    }

    /// <summary>
    /// One staged plane (8 vectors; vector k = groups k, k+8 | 16+k, 24+k) → its 8 bit-rows, 32
    /// bytes (groups 0-31) each, at <paramref name="row0"/> + b·rowBytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PlaneToRows(byte* plane, byte* row0, nint rowBytes)
    {
        // After the transposes, byte b of each uint64 is the group's byte of row b. Naming a group
        // g = 16·lane + 8·g3 + 4·g2 + 2·g1 + g0, vector k = (g2 g1 g0) and uint64 g3 within the
        // lane; each unpack stage pairs vectors on one group bit and moves it into the byte index,
        // while the top row bit moves into the vector index: bytes end as g3 g2 g1 g0, vectors as rows.
        var v0 = Transpose(Vector256.Load(plane));
        var v1 = Transpose(Vector256.Load(plane + 32));
        var v2 = Transpose(Vector256.Load(plane + 64));
        var v3 = Transpose(Vector256.Load(plane + 96));
        var v4 = Transpose(Vector256.Load(plane + 128));
        var v5 = Transpose(Vector256.Load(plane + 160));
        var v6 = Transpose(Vector256.Load(plane + 192));
        var v7 = Transpose(Vector256.Load(plane + 224));
        var a0 = Avx2.UnpackLow(v0, v1).AsUInt16();  // pair on g0; g3 = 0, (g2 g1) = 0
        var a1 = Avx2.UnpackLow(v2, v3).AsUInt16();  // g3 = 0, (g2 g1) = 1
        var a2 = Avx2.UnpackLow(v4, v5).AsUInt16();
        var a3 = Avx2.UnpackLow(v6, v7).AsUInt16();
        var a4 = Avx2.UnpackHigh(v0, v1).AsUInt16(); // g3 = 1
        var a5 = Avx2.UnpackHigh(v2, v3).AsUInt16();
        var a6 = Avx2.UnpackHigh(v4, v5).AsUInt16();
        var a7 = Avx2.UnpackHigh(v6, v7).AsUInt16();
        var b0 = Avx2.UnpackLow(a0, a1).AsUInt32();  // pair on g1; g3 = 0, g2 = 0, rows 0-3
        var b1 = Avx2.UnpackHigh(a0, a1).AsUInt32(); // g3 = 0, g2 = 0, rows 4-7
        var b2 = Avx2.UnpackLow(a2, a3).AsUInt32();  // g3 = 0, g2 = 1
        var b3 = Avx2.UnpackHigh(a2, a3).AsUInt32();
        var b4 = Avx2.UnpackLow(a4, a5).AsUInt32();  // g3 = 1, g2 = 0
        var b5 = Avx2.UnpackHigh(a4, a5).AsUInt32();
        var b6 = Avx2.UnpackLow(a6, a7).AsUInt32();  // g3 = 1, g2 = 1
        var b7 = Avx2.UnpackHigh(a6, a7).AsUInt32();
        var c0 = Avx2.UnpackLow(b0, b2).AsUInt64();  // pair on g2; g3 = 0, rows 0,1
        var c1 = Avx2.UnpackHigh(b0, b2).AsUInt64(); // g3 = 0, rows 2,3
        var c2 = Avx2.UnpackLow(b1, b3).AsUInt64();  // g3 = 0, rows 4,5
        var c3 = Avx2.UnpackHigh(b1, b3).AsUInt64(); // g3 = 0, rows 6,7
        var c4 = Avx2.UnpackLow(b4, b6).AsUInt64();  // g3 = 1, rows 0,1
        var c5 = Avx2.UnpackHigh(b4, b6).AsUInt64();
        var c6 = Avx2.UnpackLow(b5, b7).AsUInt64();
        var c7 = Avx2.UnpackHigh(b5, b7).AsUInt64();
        Avx2.UnpackLow(c0, c4).Store((ulong*)row0);  // pair on g3
        Avx2.UnpackHigh(c0, c4).Store((ulong*)(row0 + rowBytes));
        Avx2.UnpackLow(c1, c5).Store((ulong*)(row0 + 2 * rowBytes));
        Avx2.UnpackHigh(c1, c5).Store((ulong*)(row0 + 3 * rowBytes));
        Avx2.UnpackLow(c2, c6).Store((ulong*)(row0 + 4 * rowBytes));
        Avx2.UnpackHigh(c2, c6).Store((ulong*)(row0 + 5 * rowBytes));
        Avx2.UnpackLow(c3, c7).Store((ulong*)(row0 + 6 * rowBytes));
        Avx2.UnpackHigh(c3, c7).Store((ulong*)(row0 + 7 * rowBytes));
    }
}
