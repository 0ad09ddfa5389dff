using System.Runtime.InteropServices;

namespace StdDaq.Shared.Memory;

public enum RingKind : uint
{
    FrameBuffer = 1,
    ImageBuffer = 2,
}

/// <summary>
/// The first page of every ring segment: it describes the layout so any process can attach by
/// name and check it. Little-endian, packed.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct RingHeader
{
    public const int Size = 96;
    /// <summary>"STDDAQRB" read as a little-endian u64.</summary>
    public const ulong MagicValue = 0x4252514144445453;
    /// <summary>2: image slot headers count missing modules @64 and flag each module @128 (<see cref="SlotHeader"/>).</summary>
    public const uint CurrentLayoutVersion = 2;

    public ulong Magic;              // @0
    public uint LayoutVersion;       // @8
    public uint HeaderBytes;         // @12 bytes before the slot header table (one page)
    public ulong SlotBytes;          // @16 usable bytes per slot
    public ulong SlotStride;         // @24 SlotBytes rounded up to 4 KiB
    public ulong SlotCount;          // @32
    public ulong SlotHeaderBytes;    // @40 bytes per slot header
    public ulong SlotHeadersOffset;  // @48
    public ulong DataOffset;         // @56 4 KiB aligned
    public ulong TotalBytes;         // @64
    public int CreatorPid;           // @72
    public RingKind Kind;            // @76
    public long CreationTimeNs;      // @80 CLOCK_REALTIME
    public uint Ready;               // @88 1 once the segment is initialised and pre-faulted
    public uint Reserved;            // @92
}
