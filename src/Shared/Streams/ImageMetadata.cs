using System.Runtime.InteropServices;

namespace StdDaq.Shared.Streams;

/// <summary>ImageMetadata dtype codes (std-daq's).</summary>
public enum ImageDtype : ushort
{
    UInt8 = 1,
    UInt16 = 2,
    UInt32 = 4,
    UInt64 = 8,
    Float16 = 12,
    Float32 = 14,
    Float64 = 18,
}

/// <summary>ImageMetadata encoding codes.</summary>
public enum ImageEncoding : ushort
{
    Raw = 0,
    /// <summary>Bitshuffle-LZ4; then <see cref="ImageMetadata.User2"/> is the payload size in the slot.</summary>
    BitshuffleLz4 = 1,
}

/// <summary>
/// ImageMetadata status codes (also the ImageBuffer slot header's Status, and the per-image
/// <c>status</c> dataset of a written file).
/// </summary>
public enum ImageStatus : ushort
{
    Good = 0,
    /// <summary>Missing packets or modules.</summary>
    Incomplete = 1,
    /// <summary>Modules reported different frame numbers for one image id.</summary>
    IdMismatch = 2,
    /// <summary>In a file only: the image is not in it (its pixels read as 0).</summary>
    NotWritten = 0xFFFF,
}

/// <summary>
/// std-daq's ImageMetadata, published by the assembler per image on
/// ipc:///tmp/std-daq-&lt;det&gt;-assembler. 56 bytes, packed, little-endian.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly struct ImageMetadata
{
    public const int Size = 56;
    public const ulong CurrentVersion = 1;

    public readonly ulong Version;    // @0
    public readonly ulong Id;         // @8
    public readonly ulong Height;     // @16
    public readonly ulong Width;      // @24
    public readonly ushort Dtype;     // @32
    public readonly ushort Encoding;  // @34
    public readonly ushort SourceId;  // @36
    public readonly ushort Status;    // @38
    public readonly ulong User1;      // @40 JUNGFRAU daq_rec, EIGER/GigaFRoST frame index
    public readonly ulong User2;      // @48 encoded payload bytes when Encoding != Raw

    public ImageMetadata(ulong id, ulong height, ulong width, ImageDtype dtype, ImageEncoding encoding,
        ushort sourceId, ImageStatus status, ulong user1, ulong user2)
    {
        Version = CurrentVersion;
        Id = id;
        Height = height;
        Width = width;
        Dtype = (ushort)dtype;
        Encoding = (ushort)encoding;
        SourceId = sourceId;
        Status = (ushort)status;
        User1 = user1;
        User2 = user2;
    }

    public static ImageMetadata Read(ReadOnlySpan<byte> bytes) => MemoryMarshal.Read<ImageMetadata>(bytes);

    public void Write(Span<byte> bytes) => MemoryMarshal.Write(bytes, in this);

    /// <summary>Bytes per pixel of a dtype code.</summary>
    public static int BytesPerPixel(ImageDtype dtype) => dtype switch
    {
        ImageDtype.UInt8 => 1,
        ImageDtype.UInt16 or ImageDtype.Float16 => 2,
        ImageDtype.UInt32 or ImageDtype.Float32 => 4,
        ImageDtype.UInt64 or ImageDtype.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };
}
