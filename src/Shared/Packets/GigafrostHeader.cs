using System.Runtime.InteropServices;

namespace StdDaq.Shared.Packets;

/// <summary>The 32-byte GigaFRoST packet header, little-endian, packed.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly struct GigafrostHeader
{
    /// <summary>Bytes of the header; the payload follows at this offset.</summary>
    public const int Size = 32;
    /// <summary>The value of <see cref="ProtocolId"/>; a datagram with another is not GigaFRoST's.</summary>
    public const byte ProtocolIdValue = 0xCB;

    /// <summary>@0: always <see cref="ProtocolIdValue"/>.</summary>
    public readonly byte ProtocolId;
    /// <summary>@1: 12-pixel blocks per quadrant row.</summary>
    public readonly byte QuadrantRowLengthInBlocks;
    /// <summary>@2: bit 0 = swap, bits 7-1 the low 7 bits of the row count (<see cref="QuadrantRows"/>, <see cref="Swap"/>).</summary>
    public readonly byte QuadrantRowsLow;
    /// <summary>@3: bits 7-6 quadrant, 5 link, 4-2 corr_mode, 1-0 the row count's high bits (<see cref="Quadrant"/>, <see cref="Link"/>).</summary>
    public readonly byte StatusFlags;
    /// <summary>@4: the scan id, passed on as the slot header's detector_1.</summary>
    public readonly uint ScanId;
    /// <summary>@8: the frame index: the image id.</summary>
    public readonly uint FrameIndex;
    /// <summary>@12: bit 15 = do-not-store (<see cref="DoNotStore"/>).</summary>
    public readonly ushort ImageStatusFlags;
    /// <summary>@14: the link's sub-frame row this packet starts at: a multiple of RowsPerPacket, which numbers the packet.</summary>
    public readonly ushort PacketStartingRow;
    /// <summary>@16: low 40 bits the frame timestamp, high 24 bits the exposure (<see cref="FrameTimestamp"/>, <see cref="Exposure"/>).</summary>
    public readonly ulong ImageTiming;
    /// <summary>@24: sync time, not used here.</summary>
    public readonly uint SyncTime;
    /// <summary>@28: scan time, not used here.</summary>
    public readonly uint ScanTime;

    /// <summary>
    /// A header as a GigaFRoST would send it (the simulator's): the bit fields packed, the row count's
    /// 9 bits split over bytes 2 and 3, the timestamp cut to 40 bits and the exposure to 24.
    /// </summary>
    public GigafrostHeader(int quadrant, int link, int quadrantRows, int rowLengthInBlocks, uint scanId,
        uint frameIndex, ushort packetStartingRow, ulong frameTimestamp, uint exposure, ushort imageStatusFlags = 0,
        uint syncTime = 0, uint scanTime = 0)
    {
        ProtocolId = ProtocolIdValue;
        QuadrantRowLengthInBlocks = (byte)rowLengthInBlocks;
        QuadrantRowsLow = (byte)((quadrantRows & 0x7F) << 1);
        StatusFlags = (byte)((quadrant & 0x3) << 6 | (link & 0x1) << 5 | ((quadrantRows >> 7) & 0x3));
        ScanId = scanId;
        FrameIndex = frameIndex;
        ImageStatusFlags = imageStatusFlags;
        PacketStartingRow = packetStartingRow;
        ImageTiming = (frameTimestamp & 0xFF_FFFF_FFFFUL) | ((ulong)(exposure & 0xFF_FFFF) << 40);
        SyncTime = syncTime;
        ScanTime = scanTime;
    }

    /// <summary>0-3, bits 7-6 of byte 3; the stream of quadrant q, link l is module 2q + l.</summary>
    public int Quadrant => StatusFlags >> 6;
    /// <summary>0 or 1, bit 5 of byte 3.</summary>
    public int Link => (StatusFlags >> 5) & 1;
    /// <summary>The 9-bit row count (bits 7-1 of byte 2, bits 1-0 of byte 3 as bits 8-7).</summary>
    public int QuadrantRows => (QuadrantRowsLow >> 1) | (StatusFlags & 0x3) << 7;
    /// <summary>Bit 0 of byte 2.</summary>
    public bool Swap => (QuadrantRowsLow & 1) != 0;
    /// <summary>The low 40 bits of <see cref="ImageTiming"/>; passed on as the slot header's detector_2.</summary>
    public ulong FrameTimestamp => ImageTiming & 0xFF_FFFF_FFFFUL;
    /// <summary>The high 24 bits of <see cref="ImageTiming"/>.</summary>
    public uint Exposure => (uint)(ImageTiming >> 40);
    /// <summary>Bit 15 of <see cref="ImageStatusFlags"/> (the receiver stores the frame anyway).</summary>
    public bool DoNotStore => (ImageStatusFlags & 0x8000) != 0;
}
