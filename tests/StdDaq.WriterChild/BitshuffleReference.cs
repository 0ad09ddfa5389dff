using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace StdDaq.WriterChild;

/// <summary>
/// Bitshuffle-LZ4 chunks made by the C library itself (Debian's HDF5 plugin exports the compressor),
/// framed as filter 32008 stores them: u64 big-endian uncompressed bytes, u32 big-endian block size
/// in bytes, then the LZ4 blocks.
/// </summary>
public static partial class BitshuffleReference
{
    public const string PluginDir = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins";
    private const string Lib = PluginDir + "/libh5bshuf.so";

    [LibraryImport(Lib, EntryPoint = "bshuf_compress_lz4_bound")]
    private static partial nuint bshuf_compress_lz4_bound(nuint size, nuint elemSize, nuint blockSize);

    [LibraryImport(Lib, EntryPoint = "bshuf_compress_lz4")]
    private static partial long bshuf_compress_lz4(ReadOnlySpan<byte> input, Span<byte> output, nuint size, nuint elemSize, nuint blockSize);

    [LibraryImport(Lib, EntryPoint = "bshuf_default_block_size")]
    private static partial nuint bshuf_default_block_size(nuint elemSize);

    public static byte[] Compress(ReadOnlySpan<byte> image, int elemSize)
    {
        nuint n = (nuint)(image.Length / elemSize);
        var chunk = new byte[12 + (int)bshuf_compress_lz4_bound(n, (nuint)elemSize, 0)];
        long written = bshuf_compress_lz4(image, chunk.AsSpan(12), n, (nuint)elemSize, 0);
        if (written < 0)
            throw new InvalidOperationException($"bshuf_compress_lz4 returned {written}");
        BinaryPrimitives.WriteUInt64BigEndian(chunk, (ulong)image.Length);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8), (uint)((int)bshuf_default_block_size((nuint)elemSize) * elemSize));
        return chunk.AsSpan(0, 12 + (int)written).ToArray();
    }
}
