using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// The system liblz4 (Debian's liblz4-1, present on every Debian since apt and systemd link it),
/// the library Debian's bitshuffle HDF5 plugin compresses with, so our chunks are the plugin's to
/// the byte. Block functions only: one independent LZ4 block, no frame, no dictionary. C names kept.
/// </summary>
public static unsafe partial class Liblz4
{
    /// <summary>The library's soname, as the loader finds it.</summary>
    public const string Name = "liblz4.so.1";

    /// <summary>Throws <see cref="DllNotFoundException"/> saying what to install if liblz4 cannot be loaded.</summary>
    public static void EnsureAvailable()
    {
        if (!NativeLibrary.TryLoad(Name, typeof(Liblz4).Assembly, null, out _))
            throw new DllNotFoundException($"{Name} does not load: install Debian's liblz4-1 package (bitshuffle-LZ4 compression needs it)");
    }

    /// <summary>
    /// Compresses <paramref name="srcSize"/> bytes into at most <paramref name="dstCapacity"/>;
    /// returns the compressed size, or 0 when it does not fit (never writes past dstCapacity).
    /// Acceleration 1, as bshuf_compress_lz4 uses it.
    /// </summary>
    [LibraryImport(Name, EntryPoint = "LZ4_compress_default")]
    public static partial int LZ4_compress_default(byte* src, byte* dst, int srcSize, int dstCapacity);

    /// <summary>
    /// Decodes one block; returns the decoded size, or a negative number for malformed input.
    /// Never reads past src + compressedSize nor writes past dst + dstCapacity, whatever the input.
    /// </summary>
    [LibraryImport(Name, EntryPoint = "LZ4_decompress_safe")]
    public static partial int LZ4_decompress_safe(byte* src, byte* dst, int compressedSize, int dstCapacity);
}
