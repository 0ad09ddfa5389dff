using System.Runtime.InteropServices;

namespace StdDaq.Testing;

/// <summary>
/// The reference C bitshuffle (kiyo-masui/bitshuffle) as built into Debian's HDF5 plugin
/// <c>libh5bshuf.so</c> (package <c>bitshuffle</c>), which exports the library's functions next to
/// the filter. The tests check <see cref="StdDaq.Shared.Compression.BitshuffleLz4"/> against it and
/// the benchmark measures both. C names kept; sizes are element counts, block_size 0 = default.
/// Call <see cref="EnsureAvailable"/> first for a clear error when the plugin is missing. x86_64
/// path only, like the SIMD kernels it is compared with.
/// </summary>
public static unsafe partial class H5Bshuf
{
    public const string Path = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins/libh5bshuf.so";

    /// <summary>Returned by the *_AVX functions when the library was compiled without AVX2.</summary>
    public const long NotCompiledWithAvx2 = -12;

    /// <summary>Throws <see cref="DllNotFoundException"/> saying what to install if the plugin cannot be loaded.</summary>
    public static void EnsureAvailable()
    {
        if (!File.Exists(Path))
            throw new DllNotFoundException($"{Path} not found: install Debian's bitshuffle package (scripts/setup.sh installs it)");
        if (!NativeLibrary.TryLoad(Path, out _))
            throw new DllNotFoundException($"{Path} exists but does not load (missing libhdf5 or liblz4?): reinstall Debian's bitshuffle package (scripts/setup.sh)");
    }

    [LibraryImport(Path, EntryPoint = "bshuf_default_block_size")]
    public static partial nuint bshuf_default_block_size(nuint elemSize);

    [LibraryImport(Path, EntryPoint = "bshuf_compress_lz4_bound")]
    public static partial nuint bshuf_compress_lz4_bound(nuint size, nuint elemSize, nuint blockSize);

    /// <summary>Bitshuffle + LZ4 without the filter's 12-byte header; returns the bytes written or a negative error.</summary>
    [LibraryImport(Path, EntryPoint = "bshuf_compress_lz4")]
    public static partial long bshuf_compress_lz4(byte* input, byte* output, nuint size, nuint elemSize, nuint blockSize);

    /// <summary>Reverses bshuf_compress_lz4; returns the bytes read or a negative error.</summary>
    [LibraryImport(Path, EntryPoint = "bshuf_decompress_lz4")]
    public static partial long bshuf_decompress_lz4(byte* input, byte* output, nuint size, nuint elemSize, nuint blockSize);

    [LibraryImport(Path, EntryPoint = "bshuf_bitshuffle")]
    public static partial long bshuf_bitshuffle(byte* input, byte* output, nuint size, nuint elemSize, nuint blockSize);

    [LibraryImport(Path, EntryPoint = "bshuf_bitunshuffle")]
    public static partial long bshuf_bitunshuffle(byte* input, byte* output, nuint size, nuint elemSize, nuint blockSize);

    /// <summary>The AVX2 bit transpose of one block; <see cref="NotCompiledWithAvx2"/> in a build without AVX2.</summary>
    [LibraryImport(Path, EntryPoint = "bshuf_trans_bit_elem_AVX")]
    public static partial long bshuf_trans_bit_elem_AVX(byte* input, byte* output, nuint size, nuint elemSize);

    [LibraryImport(Path, EntryPoint = "bshuf_using_AVX2")]
    public static partial int bshuf_using_AVX2();

    [LibraryImport(Path, EntryPoint = "bshuf_using_SSE2")]
    public static partial int bshuf_using_SSE2();
}
