using System.Runtime.CompilerServices;

namespace StdDaq.Assembler.Conversions;

/// <summary>
/// GigaFRoST: stream m carries every other row (link = m % 2: rows link, link + 2, ...) of
/// quadrant m / 2, 12-bit packed (3 bytes = 2 pixels). Each row is unpacked to uint16 into its
/// image row; the quadrant's rectangle and flip come from module_positions.
/// </summary>
public sealed unsafe class GigafrostConverter(ImageLayout layout) : FrameConverter(layout)
{
    public override void Convert(byte* frame, byte* image, in ModulePlacement p)
    {
        var g = Layout.Module;
        int link = p.Module % 2;
        int pixels = g.FrameWidth;
        long packedRow = (long)pixels * 3 / 2;
        for (int r = 0; r < g.FrameHeight; r++)
        {
            var dst = (ushort*)(image + p.ImageRow(2 * r + link) * Layout.RowBytes) + p.X0;
            Unpack12(frame + r * packedRow, dst, pixels);
        }
    }

    public override void Fill(byte* image, in ModulePlacement p) => FillRows(image, p, p.Module % 2, 2);

    /// <summary>Unpacks <paramref name="pixels"/> (even) 12-bit pixels: bytes [a &amp; 0xFF, (a >> 8) | (b &amp; 0xF) &lt;&lt; 4, b >> 4].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack12(byte* src, ushort* dst, int pixels)
    {
        for (int j = 0; j < pixels / 2; j++)
        {
            uint b0 = src[3 * j], b1 = src[3 * j + 1], b2 = src[3 * j + 2];
            dst[2 * j] = (ushort)(b0 | (b1 & 0xF) << 8);
            dst[2 * j + 1] = (ushort)(b1 >> 4 | b2 << 4);
        }
    }
}
