using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StdDaq.Shared.Memory;

/// <summary>
/// The per-slot header (256 bytes), shared by frame and image buffers. <see cref="Sequence"/> is
/// the slot's sequence lock: it is odd while a writer fills the slot and even when the slot holds
/// a whole frame; every write adds 2 (a cancelled one leaves it as it was). A reader copies, then
/// re-reads it: a change means the slot was overwritten meanwhile and the copy must not be used.
/// </summary>
/// <remarks>
/// The bitmap @128 says which parts the slot holds: packet k of a frame (frame buffers), module m's
/// frame of an image (image buffers). 1024 bits cover the most packets a frame may have and the
/// most modules an image may have (<see cref="MaxModules"/>). Layout version 2 of the ring
/// (<see cref="RingHeader.CurrentLayoutVersion"/>); version 1 had a 64-bit missing-module mask @64.
/// </remarks>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct SlotHeader
{
    /// <summary>Bytes of one slot header in the ring's table.</summary>
    public const int Size = 256;
    /// <summary>Bytes of <see cref="ReceivedBitmap"/>: 1024 bits.</summary>
    public const int BitmapBytes = 128;
    /// <summary>Modules an image slot can account for, one bit each in <see cref="ReceivedBitmap"/>.</summary>
    public const int MaxModules = BitmapBytes * 8;

    /// <summary>
    /// @0: the sequence lock. Odd while a writer fills the slot; even when it holds a whole version.
    /// Written through <see cref="ShmRing.BeginWrite"/> and <see cref="ShmRing.EndWrite"/>, not directly.
    /// </summary>
    public ulong Sequence;
    /// <summary>@8: the id of the frame or image in the slot (its slot is id % slot count); 0 in an empty slot.</summary>
    public ulong ImageId;
    /// <summary>@16: the detector's frame number (SLS) or frame index (GigaFRoST); image buffers: the first module's.</summary>
    public ulong FrameIndex;
    /// <summary>@24: packets received; image buffers: summed over the modules in the image.</summary>
    public uint NReceivedPackets;
    /// <summary>@28: packets not received; image buffers: of all modules, those of missing modules included.</summary>
    public uint NMissingPackets;
    /// <summary>@32: JUNGFRAU daq_rec, GigaFRoST scan_id, 0 for EIGER; image buffers: the first module's.</summary>
    public ulong Detector1;
    /// <summary>@40: the SLS timestamp or GigaFRoST frame timestamp; image buffers: the first module's.</summary>
    public ulong Detector2;
    /// <summary>@48: CLOCK_REALTIME in ns since the epoch when the frame was closed (image buffers: the earliest of its module frames'; the assembly time if none came).</summary>
    public long ReceiveTimeNs;
    /// <summary>@56: the module (frame buffers); 0 in image buffers.</summary>
    public ushort ModuleId;
    /// <summary>@58: bits per pixel: on the wire (frame buffers; GigaFRoST 12), of the image's dtype (image buffers).</summary>
    public ushort BitDepth;
    /// <summary>@60: a <see cref="SlotStatus"/> value (image buffers: an ImageStatus, the same codes).</summary>
    public uint Status;
    /// <summary>@64: image buffers: modules not in the image (missing or overrun); 0 in frame buffers.</summary>
    public uint NMissingModules;
    /// <summary>@68: zero (16 bytes); a replica's image slots (StdStreamRecv, whole images) keep the sender's session @68 and sequence number @76 here.</summary>
    public Reserved16 Reserved;
    /// <summary>
    /// @84: image buffers filled by part receivers (StdStreamRecv --part i/N): which image the slot
    /// is open for and which of its byte ranges are in (<see cref="SlotParts"/>); zero otherwise.
    /// </summary>
    public SlotPartsState Parts;
    /// <summary>@124: zero, up to the bitmap.</summary>
    public Reserved4 ReservedTail;
    /// <summary>
    /// @128: frame buffers: bit k set = packet k received; image buffers: bit m set = module m's
    /// frame is in the image. Bit i is bit i % 8 of byte i / 8.
    /// </summary>
    public Bitmap1024 ReceivedBitmap;

    /// <summary>Frame buffers: packet <paramref name="k"/> is in the frame.</summary>
    public readonly bool HasPacket(int k) => HasBit(k);

    /// <summary>Frame buffers: flags packet <paramref name="k"/> received (only sets; clear the bitmap for a new frame).</summary>
    public void MarkPacket(int k) => SetBit(k);

    /// <summary>Image buffers: module <paramref name="m"/>'s frame is in the image.</summary>
    public readonly bool HasModule(int m) => HasBit(m);

    /// <summary>Image buffers: flags module <paramref name="m"/>'s frame as placed in the image.</summary>
    public void MarkModule(int m) => SetBit(m);

    private readonly bool HasBit(int i) => (ReceivedBitmap[i >> 3] & (1 << (i & 7))) != 0;

    private void SetBit(int i) => ReceivedBitmap[i >> 3] |= (byte)(1 << (i & 7));

    /// <summary>16 reserved bytes (@68 up to the parts state @84).</summary>
    [InlineArray(16)]
    public struct Reserved16
    {
        private byte _e;
    }

    /// <summary>4 reserved bytes (@124 up to the bitmap @128).</summary>
    [InlineArray(4)]
    public struct Reserved4
    {
        private byte _e;
    }

    /// <summary>128 bytes, one bit per packet or module.</summary>
    [InlineArray(BitmapBytes)]
    public struct Bitmap1024
    {
        private byte _e;
    }
}

/// <summary>
/// The part receivers' bookkeeping in an image slot header (@84..@124 of <see cref="SlotHeader"/>,
/// 40 bytes), changed only under <see cref="Lock"/> through <see cref="SlotParts"/>. Offsets are
/// within the slot header; the 64-bit fields are 8-byte aligned there (slot headers are).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct SlotPartsState
{
    /// <summary>@84: 0 when free, else the pid of the process in the (few-instruction) critical section.</summary>
    public int Lock;
    /// <summary>@88: the image the slot is open for, or was sealed or given up for.</summary>
    public ulong ImageId;
    /// <summary>@96: a hash of the image's ImageMetadata and source slot header: every part must bring the same.</summary>
    public ulong Key;
    /// <summary>@104: bit i: part i's bytes are in the slot and matched its checksum.</summary>
    public ulong Done;
    /// <summary>@112: bit i: part i came but could not be used (checksum, size, another source image).</summary>
    public ulong Failed;
    /// <summary>@120: a <see cref="SlotPartsPhase"/>.</summary>
    public uint Phase;
}

/// <summary>Values of <see cref="SlotPartsState.Phase"/>.</summary>
public static class SlotPartsPhase
{
    /// <summary>No part receiver has used the slot.</summary>
    public const uint None = 0;
    /// <summary>Parts of <see cref="SlotPartsState.ImageId"/> are being written (the sequence lock is odd).</summary>
    public const uint Open = 1;
    /// <summary>Every part was in: the publisher sealed the slot (even) and published the image.</summary>
    public const uint Sealed = 2;
    /// <summary>The publisher gave the image up (a part missing or failed); the slot stays odd until the next image's parts claim it.</summary>
    public const uint Abandoned = 3;
}

/// <summary>Values of <see cref="SlotHeader.Status"/>.</summary>
public static class SlotStatus
{
    /// <summary>Whole: every packet (frame buffers); every module, each with every packet (image buffers).</summary>
    public const uint Good = 0;
    /// <summary>Missing packets (frame buffers); a missing module or one with missing packets (image buffers).</summary>
    public const uint Incomplete = 1;
    /// <summary>Modules reported different frame numbers for one image id.</summary>
    public const uint IdMismatch = 2;
    /// <summary>
    /// No frame: the slot was prepared for a frame that did not come, and its data is zeroed.
    /// No notice ever points at such a slot version.
    /// </summary>
    public const uint Empty = 3;
}
