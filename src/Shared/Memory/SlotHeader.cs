using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StdDaq.Shared.Memory;

/// <summary>
/// The per-slot header (256 bytes), shared by frame and image buffers. <see cref="Sequence"/> is
/// the slot's sequence lock: it is odd while a writer fills the slot and even when the slot holds
/// a whole frame; every write adds 2. A reader copies, then re-reads it: a change means the slot
/// was overwritten meanwhile and the copy must not be used.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct SlotHeader
{
    public const int Size = 256;
    public const int BitmapBytes = 128;

    public ulong Sequence;           // @0   sequence lock
    public ulong ImageId;            // @8
    public ulong FrameIndex;         // @16  detector frame number / index
    public uint NReceivedPackets;    // @24
    public uint NMissingPackets;     // @28
    public ulong Detector1;          // @32  JUNGFRAU daq_rec, GigaFRoST scan_id
    public ulong Detector2;          // @40  GigaFRoST frame timestamp, SLS timestamp
    public long ReceiveTimeNs;       // @48  CLOCK_REALTIME when the frame was closed
    public ushort ModuleId;          // @56
    public ushort BitDepth;          // @58
    public uint Status;              // @60  a SlotStatus value
    public ulong MissingModules;     // @64  image buffers: bit m set = module m missing
    public Reserved56 Reserved;      // @72
    public Bitmap1024 ReceivedBitmap; // @128 bit k set = packet k received

    public readonly bool HasPacket(int k) => (ReceivedBitmap[k >> 3] & (1 << (k & 7))) != 0;

    public void MarkPacket(int k) => ReceivedBitmap[k >> 3] |= (byte)(1 << (k & 7));

    [InlineArray(56)]
    public struct Reserved56
    {
        private byte _e;
    }

    [InlineArray(BitmapBytes)]
    public struct Bitmap1024
    {
        private byte _e;
    }
}

/// <summary>Values of <see cref="SlotHeader.Status"/>.</summary>
public static class SlotStatus
{
    public const uint Good = 0;
    /// <summary>Missing packets (frame buffers) or modules (image buffers).</summary>
    public const uint Incomplete = 1;
    /// <summary>Modules reported different frame numbers for one image id.</summary>
    public const uint IdMismatch = 2;
    /// <summary>
    /// No frame: the slot was prepared for a frame that did not come, and its data is zeroed.
    /// No notice ever points at such a slot version.
    /// </summary>
    public const uint Empty = 3;
}
