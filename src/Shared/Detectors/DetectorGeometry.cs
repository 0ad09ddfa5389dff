namespace StdDaq.Shared.Detectors;

/// <summary>What a config's detector_type names: the module format and what the assembler makes of it.</summary>
public enum DetectorKind
{
    /// <summary>jungfrau-raw: 1024 x 512 uint16 per module, placed as received (gain bits 15-14, ADC 13-0).</summary>
    JungfrauRaw,
    /// <summary>jungfrau-converted: JUNGFRAU modules converted to float32 keV with the gains and pedestals.</summary>
    JungfrauConverted,
    /// <summary>eiger: one stream per port of 512 x 256 pixels (4 per module), 8, 16 or 32 bit, placed with the chip gap.</summary>
    Eiger,
    /// <summary>gigafrost: 8 streams (4 quadrants x 2 links), 12-bit packed, unpacked to uint16.</summary>
    Gigafrost,
}

/// <summary>The header a module's datagrams start with.</summary>
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
/// <param name="Kind">The detector this module belongs to.</param>
/// <param name="Format">Which header its datagrams start with.</param>
/// <param name="HeaderBytes">Header bytes of every datagram: 48 (SLS) or 32 (GigaFRoST).</param>
/// <param name="PayloadBytes">Pixel bytes of every packet but the last.</param>
/// <param name="PacketsPerFrame">Packets of one frame, numbered 0..n-1; at most <see cref="MaxPacketsPerFrame"/>.</param>
/// <param name="LastPayloadBytes">Pixel bytes of the last packet (GigaFRoST's may be shorter).</param>
/// <param name="FrameWidth">Pixels per row of the module's frame, as sent.</param>
/// <param name="FrameHeight">Rows of the module's frame, as sent (GigaFRoST: one link's rows, every other row of its quadrant).</param>
/// <param name="BitDepth">Bits per pixel on the wire (GigaFRoST: 12, packed).</param>
/// <param name="PlacedWidth">Width of the module's rectangle in the assembled image (module_positions): EIGER adds the chip gap.</param>
/// <param name="PlacedHeight">Height of that rectangle: GigaFRoST's two links fill one quadrant, twice a frame's rows.</param>
/// <param name="SlsDetectorType">SLS header detector_type value (0 for GigaFRoST).</param>
/// <param name="RowsPerPacket">GigaFRoST: rows of the stream's sub-frame per full packet (0 otherwise).</param>
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
    int PlacedWidth,
    int PlacedHeight,
    byte SlsDetectorType,
    int RowsPerPacket)
{
    /// <summary>Packets a frame may have: one bit each in the slot header's bitmap (<see cref="Memory.SlotHeader.BitmapBytes"/> x 8).</summary>
    public const int MaxPacketsPerFrame = 1024;

    /// <summary>Bytes of a full datagram, header included (the last may be shorter).</summary>
    public int PacketBytes => HeaderBytes + PayloadBytes;

    /// <summary>Bytes of one whole frame in its FrameBuffer slot: every packet's payload, in packet order.</summary>
    public long FrameBytes => (long)PayloadBytes * (PacketsPerFrame - 1) + LastPayloadBytes;

    /// <summary>Payload bytes of packet <paramref name="packetNumber"/>: <see cref="LastPayloadBytes"/> for the last one.</summary>
    public int PayloadBytesOf(int packetNumber) =>
        packetNumber == PacketsPerFrame - 1 ? LastPayloadBytes : PayloadBytes;

    /// <summary>SLS header detector_type of EIGER.</summary>
    public const byte SlsTypeEiger = 1;
    /// <summary>SLS header detector_type of JUNGFRAU.</summary>
    public const byte SlsTypeJungfrau = 3;

    /// <summary>Pixels per row of a JUNGFRAU module.</summary>
    public const int JungfrauWidth = 1024;
    /// <summary>Rows of a JUNGFRAU module.</summary>
    public const int JungfrauHeight = 512;
    /// <summary>Pixels per row of one EIGER port (two chips of 256), without the chip gap.</summary>
    public const int EigerPortWidth = 512;
    /// <summary>Rows of one EIGER port.</summary>
    public const int EigerPortHeight = 256;
    /// <summary>Pixels inserted between the two chips of an EIGER port's row in the image.</summary>
    public const int EigerChipGap = 2;
    /// <summary>Most payload bytes a GigaFRoST packet carries: a packet holds as many whole rows as fit.</summary>
    public const int GigafrostMaxPayload = 7400;
    /// <summary>UDP streams of a GigaFRoST: 4 quadrants x 2 links (n_modules must be this).</summary>
    public const int GigafrostStreams = 8;

    /// <summary>One JUNGFRAU module: 1024 x 512 uint16 in 128 packets of 8192 bytes (4 rows each).</summary>
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

    /// <summary>The kind a detector_type names, spelled exactly; <see cref="ArgumentException"/> for any other text.</summary>
    public static DetectorKind ParseKind(string detectorType) => detectorType switch
    {
        "jungfrau-raw" => DetectorKind.JungfrauRaw,
        "jungfrau-converted" => DetectorKind.JungfrauConverted,
        "eiger" => DetectorKind.Eiger,
        "gigafrost" => DetectorKind.Gigafrost,
        _ => throw new ArgumentException($"unknown detector_type '{detectorType}'"),
    };
}
