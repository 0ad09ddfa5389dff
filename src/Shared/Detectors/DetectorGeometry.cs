namespace StdDaq.Shared.Detectors;

public enum DetectorKind
{
    JungfrauRaw,
    JungfrauConverted,
    Eiger,
    Gigafrost,
}

public enum PacketFormat
{
    /// <summary>48-byte SLS header (JUNGFRAU, EIGER).</summary>
    Sls,
    /// <summary>32-byte GigaFRoST header.</summary>
    Gigafrost,
}

/// <summary>
/// What one module (one UDP stream) of a detector sends per frame. This is data, picked once from
/// the config, so the packet loop has no detector-specific branches beyond the header format.
/// Frame bytes are laid out in packet order: packet k's payload lands at k * PayloadBytes.
/// </summary>
public sealed record ModuleGeometry(
    DetectorKind Kind,
    PacketFormat Format,
    int HeaderBytes,
    int PayloadBytes,
    int PacketsPerFrame,
    int LastPayloadBytes,
    int FrameWidth,
    int FrameHeight,
    int BitDepth,
    /// <summary>Width and height of a module's rectangle in the assembled image (module_positions).</summary>
    int PlacedWidth,
    int PlacedHeight,
    /// <summary>SLS header detector_type value (0 for GigaFRoST).</summary>
    byte SlsDetectorType,
    /// <summary>GigaFRoST: rows of the stream's sub-frame per full packet (0 otherwise).</summary>
    int RowsPerPacket)
{
    public const int MaxPacketsPerFrame = 1024;

    public int PacketBytes => HeaderBytes + PayloadBytes;

    public long FrameBytes => (long)PayloadBytes * (PacketsPerFrame - 1) + LastPayloadBytes;

    public int PayloadBytesOf(int packetNumber) =>
        packetNumber == PacketsPerFrame - 1 ? LastPayloadBytes : PayloadBytes;

    public const byte SlsTypeEiger = 1;
    public const byte SlsTypeJungfrau = 3;

    public const int JungfrauWidth = 1024;
    public const int JungfrauHeight = 512;
    public const int EigerPortWidth = 512;
    public const int EigerPortHeight = 256;
    /// <summary>Pixels inserted between the two chips of an EIGER port's row in the image.</summary>
    public const int EigerChipGap = 2;
    public const int GigafrostMaxPayload = 7400;
    public const int GigafrostStreams = 8;

    public static ModuleGeometry Jungfrau(bool converted) => new(
        converted ? DetectorKind.JungfrauConverted : DetectorKind.JungfrauRaw, PacketFormat.Sls,
        HeaderBytes: 48, PayloadBytes: 8192, PacketsPerFrame: 128, LastPayloadBytes: 8192,
        FrameWidth: JungfrauWidth, FrameHeight: JungfrauHeight, BitDepth: 16,
        PlacedWidth: JungfrauWidth, PlacedHeight: JungfrauHeight, SlsDetectorType: SlsTypeJungfrau,
        RowsPerPacket: 0);

    /// <summary>One EIGER port: 512 x 256 pixels, 4096 data bytes per packet.</summary>
    public static ModuleGeometry Eiger(int bitDepth)
    {
        if (bitDepth is not (8 or 16 or 32))
            throw new ArgumentOutOfRangeException(nameof(bitDepth), bitDepth, "EIGER bit_depth must be 8, 16 or 32");
        int packets = EigerPortWidth * EigerPortHeight * (bitDepth / 8) / 4096;
        return new(DetectorKind.Eiger, PacketFormat.Sls, 48, 4096, packets, 4096,
            EigerPortWidth, EigerPortHeight, bitDepth,
            PlacedWidth: EigerPortWidth + EigerChipGap, PlacedHeight: EigerPortHeight,
            SlsDetectorType: SlsTypeEiger, RowsPerPacket: 0);
    }

    /// <summary>
    /// One GigaFRoST stream (quadrant q = module / 2, link = module % 2): every other row of a
    /// (W/2) x (H/2) quadrant, 12-bit packed (3 bytes per 2 pixels), as many whole rows per packet
    /// as fit in 7400 bytes.
    /// </summary>
    public static ModuleGeometry Gigafrost(int imageWidth, int imageHeight)
    {
        if (imageWidth <= 0 || imageHeight <= 0 || imageWidth % 24 != 0 || imageHeight % 4 != 0)
            throw new ArgumentOutOfRangeException(nameof(imageWidth),
                $"GigaFRoST image {imageWidth}x{imageHeight}: width must be a multiple of 24 and height of 4");
        int quadrantWidth = imageWidth / 2;
        int rows = imageHeight / 4;
        int rowBytes = quadrantWidth * 3 / 2;
        int rowsPerPacket = GigafrostMaxPayload / rowBytes;
        if (rowsPerPacket < 1)
            throw new ArgumentOutOfRangeException(nameof(imageWidth), $"GigaFRoST row of {rowBytes} bytes exceeds {GigafrostMaxPayload}");
        rowsPerPacket = Math.Min(rowsPerPacket, rows);
        int packets = (rows + rowsPerPacket - 1) / rowsPerPacket;
        int lastRows = rows - (packets - 1) * rowsPerPacket;
        return new(DetectorKind.Gigafrost, PacketFormat.Gigafrost, 32, rowsPerPacket * rowBytes, packets,
            lastRows * rowBytes, quadrantWidth, rows, 12,
            PlacedWidth: quadrantWidth, PlacedHeight: imageHeight / 2, SlsDetectorType: 0,
            RowsPerPacket: rowsPerPacket);
    }

    public static DetectorKind ParseKind(string detectorType) => detectorType switch
    {
        "jungfrau-raw" => DetectorKind.JungfrauRaw,
        "jungfrau-converted" => DetectorKind.JungfrauConverted,
        "eiger" => DetectorKind.Eiger,
        "gigafrost" => DetectorKind.Gigafrost,
        _ => throw new ArgumentException($"unknown detector_type '{detectorType}'"),
    };
}
