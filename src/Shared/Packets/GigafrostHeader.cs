using System.Runtime.InteropServices;

namespace StdDaq.Shared.Packets;

/// <summary>The 32-byte GigaFRoST packet header, little-endian, packed.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly struct GigafrostHeader
{
    public const int Size = 32;
    public const byte ProtocolIdValue = 0xCB;

    public readonly byte ProtocolId;                // @0  always 0xCB
    public readonly byte QuadrantRowLengthInBlocks; // @1  12-pixel blocks per quadrant row
    public readonly byte QuadrantRowsLow;           // @2  bit 0 = swap, bits 7-1 low 7 bits of the row count
    public readonly byte StatusFlags;               // @3  bits 7-6 quadrant, 5 link, 4-2 corr_mode, 1-0 rows high bits
    public readonly uint ScanId;                    // @4
    public readonly uint FrameIndex;                // @8
    public readonly ushort ImageStatusFlags;        // @12 bit 15 = do-not-store
    public readonly ushort PacketStartingRow;       // @14
    public readonly ulong ImageTiming;              // @16 low 40 bits frame timestamp, high 24 exposure
    public readonly uint SyncTime;                  // @24
    public readonly uint ScanTime;                  // @28

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

    public int Quadrant => StatusFlags >> 6;
    public int Link => (StatusFlags >> 5) & 1;
    /// <summary>The 9-bit row count (bits 7-1 of byte 2, bits 1-0 of byte 3 as bits 8-7).</summary>
    public int QuadrantRows => (QuadrantRowsLow >> 1) | (StatusFlags & 0x3) << 7;
    public bool Swap => (QuadrantRowsLow & 1) != 0;
    public ulong FrameTimestamp => ImageTiming & 0xFF_FFFF_FFFFUL;
    public uint Exposure => (uint)(ImageTiming >> 40);
    public bool DoNotStore => (ImageStatusFlags & 0x8000) != 0;
}
