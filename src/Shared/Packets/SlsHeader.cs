using System.Runtime.InteropServices;

namespace StdDaq.Shared.Packets;

/// <summary>The 48-byte SLS detector packet header (JUNGFRAU, EIGER), little-endian, packed.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly struct SlsHeader
{
    public const int Size = 48;

    public readonly ulong FrameNumber;   // @0
    public readonly uint ExpLength;      // @8
    public readonly uint PacketNumber;   // @12
    public readonly ulong DetSpec1;      // @16 JUNGFRAU: bunch id (IEEE double bits)
    public readonly ulong Timestamp;     // @24
    public readonly ushort ModuleId;     // @32
    public readonly ushort Row;          // @34
    public readonly ushort Column;       // @36
    public readonly ushort DetSpec2;     // @38
    public readonly uint DetSpec3;       // @40 JUNGFRAU: daq_rec / debug
    public readonly ushort RoundRobin;   // @44
    public readonly byte DetectorType;   // @46
    public readonly byte HeaderVersion;  // @47

    public SlsHeader(ulong frameNumber, uint packetNumber, ulong detSpec1, ulong timestamp, ushort moduleId,
        ushort row, ushort column, uint detSpec3, byte detectorType, byte headerVersion = 2,
        uint expLength = 0, ushort detSpec2 = 0, ushort roundRobin = 0)
    {
        FrameNumber = frameNumber;
        ExpLength = expLength;
        PacketNumber = packetNumber;
        DetSpec1 = detSpec1;
        Timestamp = timestamp;
        ModuleId = moduleId;
        Row = row;
        Column = column;
        DetSpec2 = detSpec2;
        DetSpec3 = detSpec3;
        RoundRobin = roundRobin;
        DetectorType = detectorType;
        HeaderVersion = headerVersion;
    }

    /// <summary>JUNGFRAU's bunch id, carried as a double in detSpec1.</summary>
    public double BunchId => BitConverter.UInt64BitsToDouble(DetSpec1);
}
