using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StdDaq.Shared.Memory;

/// <summary>
/// The per-slot header (256 bytes), shared by frame and image buffers. <see cref="Sequence"/> is
/// the slot's sequence lock: it is odd while a writer fills the slot and even when the slot holds
/// a whole frame; every write adds 2. A reader copies, then re-reads it: a change means the slot
/// was overwritten meanwhile and the copy must not be used.
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
    public const int Size = 256;
    public const int BitmapBytes = 128;
    /// <summary>Modules an image slot can account for, one bit each in <see cref="ReceivedBitmap"/>.</summary>
    public const int MaxModules = BitmapBytes * 8;

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
    public uint NMissingModules;     // @64  image buffers: modules not in the image (missing or overrun); 0 in frame buffers
    public Reserved60 Reserved;      // @68
    public Bitmap1024 ReceivedBitmap; // @128 frame buffers: bit k set = packet k received;
                                      //      image buffers: bit m set = module m's frame is in the image

    public readonly bool HasPacket(int k) => HasBit(k);

    public void MarkPacket(int k) => SetBit(k);

    /// <summary>Image buffers: module <paramref name="m"/>'s frame is in the image.</summary>
    public readonly bool HasModule(int m) => HasBit(m);

    public void MarkModule(int m) => SetBit(m);

    private readonly bool HasBit(int i) => (ReceivedBitmap[i >> 3] & (1 << (i & 7))) != 0;

    private void SetBit(int i) => ReceivedBitmap[i >> 3] |= (byte)(1 << (i & 7));

    [InlineArray(60)]
    public struct Reserved60
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
