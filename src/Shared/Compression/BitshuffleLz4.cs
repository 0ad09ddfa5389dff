using System.Buffers.Binary;
using StdDaq.Shared.Interop;

namespace StdDaq.Shared.Compression;

/// <summary>
/// Bitshuffle + LZ4 in the chunk format of the bitshuffle HDF5 filter (id 32008, cd_values
/// compression = 2 (LZ4), block size 0 = default), so a chunk written with H5Dwrite_chunk is read
/// by the bitshuffle plugin and h5py. Layout, all integers big-endian:
/// <code>
/// offset 0   u64  uncompressed size in bytes
/// offset 8   u32  block size in bytes (elements per block × element size)
/// offset 12  per block: u32 compressed size, then that many bytes of one LZ4 block
///            (independent, no dictionary) holding the bitshuffled block
/// end        the last (elements % 8) elements, copied unchanged
/// </code>
/// Blocks are <see cref="Bitshuffle.DefaultBlockSize"/> elements, the last one the remaining
/// elements rounded down to a multiple of 8 (as bshuf_compress_lz4). LZ4 is the system liblz4
/// (<see cref="Liblz4"/>), the one the C plugin uses, so the chunks are the plugin's to the byte;
/// it compressed these blocks ~1.5 × faster than the managed K4os port (benchmarks/BENCHMARKS.md).
/// Calls are allocation-free: the shuffled block goes through a per-thread scratch buffer.
/// </summary>
public static unsafe class BitshuffleLz4
{
    /// <summary>The 12-byte chunk header: uncompressed size (u64) and block size in bytes (u32).</summary>
    public const int HeaderSize = 12;

    /// <summary>
    /// Bytes <see cref="Compress(ReadOnlySpan{byte}, int, Span{byte})"/> may write for <paramref name="bytes"/> of input: the header
    /// plus bshuf_compress_lz4_bound (LZ4's bound and 4 bytes per block, leftovers raw).
    /// </summary>
    public static int MaxCompressedSize(int bytes, int elemSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        CheckLength(bytes, elemSize, nameof(bytes));
        long n = bytes / elemSize;
        long block = Bitshuffle.DefaultBlockSize(elemSize);
        long last = n % block / Bitshuffle.BlockMultiple * Bitshuffle.BlockMultiple;
        long bound = HeaderSize + n / block * (Lz4Bound(block * elemSize) + 4)
            + (last > 0 ? Lz4Bound(last * elemSize) + 4 : 0)
            + n % Bitshuffle.BlockMultiple * elemSize;
        if (bound > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "compressed size bound exceeds the largest array");
        return (int)bound;
    }

    /// <summary>
    /// Compresses <paramref name="src"/> (elements of <paramref name="elemSize"/> bytes) into one
    /// filter-32008 chunk in <paramref name="dst"/>, which must hold
    /// <see cref="MaxCompressedSize"/> bytes. Returns the chunk's length.
    /// </summary>
    public static int Compress(ReadOnlySpan<byte> src, int elemSize, Span<byte> dst) => Compress(src, elemSize, dst, Bitshuffle.Kernel.Best);

    /// <summary><see cref="Compress(ReadOnlySpan{byte}, int, Span{byte})"/> with a chosen transpose kernel.</summary>
    internal static int Compress(ReadOnlySpan<byte> src, int elemSize, Span<byte> dst, Bitshuffle.Kernel kernel)
    {
        CheckLength(src.Length, elemSize, nameof(src));
        int max = MaxCompressedSize(src.Length, elemSize);
        if (dst.Length < max)
            throw new ArgumentException($"destination holds {dst.Length} bytes; compressing {src.Length} bytes needs up to {max} (MaxCompressedSize)", nameof(dst));
        if (src.Overlaps(dst))
            throw new ArgumentException("source and destination overlap", nameof(dst));
        int blockElems = Bitshuffle.DefaultBlockSize(elemSize);
        BinaryPrimitives.WriteUInt64BigEndian(dst, (ulong)src.Length);
        BinaryPrimitives.WriteUInt32BigEndian(dst[8..], (uint)(blockElems * elemSize));

        int elems = src.Length / elemSize;
        int whole = elems - elems % Bitshuffle.BlockMultiple;
        int blockBytes = blockElems * elemSize;
        var scratch = Bitshuffle.Scratch(blockBytes + 256 * elemSize);
        int o = HeaderSize;
        fixed (byte* s0 = src, d0 = dst, shuffled = scratch)
        {
            byte* stage = shuffled + blockBytes;
            for (int e = 0; e < whole;)
            {
                int n = Math.Min(blockElems, whole - e);
                int bytes = n * elemSize;
                Bitshuffle.ShuffleBlock(s0 + (long)e * elemSize, shuffled, n, elemSize, stage, kernel);
                // dst holds the bound for this block and all after it, so LZ4 never runs out of room.
                int c = Liblz4.LZ4_compress_default(shuffled, d0 + o + 4, bytes, dst.Length - o - 4);
                if (c <= 0)
                    throw new InvalidOperationException($"LZ4 failed on a block of {bytes} bytes with {dst.Length - o - 4} bytes of room");
                BinaryPrimitives.WriteUInt32BigEndian(dst[o..], (uint)c);
                o += 4 + c;
                e += n;
            }
        }
        var rest = src[(whole * elemSize)..];
        rest.CopyTo(dst[o..]);
        return o + rest.Length;
    }

    /// <summary>The uncompressed size a chunk's header gives (the length <see cref="Decompress"/> needs).</summary>
    public static long DecompressedSize(ReadOnlySpan<byte> src)
    {
        if (src.Length < HeaderSize)
            throw new InvalidDataException($"bitshuffle-LZ4 chunk of {src.Length} bytes is shorter than its {HeaderSize}-byte header");
        ulong size = BinaryPrimitives.ReadUInt64BigEndian(src);
        if (size > long.MaxValue)
            throw new InvalidDataException($"bitshuffle-LZ4 chunk header gives an uncompressed size of {size} bytes");
        return (long)size;
    }

    /// <summary>
    /// Decompresses one filter-32008 chunk into <paramref name="dst"/>, whose length must be the
    /// header's uncompressed size. Honours the block size in the header. Every length is checked
    /// before it is used (LZ4 decoding is the bounds-checked kind), so corrupt or truncated input
    /// throws <see cref="InvalidDataException"/> and never reads or writes outside the spans.
    /// </summary>
    public static void Decompress(ReadOnlySpan<byte> src, int elemSize, Span<byte> dst)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elemSize);
        long size = DecompressedSize(src);
        if (size != dst.Length)
            throw new InvalidDataException($"bitshuffle-LZ4 chunk holds {size} bytes, the destination {dst.Length}");
        if (src.Overlaps(dst))
            throw new ArgumentException("source and destination overlap", nameof(dst));
        if (size % elemSize != 0)
            throw new InvalidDataException($"bitshuffle-LZ4 chunk size {size} is not a multiple of the element size {elemSize}");
        uint blockBytes = BinaryPrimitives.ReadUInt32BigEndian(src[8..]);
        if (blockBytes == 0 || blockBytes % ((uint)elemSize * Bitshuffle.BlockMultiple) != 0)
            throw new InvalidDataException($"bitshuffle-LZ4 block size {blockBytes} bytes is not a positive multiple of {Bitshuffle.BlockMultiple} elements of {elemSize} bytes");

        int elems = dst.Length / elemSize;
        int whole = elems - elems % Bitshuffle.BlockMultiple;
        // A block never exceeds the data, so a huge block size in a corrupt header costs nothing.
        int blockElems = (int)Math.Min(blockBytes / (uint)elemSize, (uint)Math.Max(whole, Bitshuffle.BlockMultiple));
        int scratchBytes = blockElems * elemSize;
        var scratch = Bitshuffle.Scratch(2 * scratchBytes);
        int p = HeaderSize;
        fixed (byte* s0 = src, d0 = dst, decoded = scratch)
        {
            byte* planes = decoded + scratchBytes;
            for (int e = 0, block = 0; e < whole; block++)
            {
                int n = Math.Min(blockElems, whole - e);
                int bytes = n * elemSize;
                if (src.Length - p < 4)
                    throw new InvalidDataException($"bitshuffle-LZ4 chunk truncated at block {block}: {src.Length - p} bytes left for its 4-byte size");
                uint c = BinaryPrimitives.ReadUInt32BigEndian(src[p..]);
                if (c == 0 || c > (uint)(src.Length - p - 4))
                    throw new InvalidDataException($"bitshuffle-LZ4 block {block} claims {c} compressed bytes; {src.Length - p - 4} are left");
                int got = Liblz4.LZ4_decompress_safe(s0 + p + 4, decoded, (int)c, bytes);
                if (got != bytes)
                    throw new InvalidDataException(got < 0
                        ? $"bitshuffle-LZ4 block {block} ({c} bytes at offset {p + 4}) is not valid LZ4 for {bytes} bytes"
                        : $"bitshuffle-LZ4 block {block} decodes to {got} bytes, expected {bytes}");
                Bitshuffle.UnshuffleBlock(decoded, d0 + (long)e * elemSize, n, elemSize, planes);
                p += 4 + (int)c;
                e += n;
            }
        }
        int rest = dst.Length - whole * elemSize;
        if (src.Length - p != rest)
            throw new InvalidDataException($"bitshuffle-LZ4 chunk has {src.Length - p} bytes after its last block, expected {rest} leftover bytes");
        src[p..].CopyTo(dst[(whole * elemSize)..]);
    }

    private static long Lz4Bound(long bytes) => bytes + bytes / 255 + 16; // LZ4_compressBound

    private static void CheckLength(int bytes, int elemSize, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elemSize);
        if (bytes % elemSize != 0)
            throw new ArgumentException($"length {bytes} is not a multiple of the element size {elemSize}", name);
    }
}
