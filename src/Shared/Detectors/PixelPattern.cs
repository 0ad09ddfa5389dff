using System.Buffers.Binary;

namespace StdDaq.Shared.Detectors;

/// <summary>
/// The simulator's pixel pattern, so any reader can check any pixel:
/// value = (image_id * 31 + module_id * 1009 + i) mod 2^bits, i = the pixel's index within the
/// module frame in packet order; bits = 14 for JUNGFRAU (gain bits 00), else the bit depth.
/// GigaFRoST frames are 12-bit packed: pixels 2j and 2j+1 (a, b) are the bytes
/// [a &amp; 0xFF, (a >> 8) | (b &amp; 0xF) &lt;&lt; 4, b >> 4].
/// </summary>
public static class PixelPattern
{
    /// <summary>Bits of a pattern value: 14 for JUNGFRAU (the gain bits stay 00), else the bit depth.</summary>
    public static int ValueBits(ModuleGeometry g) => g.Kind is DetectorKind.JungfrauRaw or DetectorKind.JungfrauConverted ? 14 : g.BitDepth;

    /// <summary>The value of pixel 0 before the mask: image_id * 31 + module_id * 1009.</summary>
    public static ulong Base(ulong imageId, int moduleId) => imageId * 31 + (ulong)moduleId * 1009;

    /// <summary>The value pixel <paramref name="pixel"/> (index in packet order) of that frame has.</summary>
    public static ulong Value(ModuleGeometry g, ulong imageId, int moduleId, long pixel)
    {
        int bits = ValueBits(g);
        ulong mask = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
        return (Base(imageId, moduleId) + (ulong)pixel) & mask;
    }

    /// <summary>Pixels of one module frame as sent (FrameWidth x FrameHeight).</summary>
    public static long PixelsPerFrame(ModuleGeometry g) => (long)g.FrameWidth * g.FrameHeight;

    /// <summary>Writes the whole frame of (image, module) into <paramref name="frame"/> (FrameBytes long).</summary>
    public static void Fill(ModuleGeometry g, ulong imageId, int moduleId, Span<byte> frame)
    {
        long n = PixelsPerFrame(g);
        ulong b = Base(imageId, moduleId);
        int bits = ValueBits(g);
        ulong mask = (1UL << bits) - 1;
        switch (g.Kind == DetectorKind.Gigafrost ? 12 : g.BitDepth)
        {
            case 8:
                for (int i = 0; i < n; i++)
                    frame[i] = (byte)((b + (ulong)i) & mask);
                break;
            case 16:
                for (int i = 0; i < n; i++)
                    BinaryPrimitives.WriteUInt16LittleEndian(frame[(2 * i)..], (ushort)((b + (ulong)i) & mask));
                break;
            case 32:
                for (int i = 0; i < n; i++)
                    BinaryPrimitives.WriteUInt32LittleEndian(frame[(4 * i)..], (uint)((b + (ulong)i) & mask));
                break;
            case 12:
                for (int j = 0; j < n / 2; j++)
                {
                    uint a = (uint)((b + (ulong)(2 * j)) & mask), c = (uint)((b + (ulong)(2 * j + 1)) & mask);
                    frame[3 * j] = (byte)a;
                    frame[3 * j + 1] = (byte)((a >> 8) | (c & 0xF) << 4);
                    frame[3 * j + 2] = (byte)(c >> 4);
                }
                break;
            default:
                throw new ArgumentException($"no pattern for bit depth {g.BitDepth}");
        }
    }

    /// <summary>Reads pixel <paramref name="pixel"/> of a module frame in packet order.</summary>
    public static ulong Read(ModuleGeometry g, ReadOnlySpan<byte> frame, long pixel)
    {
        int i = checked((int)pixel);
        if (g.Kind == DetectorKind.Gigafrost)
        {
            int j = i / 2 * 3;
            return (i & 1) == 0
                ? (ulong)(frame[j] | (frame[j + 1] & 0xF) << 8)
                : (ulong)(frame[j + 1] >> 4 | frame[j + 2] << 4);
        }
        return g.BitDepth switch
        {
            8 => frame[i],
            16 => BinaryPrimitives.ReadUInt16LittleEndian(frame[(2 * i)..]),
            _ => BinaryPrimitives.ReadUInt32LittleEndian(frame[(4 * i)..]),
        };
    }
}
