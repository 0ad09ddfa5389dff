using System.Runtime.InteropServices;

namespace StdDaq.Shared.Streams;

/// <summary>
/// Published by a receiver for every closed frame on ipc:///tmp/&lt;det&gt;-&lt;module&gt;.
/// 64 bytes, packed, little-endian; the first fields are std-daq's ModuleFrame.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly struct ModuleFrameNotice
{
    public const int Size = 64;

    public readonly ulong ImageId;          // @0
    public readonly ulong NMissingPackets;  // @8
    public readonly ushort ModuleId;        // @16
    public readonly ushort BitDepth;        // @18
    public readonly uint NReceivedPackets;  // @20
    public readonly ulong FrameIndex;       // @24
    public readonly ulong Detector1;        // @32 JUNGFRAU daq_rec, GigaFRoST scan_id
    public readonly ulong Detector2;        // @40 GigaFRoST frame timestamp
    public readonly ulong SlotSequence;     // @48 the slot's sequence-lock value after the write
    public readonly ulong ReceiveTimeNs;    // @56 CLOCK_REALTIME when the frame was closed

    public ModuleFrameNotice(ulong imageId, ulong nMissingPackets, ushort moduleId, ushort bitDepth,
        uint nReceivedPackets, ulong frameIndex, ulong detector1, ulong detector2, ulong slotSequence, ulong receiveTimeNs)
    {
        ImageId = imageId;
        NMissingPackets = nMissingPackets;
        ModuleId = moduleId;
        BitDepth = bitDepth;
        NReceivedPackets = nReceivedPackets;
        FrameIndex = frameIndex;
        Detector1 = detector1;
        Detector2 = detector2;
        SlotSequence = slotSequence;
        ReceiveTimeNs = receiveTimeNs;
    }

    public static ModuleFrameNotice Read(ReadOnlySpan<byte> bytes) => MemoryMarshal.Read<ModuleFrameNotice>(bytes);

    public void Write(Span<byte> bytes) => MemoryMarshal.Write(bytes, in this);
}
