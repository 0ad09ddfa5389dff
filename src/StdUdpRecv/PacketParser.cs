using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Packets;

namespace StdDaq.UdpRecv;

/// <summary>What the frame tracker needs from one valid packet.</summary>
public readonly record struct PacketInfo(ulong ImageId, int PacketNumber, ulong FrameIndex, ulong Detector1, ulong Detector2);

public enum PacketVerdict
{
    Ok,
    WrongSize,
    BadPacketNumber,
    WrongProtocol,
}

/// <summary>
/// Validates a datagram against the module geometry and extracts <see cref="PacketInfo"/>.
/// Nothing from a datagram is trusted before it passes here: size, packet number, protocol id.
/// </summary>
public sealed class PacketParser(ModuleGeometry geometry, bool jungfrauBunchIdAsImageId)
{
    public ModuleGeometry Geometry { get; } = geometry;

    public PacketVerdict Parse(ReadOnlySpan<byte> datagram, out PacketInfo info) =>
        Parse(datagram, datagram.Length, out info);

    /// <summary>Validates a datagram of <paramref name="length"/> bytes that starts with <paramref name="header"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // once per packet, from one loop
    public PacketVerdict Parse(ReadOnlySpan<byte> header, int length, out PacketInfo info)
    {
        info = default;
        var g = Geometry;
        // Size first: a datagram of no size this detector sends is not parsed any further.
        if (length != g.PacketBytes && length != g.HeaderBytes + g.LastPayloadBytes)
            return PacketVerdict.WrongSize;
        if (g.Format == PacketFormat.Sls)
        {
            var h = MemoryMarshal.Read<SlsHeader>(header);
            if (h.DetectorType != 0 && h.DetectorType != g.SlsDetectorType)
                return PacketVerdict.WrongProtocol;
            if (h.PacketNumber >= (uint)g.PacketsPerFrame)
                return PacketVerdict.BadPacketNumber;
            int k = (int)h.PacketNumber;
            if (length != g.HeaderBytes + g.PayloadBytesOf(k))
                return PacketVerdict.WrongSize;
            ulong id = h.FrameNumber;
            ulong det1 = 0;
            if (g.SlsDetectorType == ModuleGeometry.SlsTypeJungfrau)
            {
                det1 = h.DetSpec3;
                double bunch = h.BunchId;
                if (jungfrauBunchIdAsImageId && bunch >= 1 && bunch < 1.8e19)
                    id = (ulong)bunch;
            }
            info = new PacketInfo(id, k, h.FrameNumber, det1, h.Timestamp);
            return PacketVerdict.Ok;
        }
        else
        {
            var h = MemoryMarshal.Read<GigafrostHeader>(header);
            if (h.ProtocolId != GigafrostHeader.ProtocolIdValue)
                return PacketVerdict.WrongProtocol;
            int row = h.PacketStartingRow;
            if (row % g.RowsPerPacket != 0 || row / g.RowsPerPacket >= g.PacketsPerFrame)
                return PacketVerdict.BadPacketNumber;
            int k = row / g.RowsPerPacket;
            if (length != g.HeaderBytes + g.PayloadBytesOf(k))
                return PacketVerdict.WrongSize;
            info = new PacketInfo(h.FrameIndex, k, h.FrameIndex, h.ScanId, h.FrameTimestamp);
            return PacketVerdict.Ok;
        }
    }
}
