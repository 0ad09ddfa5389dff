using System.Runtime.InteropServices;

namespace StdDaq.Shared.Memory;

/// <summary>What a ring holds (<see cref="RingHeader.Kind"/>); attaching may require one.</summary>
public enum RingKind : uint
{
    /// <summary>One module's frames, made by its receiver (&lt;detector&gt;-&lt;module&gt;).</summary>
    FrameBuffer = 1,
    /// <summary>The detector's assembled images, made by the assembler (&lt;detector&gt;-image).</summary>
    ImageBuffer = 2,
}

/// <summary>
/// The first page of every ring segment: it describes the layout so any process can attach by
/// name and check it. Little-endian, packed.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct RingHeader
{
    /// <summary>Bytes of the header's fields; the rest of its page is zero.</summary>
    public const int Size = 96;
    /// <summary>"STDDAQRB" read as a little-endian u64.</summary>
    public const ulong MagicValue = 0x4252514144445453;
    /// <summary>2: image slot headers count missing modules @64 and flag each module @128 (<see cref="SlotHeader"/>).</summary>
    public const uint CurrentLayoutVersion = 2;

    /// <summary>@0: <see cref="MagicValue"/>; 0 while the creator has not written the header yet.</summary>
    public ulong Magic;
    /// <summary>@8: <see cref="CurrentLayoutVersion"/>; a process that knows another version refuses the segment.</summary>
    public uint LayoutVersion;
    /// <summary>@12: bytes before the slot header table (one page).</summary>
    public uint HeaderBytes;
    /// <summary>@16: usable bytes per slot (a frame's or an image's bytes).</summary>
    public ulong SlotBytes;
    /// <summary>@24: <see cref="SlotBytes"/> rounded up to 4 KiB: from one slot's data to the next.</summary>
    public ulong SlotStride;
    /// <summary>@32: slots in the ring; id i lives in slot i % SlotCount.</summary>
    public ulong SlotCount;
    /// <summary>@40: bytes per slot header (<see cref="SlotHeader.Size"/>).</summary>
    public ulong SlotHeaderBytes;
    /// <summary>@48: where the slot header table starts (one page in).</summary>
    public ulong SlotHeadersOffset;
    /// <summary>@56: where slot 0's data starts, 4 KiB aligned, after the slot header table.</summary>
    public ulong DataOffset;
    /// <summary>@64: the segment's size in bytes; attaching checks the file has exactly this size.</summary>
    public ulong TotalBytes;
    /// <summary>@72: the process that created the segment.</summary>
    public int CreatorPid;
    /// <summary>@76: what the ring holds.</summary>
    public RingKind Kind;
    /// <summary>@80: when it was created, CLOCK_REALTIME in ns since the epoch.</summary>
    public long CreationTimeNs;
    /// <summary>@88: 1 once the segment is initialised and pre-faulted; written last, with release semantics.</summary>
    public uint Ready;
    /// <summary>@92: 0.</summary>
    public uint Reserved;
}
