using System.Runtime.InteropServices;

namespace StdDaq.Shared.Streams;

/// <summary>
/// Published by a receiver for every closed frame on ipc:///tmp/&lt;det&gt;-&lt;module&gt;.
/// 64 bytes, packed, little-endian; the first fields are std-daq's ModuleFrame.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly struct ModuleFrameNotice
{
    /// <summary>Bytes of one notice.</summary>
    public const int Size = 64;

    /// <summary>@0: the frame's image id; the frame is in FrameBuffer slot id % slot count.</summary>
    public readonly ulong ImageId;
    /// <summary>@8: packets of the frame that did not come (the receiver zeroes their places).</summary>
    public readonly ulong NMissingPackets;
    /// <summary>@16: the module, 0..n_modules-1.</summary>
    public readonly ushort ModuleId;
    /// <summary>@18: bits per pixel on the wire (GigaFRoST: 12).</summary>
    public readonly ushort BitDepth;
    /// <summary>@20: packets of the frame received.</summary>
    public readonly uint NReceivedPackets;
    /// <summary>@24: the detector's frame number (SLS) or frame index (GigaFRoST).</summary>
    public readonly ulong FrameIndex;
    /// <summary>@32: JUNGFRAU daq_rec, GigaFRoST scan_id, 0 for EIGER.</summary>
    public readonly ulong Detector1;
    /// <summary>@40: the SLS timestamp or GigaFRoST frame timestamp.</summary>
    public readonly ulong Detector2;
    /// <summary>
    /// @48: the slot's sequence-lock value after the write: a reader's copy of the slot is this
    /// frame only if <see cref="Memory.ShmRing.Validate"/> with it holds after copying.
    /// </summary>
    public readonly ulong SlotSequence;
    /// <summary>@56: CLOCK_REALTIME in ns since the epoch when the frame was closed.</summary>
    public readonly ulong ReceiveTimeNs;

    /// <summary>A notice with these fields, in the order of the layout.</summary>
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

    /// <summary>The notice in the first <see cref="Size"/> bytes (fewer throw); little-endian, as the host is.</summary>
    public static ModuleFrameNotice Read(ReadOnlySpan<byte> bytes) => MemoryMarshal.Read<ModuleFrameNotice>(bytes);

    /// <summary>Writes the notice into the first <see cref="Size"/> bytes (fewer throw).</summary>
    public void Write(Span<byte> bytes) => MemoryMarshal.Write(bytes, in this);
}
