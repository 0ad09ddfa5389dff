namespace StdDaq.WriterChild;

/// <summary>The images the writer tests write; the Python reader recomputes the same formula.</summary>
public static class TestImages
{
    /// <summary>uint16 image <paramref name="index"/>: pixel k = (index × 7919 + k × 3) mod 65536.</summary>
    public static byte[] UInt16(long index, int height, int width)
    {
        var pixels = new ushort[height * width];
        for (int k = 0; k < pixels.Length; k++)
            pixels[k] = (ushort)(index * 7919 + k * 3);
        var bytes = new byte[pixels.Length * 2];
        Buffer.BlockCopy(pixels, 0, bytes, 0, bytes.Length);
        return bytes;
    }

    /// <summary>A non-consecutive image id: 1000 + 3 × index.</summary>
    public static ulong ImageId(long index) => 1000 + 3 * (ulong)index;

    /// <summary>0 good, 1 incomplete, 2 id mismatch, in turn.</summary>
    public static ushort Status(long index) => (ushort)(index % 3);
}
