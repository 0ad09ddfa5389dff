using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StdDaq.Shared.Interop;

namespace StdDaq.Shared.Memory;

/// <summary>
/// A self-describing ring of fixed-size slots in POSIX shared memory (/dev/shm/&lt;name&gt;):
/// a header page (<see cref="RingHeader"/>), a table of <see cref="SlotHeader"/>s, then 4 KiB-aligned
/// data slots. Slot of id = id % SlotCount. Pages are allocated and pre-faulted at creation.
/// </summary>
public sealed unsafe class ShmRing : IDisposable
{
    public const int PageBytes = 4096;

    private readonly byte* _base;
    private readonly nuint _length;
    private readonly RingHeader* _header;
    private int _disposed;

    public string Name { get; }
    public long SlotBytes { get; }
    public long SlotStride { get; }
    public int SlotCount { get; }
    public RingKind Kind { get; }
    /// <summary>True when this process created the segment (false when it attached to an existing one).</summary>
    public bool Created { get; }

    private ShmRing(string name, byte* @base, nuint length, bool created)
    {
        Name = name;
        _base = @base;
        _length = length;
        _header = (RingHeader*)@base;
        SlotBytes = (long)_header->SlotBytes;
        SlotStride = (long)_header->SlotStride;
        SlotCount = (int)_header->SlotCount;
        Kind = _header->Kind;
        Created = created;
    }

    public static string PathOf(string name) => "/dev/shm/" + name;

    public static (long Total, long DataOffset, long Stride) LayoutOf(long slotBytes, int slotCount)
    {
        long stride = AlignUp(slotBytes, PageBytes);
        long dataOffset = AlignUp(PageBytes + (long)slotCount * SlotHeader.Size, PageBytes);
        return (dataOffset + stride * slotCount, dataOffset, stride);
    }

    /// <summary>
    /// Creates the segment, or attaches to an existing one of exactly this layout (a restarted
    /// writer reuses its ring). An existing segment of another layout is never re-truncated.
    /// </summary>
    public static ShmRing CreateOrAttach(string name, RingKind kind, long slotBytes, int slotCount)
    {
        if (slotBytes <= 0 || slotCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(slotBytes), $"ring '{name}': {slotCount} slots of {slotBytes} bytes");
        var (total, dataOffset, stride) = LayoutOf(slotBytes, slotCount);
        string shmName = "/" + name;
        int fd = Libc.shm_open(shmName, Libc.O.RDWR | Libc.O.CREAT | Libc.O.EXCL, 438 /* 0666 */);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.Errno.EEXIST)
                return Attach(name, kind, slotBytes, slotCount, writable: true);
            throw new RingBufferException($"shm_open({PathOf(name)}) failed: {Libc.strerror(errno)}");
        }
        using var handle = new SafeFd(fd);
        try
        {
            if (Libc.ftruncate(fd, total) != 0)
                throw new RingBufferException($"ftruncate({PathOf(name)}, {total}) failed: {Libc.strerror(Marshal.GetLastPInvokeError())}");
            // Allocating every page now turns a full /dev/shm into a clear error here instead of a
            // SIGBUS on the data path, and pre-faults the pages (first touch of tmpfs is slow).
            int err = Libc.posix_fallocate(fd, 0, total);
            if (err != 0)
                throw new RingBufferException(
                    $"cannot allocate {total >> 20} MiB for {PathOf(name)} ({slotCount} slots x {slotBytes} bytes): {Libc.strerror(err)}");
            void* p = Libc.mmap(null, (nuint)total, Libc.Prot.READ | Libc.Prot.WRITE, Libc.Map.SHARED | Libc.Map.POPULATE, fd, 0);
            if (p == (void*)-1)
                throw new RingBufferException($"mmap({PathOf(name)}, {total}) failed: {Libc.strerror(Marshal.GetLastPInvokeError())}");
            var h = (RingHeader*)p;
            h->Magic = RingHeader.MagicValue;
            h->LayoutVersion = RingHeader.CurrentLayoutVersion;
            h->HeaderBytes = PageBytes;
            h->SlotBytes = (ulong)slotBytes;
            h->SlotStride = (ulong)stride;
            h->SlotCount = (ulong)slotCount;
            h->SlotHeaderBytes = SlotHeader.Size;
            h->SlotHeadersOffset = PageBytes;
            h->DataOffset = (ulong)dataOffset;
            h->TotalBytes = (ulong)total;
            h->CreatorPid = Libc.getpid();
            h->Kind = kind;
            h->CreationTimeNs = Libc.RealtimeNs();
            Volatile.Write(ref h->Ready, 1u);
            return new ShmRing(name, (byte*)p, (nuint)total, created: true);
        }
        catch
        {
            Libc.shm_unlink(shmName);
            throw;
        }
    }

    /// <summary>
    /// Attaches to an existing segment by name and checks its layout. Expected values that are
    /// given (kind, slot bytes, slot count) must match exactly.
    /// </summary>
    public static ShmRing Attach(string name, RingKind? kind = null, long? slotBytes = null, int? slotCount = null, bool writable = false)
    {
        string path = PathOf(name);
        int fd = Libc.shm_open("/" + name, writable ? Libc.O.RDWR : Libc.O.RDONLY, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new RingBufferException(errno == Libc.Errno.ENOENT
                ? $"shared memory {path} does not exist (is its writer running?)"
                : $"shm_open({path}) failed: {Libc.strerror(errno)}");
        }
        using var handle = new SafeFd(fd);
        long size = new FileInfo(path).Length;
        if (size < PageBytes)
            throw new RingBufferException($"{path} is {size} bytes, too small to be a std-daq ring (being created, or not ours)");
        int prot = writable ? Libc.Prot.READ | Libc.Prot.WRITE : Libc.Prot.READ;
        void* p = Libc.mmap(null, (nuint)size, prot, Libc.Map.SHARED | Libc.Map.POPULATE, fd, 0);
        if (p == (void*)-1)
            throw new RingBufferException($"mmap({path}, {size}) failed: {Libc.strerror(Marshal.GetLastPInvokeError())}");
        var h = (RingHeader*)p;
        string? problem = null;
        if (h->Magic != RingHeader.MagicValue)
            problem = "is not a std-daq ring (bad magic)";
        else if (h->LayoutVersion != RingHeader.CurrentLayoutVersion)
            problem = $"has layout version {h->LayoutVersion}, this program knows {RingHeader.CurrentLayoutVersion}";
        else if (Volatile.Read(ref h->Ready) != 1)
            problem = "is still being created";
        else if (h->TotalBytes != (ulong)size || h->SlotHeaderBytes != SlotHeader.Size)
            problem = $"is {size} bytes but its header says {h->TotalBytes}";
        else if (kind is { } k && h->Kind != k)
            problem = $"is a {h->Kind}, expected a {k}";
        else if ((slotBytes is { } sb && h->SlotBytes != (ulong)sb) || (slotCount is { } sc && h->SlotCount != (ulong)sc))
            problem = $"has {h->SlotCount} slots x {h->SlotBytes} bytes, expected {slotCount?.ToString() ?? "any"} slots x {slotBytes?.ToString() ?? "any"} bytes"
                + $" (created by pid {h->CreatorPid}; stop the processes using it or remove {path})";
        if (problem != null)
        {
            Libc.munmap(p, (nuint)size);
            throw new RingBufferException($"shared memory {path} {problem}");
        }
        return new ShmRing(name, (byte*)p, (nuint)size, created: false);
    }

    /// <summary>Removes the name; processes that have it mapped keep their mapping.</summary>
    public static bool Unlink(string name) => Libc.shm_unlink("/" + name) == 0;

    public ref readonly RingHeader Header => ref *_header;

    public int SlotOf(ulong id) => (int)(id % (ulong)SlotCount);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public SlotHeader* SlotHeaderAt(int slot)
    {
        CheckSlot(slot);
        return (SlotHeader*)(_base + PageBytes + (long)slot * SlotHeader.Size);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* SlotData(int slot)
    {
        CheckSlot(slot);
        return _base + (long)_header->DataOffset + slot * SlotStride;
    }

    public Span<byte> SlotSpan(int slot) => new(SlotData(slot), checked((int)SlotBytes));

    /// <summary>The slot's header, by reference into the shared mapping.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref SlotHeader Slot(int slot) => ref *SlotHeaderAt(slot);

    /// <summary>Marks the slot as being written (odd sequence). Returns the odd value.</summary>
    public ulong BeginWrite(int slot)
    {
        ref ulong seq = ref SlotHeaderAt(slot)->Sequence;
        ulong s = Volatile.Read(ref seq);
        ulong odd = (s & 1) == 0 ? s + 1 : s + 2;
        // Full fence: no data store may become visible before the odd value.
        Interlocked.Exchange(ref seq, odd);
        return odd;
    }

    /// <summary>Publishes the slot (even sequence, release). Returns the new sequence value.</summary>
    public ulong EndWrite(int slot)
    {
        ref ulong seq = ref SlotHeaderAt(slot)->Sequence;
        ulong even = (Volatile.Read(ref seq) | 1) + 1;
        Volatile.Write(ref seq, even);
        return even;
    }

    /// <summary>
    /// Ends a write that changed nothing in the slot (neither data nor header), restoring the
    /// even sequence <paramref name="previous"/> it had before <see cref="BeginWrite"/>. A reader
    /// that copied across the odd window still sees one version and the bytes it copied are that
    /// version's. Returns false, and changes nothing, if <paramref name="previous"/> is not even.
    /// </summary>
    public bool CancelWrite(int slot, ulong previous)
    {
        if ((previous & 1) != 0)
            return false;
        Volatile.Write(ref SlotHeaderAt(slot)->Sequence, previous);
        return true;
    }

    /// <summary>
    /// Starts reading the slot of <paramref name="id"/>: true, with the version in
    /// <paramref name="sequence"/>, if the slot is not being written and holds that id. Use the data,
    /// then <see cref="Validate"/>: only a true there makes what was read valid. False means the
    /// slot was already reused (the reader fell behind) or is being rewritten: an overrun.
    /// </summary>
    public bool TryBeginRead(ulong id, out int slot, out ulong sequence)
    {
        slot = SlotOf(id);
        sequence = ReadSequence(slot);
        return (sequence & 1) == 0 && Volatile.Read(ref SlotHeaderAt(slot)->ImageId) == id;
    }

    /// <summary>The slot's sequence value, read with acquire semantics.</summary>
    public ulong ReadSequence(int slot) => Volatile.Read(ref SlotHeaderAt(slot)->Sequence);

    /// <summary>
    /// True if the slot still holds the version <paramref name="expected"/> (an even value read
    /// before, or announced in a notice). Call after copying: a false means the copy is torn.
    /// </summary>
    public bool Validate(int slot, ulong expected)
    {
        Interlocked.MemoryBarrier();
        return (expected & 1) == 0 && Volatile.Read(ref SlotHeaderAt(slot)->Sequence) == expected;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckSlot(int slot)
    {
        if ((uint)slot >= (uint)SlotCount)
            ThrowSlot(slot);
    }

    private void ThrowSlot(int slot) => throw new ArgumentOutOfRangeException(nameof(slot), $"slot {slot} of ring '{Name}' with {SlotCount} slots");

    private static long AlignUp(long v, long a) => (v + a - 1) / a * a;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            Libc.munmap(_base, _length);
    }
}
