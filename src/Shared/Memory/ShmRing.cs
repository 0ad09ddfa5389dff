using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StdDaq.Shared.Interop;

using StdDaq.Shared.Hosting;

namespace StdDaq.Shared.Memory;

/// <summary>
/// A self-describing ring of fixed-size slots in POSIX shared memory (/dev/shm/&lt;name&gt;):
/// a header page (<see cref="RingHeader"/>), a table of <see cref="SlotHeader"/>s, then 4 KiB-aligned
/// data slots. Slot of id = id % SlotCount. Pages are allocated and pre-faulted at creation.
/// </summary>
public sealed unsafe class ShmRing : IDisposable
{
    /// <summary>The alignment of the header page, the slot data and each slot's stride.</summary>
    public const int PageBytes = 4096;

    // The mapping owns the address range; _base and _header are cached from it for the hot paths
    // (a SafeHandle reference per slot access would cost an interlocked operation each). They stay
    // valid while the mapping is open or leased: see Lease.
    private readonly ShmMapping _mapping;
    private readonly byte* _base;
    private readonly RingHeader* _header;

    /// <summary>The segment's name in /dev/shm, without the slash ("&lt;detector&gt;-0").</summary>
    public string Name { get; }
    /// <summary>Usable bytes per slot, as the header says.</summary>
    public long SlotBytes { get; }
    /// <summary>Bytes from one slot's data to the next: <see cref="SlotBytes"/> rounded up to 4 KiB.</summary>
    public long SlotStride { get; }
    /// <summary>Slots in the ring; id i lives in slot i % SlotCount (<see cref="SlotOf"/>).</summary>
    public int SlotCount { get; }
    /// <summary>What the ring holds, as its header says.</summary>
    public RingKind Kind { get; }
    /// <summary>True when this process created the segment (false when it attached to an existing one).</summary>
    public bool Created { get; }

    private ShmRing(string name, ShmMapping mapping, bool created)
    {
        Name = name;
        _mapping = mapping;
        _base = mapping.Base;
        _header = (RingHeader*)_base;
        SlotBytes = (long)_header->SlotBytes;
        SlotStride = (long)_header->SlotStride;
        SlotCount = (int)_header->SlotCount;
        Kind = _header->Kind;
        Created = created;
    }

    /// <summary>The segment's file: /dev/shm/<paramref name="name"/>.</summary>
    public static string PathOf(string name) => "/dev/shm/" + name;

    /// <summary>
    /// The layout of a ring of <paramref name="slotCount"/> slots of <paramref name="slotBytes"/>:
    /// its size, where the data starts (after the header page and the slot header table, 4 KiB
    /// aligned) and the slot stride, all in bytes.
    /// </summary>
    public static (long Total, long DataOffset, long Stride) LayoutOf(long slotBytes, int slotCount)
    {
        long stride = AlignUp(slotBytes, PageBytes);
        long dataOffset = AlignUp(PageBytes + (long)slotCount * SlotHeader.Size, PageBytes);
        return (dataOffset + stride * slotCount, dataOffset, stride);
    }

    /// <summary>
    /// Creates the segment, or attaches to an existing one of exactly this layout (a restarted
    /// receiver reuses its ring). For the one process that owns the ring's role (see
    /// <see cref="Hosting.RoleLock"/>). Creation is atomic: the segment is allocated, pre-faulted and
    /// described under a temporary name and then published under its real name in one step, so no
    /// other process ever sees it half made. An existing segment of another layout is never
    /// re-truncated (clear error). A half-made segment that no live process uses (left by a creator
    /// that died, from a program without atomic creation) is replaced; one still in use is waited for,
    /// at most <paramref name="wait"/>.
    /// </summary>
    public static ShmRing CreateOrAttach(string name, RingKind kind, long slotBytes, int slotCount,
        TimeSpan? wait = null, Action<string>? log = null)
    {
        if (slotBytes <= 0 || slotCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(slotBytes), $"ring '{name}': {slotCount} slots of {slotBytes} bytes");
        var peer = new PeerWait(wait ?? DefaultWait, log);
        while (true)
        {
            var ring = TryAttach(name, kind, slotBytes, slotCount, writable: true, out var problem, out string message);
            if (ring != null)
                return ring;
            switch (problem)
            {
                case AttachProblem.Missing:
                    ring = CreatePublished(name, kind, slotBytes, slotCount);
                    if (ring != null)
                        return ring;
                    continue; // another process published it first: attach to that one
                case AttachProblem.Unfinished:
                    var users = ShmUsers.Of(name);
                    if (users.Count == 0)
                    {
                        log?.Invoke($"replacing {PathOf(name)}: it {message} and no process uses it (its creator died)");
                        Libc.shm_unlink("/" + name);
                        continue;
                    }
                    if (peer.Expired)
                        throw new RingBufferException($"shared memory {PathOf(name)} {message}, and {ShmUsers.Describe(users)} still uses it; "
                            + $"stop it, then remove the segment with `std-daq shm rm {name}`");
                    peer.Pause(() => $"waiting for {PathOf(name)}: it {message} by {ShmUsers.Describe(users)}");
                    continue;
                default:
                    throw new RingBufferException($"shared memory {PathOf(name)} {message}");
            }
        }
    }

    /// <summary>How long a process waits for a segment when the caller does not say.</summary>
    public static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The start of the temporary names of segments <paramref name="pid"/> creates for
    /// <paramref name="name"/>: "&lt;name&gt;.new-&lt;pid&gt;-&lt;n&gt;", n counting this process's attempts.
    /// </summary>
    public static string TemporaryPrefix(string name, int pid) => $"{name}.new-{pid}-";

    private static int _temporaries;

    /// <summary>
    /// Makes the segment under a temporary name (<see cref="TemporaryPrefix"/>) and publishes it as <paramref name="name"/>
    /// with renameat2(RENAME_NOREPLACE). Null if a segment of that name appeared meanwhile.
    /// </summary>
    private static ShmRing? CreatePublished(string name, RingKind kind, long slotBytes, int slotCount)
    {
        var (total, dataOffset, stride) = LayoutOf(slotBytes, slotCount);
        RemoveDeadTemporaries(name);
        string tmp = TemporaryPrefix(name, Libc.getpid()) + Interlocked.Increment(ref _temporaries);
        int fd = Libc.shm_open("/" + tmp, Libc.O.RDWR | Libc.O.CREAT | Libc.O.EXCL, 438 /* 0666 */);
        if (fd < 0)
            throw new RingBufferException($"shm_open({PathOf(tmp)}) failed: {Libc.strerror(Marshal.GetLastPInvokeError())}");
        using var handle = new SafeFd(fd);
        void* p = (void*)-1;
        try
        {
            if (Libc.ftruncate(fd, total) != 0)
                throw new RingBufferException($"ftruncate({PathOf(tmp)}, {total}) failed: {Libc.strerror(Marshal.GetLastPInvokeError())}");
            // Allocating every page now turns a full /dev/shm into a clear error here instead of a
            // SIGBUS on the data path, and pre-faults the pages (first touch of tmpfs is slow).
            int err = Libc.posix_fallocate(fd, 0, total);
            if (err != 0)
                throw new RingBufferException(
                    $"cannot allocate {total >> 20} MiB for {PathOf(name)} ({slotCount} slots x {slotBytes} bytes): {Libc.strerror(err)}");
            p = Libc.mmap(null, (nuint)total, Libc.Prot.READ | Libc.Prot.WRITE, Libc.Map.SHARED | Libc.Map.POPULATE, fd, 0);
            if (p == (void*)-1)
                throw new RingBufferException($"mmap({PathOf(tmp)}, {total}) failed: {Libc.strerror(Marshal.GetLastPInvokeError())}");
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
            if (!Publish(tmp, name))
            {
                Libc.munmap(p, (nuint)total);
                Libc.shm_unlink("/" + tmp);
                return null;
            }
            return new ShmRing(name, new ShmMapping(p, (nuint)total), created: true);
        }
        catch
        {
            if (p != (void*)-1)
                Libc.munmap(p, (nuint)total);
            Libc.shm_unlink("/" + tmp);
            throw;
        }
    }

    /// <summary>Renames tmp to name unless name exists (false then), in one step.</summary>
    private static bool Publish(string tmp, string name)
    {
        if (Libc.renameat2(Libc.AT_FDCWD, PathOf(tmp), Libc.AT_FDCWD, PathOf(name), Libc.RENAME_NOREPLACE) == 0)
            return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == Libc.Errno.EEXIST)
            return false;
        if (errno != Libc.Errno.EINVAL)
            throw new RingBufferException($"renameat2({PathOf(tmp)}, {PathOf(name)}, RENAME_NOREPLACE) failed: {Libc.strerror(errno)}");
        // A file system without RENAME_NOREPLACE: link() is just as atomic and also refuses an existing name.
        if (Libc.link(PathOf(tmp), PathOf(name)) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.Errno.EEXIST)
                return false;
            throw new RingBufferException($"link({PathOf(tmp)}, {PathOf(name)}) failed: {Libc.strerror(errno)}");
        }
        Libc.shm_unlink("/" + tmp);
        return true;
    }

    /// <summary>Removes temporary segments of <paramref name="name"/> whose creator is gone.</summary>
    internal static void RemoveDeadTemporaries(string name)
    {
        string prefix = name + ".new-";
        foreach (var path in Directory.EnumerateFiles("/dev/shm", prefix + "*"))
        {
            string file = Path.GetFileName(path);
            var rest = file.AsSpan(prefix.Length);
            int dash = rest.IndexOf('-');
            if (dash > 0 && int.TryParse(rest[..dash], out int pid) && !Libc.ProcessAlive(pid))
                Libc.shm_unlink("/" + file);
        }
    }

    /// <summary>
    /// Attaches to a segment another process creates: waits (at most <paramref name="timeout"/>) while
    /// it is missing or still being made, saying once through <paramref name="log"/> what it waits
    /// for. A segment of another layout is an error at once. <paramref name="creator"/> names who
    /// makes it ("StdUdpRecv for module 3"), for the messages.
    /// </summary>
    public static ShmRing WaitAttach(string name, RingKind kind, long? slotBytes, int? slotCount, bool writable,
        TimeSpan timeout, string creator, Action<string>? log, CancellationToken ct)
    {
        var peer = new PeerWait(timeout, log, ct);
        while (true)
        {
            var ring = TryAttach(name, kind, slotBytes, slotCount, writable, out var problem, out string message);
            if (ring != null)
            {
                if (peer.Said)
                    log?.Invoke($"{PathOf(name)} is there");
                return ring;
            }
            if (problem is AttachProblem.Incompatible or AttachProblem.NotARing)
                throw new RingBufferException($"shared memory {PathOf(name)} {message}");
            if (peer.Expired)
                throw new RingBufferException($"shared memory {PathOf(name)} {message} after waiting {timeout.TotalSeconds:0.#} s: is {creator} running?");
            peer.Pause(() => $"waiting up to {timeout.TotalSeconds:0.#} s for {PathOf(name)} from {creator} (it {message})");
        }
    }

    /// <summary>Why a segment could not be attached.</summary>
    public enum AttachProblem
    {
        /// <summary>Attached.</summary>
        None,
        /// <summary>No segment of that name.</summary>
        Missing,
        /// <summary>A segment that is not (yet) a whole ring: too small, no magic, not ready.</summary>
        Unfinished,
        /// <summary>A std-daq ring of another layout, kind, version or geometry.</summary>
        Incompatible,
        /// <summary>Not (recognisably) a std-daq ring: another magic, or it cannot be opened or mapped.</summary>
        NotARing,
    }

    /// <summary>
    /// Attaches to an existing segment by name and checks its layout. Expected values that are
    /// given (kind, slot bytes, slot count) must match exactly.
    /// </summary>
    public static ShmRing Attach(string name, RingKind? kind = null, long? slotBytes = null, int? slotCount = null, bool writable = false) =>
        TryAttach(name, kind, slotBytes, slotCount, writable, out _, out string message)
        ?? throw new RingBufferException($"shared memory {PathOf(name)} {message}");

    /// <summary>Attaches, or returns null with what is wrong (<paramref name="message"/> completes "shared memory /dev/shm/x ...").</summary>
    public static ShmRing? TryAttach(string name, RingKind? kind, long? slotBytes, int? slotCount, bool writable,
        out AttachProblem problem, out string message)
    {
        string path = PathOf(name);
        string removeHint = $"; remove it with `std-daq shm rm {name}` once no process uses it";
        int fd = Libc.shm_open("/" + name, writable ? Libc.O.RDWR : Libc.O.RDONLY, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            problem = errno == Libc.Errno.ENOENT ? AttachProblem.Missing : AttachProblem.NotARing;
            message = errno == Libc.Errno.ENOENT ? "does not exist" : $"cannot be opened: {Libc.strerror(errno)}";
            return null;
        }
        using var handle = new SafeFd(fd);
        long size = new FileInfo(path).Length;
        if (size < PageBytes)
        {
            problem = AttachProblem.Unfinished;
            message = $"is {size} bytes, not yet a whole std-daq ring (being created)";
            return null;
        }
        int prot = writable ? Libc.Prot.READ | Libc.Prot.WRITE : Libc.Prot.READ;
        void* p = Libc.mmap(null, (nuint)size, prot, Libc.Map.SHARED | Libc.Map.POPULATE, fd, 0);
        if (p == (void*)-1)
        {
            problem = AttachProblem.NotARing;
            message = $"cannot be mapped: mmap({size}) failed: {Libc.strerror(Marshal.GetLastPInvokeError())}";
            return null;
        }
        var h = (RingHeader*)p;
        problem = AttachProblem.Incompatible;
        message = "";
        if (h->Magic == 0)
        {
            problem = AttachProblem.Unfinished;
            message = "has no header yet (being created)";
        }
        else if (h->Magic != RingHeader.MagicValue)
        {
            problem = AttachProblem.NotARing;
            message = $"is not a std-daq ring (bad magic); if it is a leftover, remove it with `std-daq shm rm --force {name}`";
        }
        else if (h->LayoutVersion != RingHeader.CurrentLayoutVersion)
            message = $"has layout version {h->LayoutVersion}, this program knows {RingHeader.CurrentLayoutVersion} (created by pid {h->CreatorPid})" + removeHint;
        else if (Volatile.Read(ref h->Ready) != 1)
        {
            problem = AttachProblem.Unfinished;
            message = $"is still being created by pid {h->CreatorPid}";
        }
        else if (h->TotalBytes != (ulong)size || h->SlotHeaderBytes != SlotHeader.Size)
            message = $"is {size} bytes but its header says {h->TotalBytes}" + removeHint;
        else if (kind is { } k && h->Kind != k)
            message = $"is a {h->Kind}, expected a {k}" + removeHint;
        else if ((slotBytes is { } sb && h->SlotBytes != (ulong)sb) || (slotCount is { } sc && h->SlotCount != (ulong)sc))
            message = $"has {h->SlotCount} slots x {h->SlotBytes} bytes, expected {slotCount?.ToString() ?? "any"} slots x {slotBytes?.ToString() ?? "any"} bytes"
                + $" (created by pid {h->CreatorPid}, another geometry)" + removeHint;
        else
        {
            problem = AttachProblem.None;
            return new ShmRing(name, new ShmMapping(p, (nuint)size), created: false);
        }
        Libc.munmap(p, (nuint)size);
        return null;
    }

    /// <summary>Removes the name; processes that have it mapped keep their mapping.</summary>
    public static bool Unlink(string name) => Libc.shm_unlink("/" + name) == 0;

    /// <summary>The header page in the shared mapping, read-only (fixed once the ring is ready).</summary>
    public ref readonly RingHeader Header => ref *_header;

    /// <summary>The slot of <paramref name="id"/>: id % <see cref="SlotCount"/>.</summary>
    public int SlotOf(ulong id) => (int)(id % (ulong)SlotCount);

    /// <summary>The slot's header in the shared mapping; <see cref="Slot"/> is the safe way to it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal SlotHeader* SlotHeaderAt(int slot)
    {
        CheckSlot(slot);
        return (SlotHeader*)(_base + PageBytes + (long)slot * SlotHeader.Size);
    }

    /// <summary>
    /// The first of the slot's <see cref="SlotBytes"/> in the shared mapping (4 KiB aligned), for the
    /// interop types that hand addresses to the kernel (<see cref="RecvBatch"/>). Valid while the
    /// ring is open or leased; another process may write it at any time, hence the sequence lock.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte* SlotData(int slot)
    {
        CheckSlot(slot);
        return _base + (long)_header->DataOffset + slot * SlotStride;
    }

    /// <summary>
    /// The slot's data in the shared mapping, <see cref="SlotBytes"/> long (slots must be under 2 GiB).
    /// Valid while the ring is open; a loop that keeps using slots while another thread may dispose
    /// the ring holds a <see cref="Lease"/>. Another process may write it at any time, hence the
    /// sequence lock.
    /// </summary>
    public Span<byte> SlotSpan(int slot) => new(SlotData(slot), checked((int)SlotBytes));

    /// <summary>
    /// Keeps the mapping until the lease is disposed, even if the ring is disposed meanwhile (it is
    /// unmapped when the last lease ends), so a run loop's spans and the kernel's receive buffers in
    /// the slots never outlive the mapping. <see cref="ObjectDisposedException"/> if the ring is
    /// already disposed.
    /// </summary>
    public MappingLease Lease()
    {
        bool added = false;
        _mapping.DangerousAddRef(ref added);
        return new MappingLease(_mapping);
    }

    /// <summary>A hold on a ring's mapping (<see cref="Lease"/>); dispose it once.</summary>
    public readonly struct MappingLease : IDisposable
    {
        private readonly ShmMapping? _mapping;

        internal MappingLease(ShmMapping mapping) => _mapping = mapping;

        /// <summary>Ends the hold; the mapping goes if the ring was disposed and this was the last lease.</summary>
        public void Dispose() => _mapping?.DangerousRelease();
    }

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

    /// <summary>
    /// Unmaps the segment, at once or when the last <see cref="Lease"/> ends (once; later calls do
    /// nothing). The segment stays: see <see cref="Unlink"/>.
    /// </summary>
    public void Dispose() => _mapping.Dispose();
}
