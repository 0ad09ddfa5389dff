using System.Runtime.InteropServices;

namespace StdDaq.Shared.Streams;

/// <summary>ImageMetadata dtype codes (std-daq's).</summary>
public enum ImageDtype : ushort
{
    /// <summary>1 byte per pixel: EIGER 8 bit.</summary>
    UInt8 = 1,
    /// <summary>2 bytes: JUNGFRAU raw, EIGER 16 bit, GigaFRoST (unpacked from 12 bit).</summary>
    UInt16 = 2,
    /// <summary>4 bytes: EIGER 32 bit.</summary>
    UInt32 = 4,
    /// <summary>8 bytes; not assembled here, the writer stores it.</summary>
    UInt64 = 8,
    /// <summary>2 bytes; std-daq's code, neither assembled nor written here (no HDF5 type in the writer).</summary>
    Float16 = 12,
    /// <summary>4 bytes: JUNGFRAU converted, keV.</summary>
    Float32 = 14,
    /// <summary>8 bytes; not assembled here, the writer stores it.</summary>
    Float64 = 18,
}

/// <summary>ImageMetadata encoding codes.</summary>
public enum ImageEncoding : ushort
{
    /// <summary>The slot holds the pixels as they are: height x width x bytes per pixel.</summary>
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
    /// <summary>Every module, each with every packet, and all with one frame number.</summary>
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
    /// <summary>Bytes of one message; a message of another length is not an ImageMetadata.</summary>
    public const int Size = 56;
    /// <summary>The <see cref="Version"/> written here.</summary>
    public const ulong CurrentVersion = 1;

    /// <summary>@0: the format version, <see cref="CurrentVersion"/> (readers here do not check it).</summary>
    public readonly ulong Version;
    /// <summary>@8: the image id; the image is in ImageBuffer slot id % slot count.</summary>
    public readonly ulong Id;
    /// <summary>@16: image rows (image_pixel_height).</summary>
    public readonly ulong Height;
    /// <summary>@24: image columns (image_pixel_width).</summary>
    public readonly ulong Width;
    /// <summary>@32: the pixel type, an <see cref="ImageDtype"/> code.</summary>
    public readonly ushort Dtype;
    /// <summary>@34: how the slot holds the pixels, an <see cref="ImageEncoding"/> code; the assembler sends raw.</summary>
    public readonly ushort Encoding;
    /// <summary>@36: std-daq's source id; 0 from our assembler.</summary>
    public readonly ushort SourceId;
    /// <summary>@38: an <see cref="ImageStatus"/> code, as in the slot header.</summary>
    public readonly ushort Status;
    /// <summary>@40: JUNGFRAU daq_rec, else the frame index (EIGER frame number, GigaFRoST frame index).</summary>
    public readonly ulong User1;
    /// <summary>@48: encoded payload bytes when Encoding is not raw; 0 otherwise.</summary>
    public readonly ulong User2;

    /// <summary>A message of <see cref="CurrentVersion"/> with these fields.</summary>
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

    /// <summary>The message in the first <see cref="Size"/> bytes (fewer throw); little-endian, as the host is.</summary>
    public static ImageMetadata Read(ReadOnlySpan<byte> bytes) => MemoryMarshal.Read<ImageMetadata>(bytes);

    /// <summary>Writes the message into the first <see cref="Size"/> bytes (fewer throw).</summary>
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
