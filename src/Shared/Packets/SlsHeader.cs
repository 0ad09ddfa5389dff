using System.Runtime.InteropServices;

namespace StdDaq.Shared.Packets;

/// <summary>The 48-byte SLS detector packet header (JUNGFRAU, EIGER), little-endian, packed.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly struct SlsHeader
{
    /// <summary>Bytes of the header; the payload follows at this offset.</summary>
    public const int Size = 48;

    /// <summary>@0: the detector's frame number, the image id unless JUNGFRAU's bunch id replaces it.</summary>
    public readonly ulong FrameNumber;
    /// <summary>@8: EIGER 32 bit: the subframe number; others: the exposure time in 100 ns.</summary>
    public readonly uint ExpLength;
    /// <summary>@12: the packet's index in its frame, 0..PacketsPerFrame-1: where its payload goes.</summary>
    public readonly uint PacketNumber;
    /// <summary>@16: detector specific; JUNGFRAU: the bunch id (the bits of an IEEE double, <see cref="BunchId"/>).</summary>
    public readonly ulong DetSpec1;
    /// <summary>@24: the detector's timestamp (a 10 MHz clock in slsDetectorPackage).</summary>
    public readonly ulong Timestamp;
    /// <summary>@32: the module's id as the detector numbers it (not checked against module_id).</summary>
    public readonly ushort ModuleId;
    /// <summary>@34: the module's row in the detector, as the detector reports it.</summary>
    public readonly ushort Row;
    /// <summary>@36: the module's column in the detector, as the detector reports it.</summary>
    public readonly ushort Column;
    /// <summary>@38: detector specific (reserved).</summary>
    public readonly ushort DetSpec2;
    /// <summary>@40: detector specific; JUNGFRAU: daq_rec (debug), passed on as ImageMetadata user_1.</summary>
    public readonly uint DetSpec3;
    /// <summary>@44: detector specific (detSpec4; round-robin number in older headers).</summary>
    public readonly ushort RoundRobin;
    /// <summary>@46: which detector sent it (<see cref="Detectors.ModuleGeometry.SlsTypeJungfrau"/>, <see cref="Detectors.ModuleGeometry.SlsTypeEiger"/>); 0 is accepted as any.</summary>
    public readonly byte DetectorType;
    /// <summary>@47: header format version; this layout is version 2.</summary>
    public readonly byte HeaderVersion;

    /// <summary>A header as a detector would send it (the simulator's); fields not given are 0, version 2.</summary>
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
