using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>One loan's native entry: what the free callback reads and writes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct ZmqLoanEntry
{
    /// <summary>0 while libzmq holds the bytes, 1 once it gave them back (written last).</summary>
    public long Returned;
    /// <summary>The slot's sequence-lock word, read by the callback.</summary>
    public ulong* SequenceWord;
    /// <summary>Its value when the bytes came back.</summary>
    public ulong SequenceAtReturn;

    /// <summary>libzmq's free callback's work (its I/O thread, or the lender's at a close): the slot's sequence now, then the flag.</summary>
    public static void Return(ZmqLoanEntry* e)
    {
        // libzmq has read the bytes (they are in the kernel's socket buffer, or dropped): what the slot holds from now on does not matter.
        Interlocked.MemoryBarrier();
        e->SequenceAtReturn = Volatile.Read(ref *e->SequenceWord);
        Volatile.Write(ref e->Returned, 1);
    }
}

/// <summary>
/// Slot bytes lent to libzmq without a copy (<see cref="ZmqOutMessage.InitLent"/>): each loan has an
/// entry in native memory that libzmq's free callback fills, on its I/O thread, once it has written
/// the bytes to the socket or dropped the message: the slot's sequence-lock value at that moment,
/// then the flag that says the loan is back. The lender's item (which slot, which version) comes back
/// with that value (<see cref="TryTakeReturned"/>), in lending order: a value other than the one the
/// image was read under means the slot was rewritten while libzmq still read it.
/// </summary>
/// <remarks>
/// Hand-written because it is the sender's hot path: it saves the copy of every image into a libzmq
/// buffer (and that buffer's allocation, whose fresh pages fault and are zeroed by the kernel). The
/// sequence is read in the callback, not when the lender looks later, so a slot rewritten after
/// libzmq was done is not taken for one torn on the way. The lent bytes must stay mapped until every
/// loan is back: <see cref="WaitAllReturned"/> before the ring is unmapped; entries still out at
/// <see cref="Dispose"/> are left allocated (libzmq may still write one).
/// </remarks>
public sealed unsafe class ZmqLoans<T> : IDisposable where T : struct
{
    private readonly ZmqLoanEntry* _entries;
    private readonly T[] _items;
    private long _lent;
    private long _taken;

    /// <summary>At most <paramref name="capacity"/> loans out at once.</summary>
    public ZmqLoans(int capacity)
    {
        _items = new T[capacity];
        _entries = (ZmqLoanEntry*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(ZmqLoanEntry));
    }

    /// <summary>Loans not taken back yet.</summary>
    public int Outstanding => (int)(_lent - _taken);

    /// <summary>Whether another loan fits.</summary>
    public bool CanLend => Outstanding < _items.Length;

    /// <summary>Records a loan of <paramref name="item"/> from the slot whose sequence word is <paramref name="sequenceWord"/>: the hint for zmq_msg_init_data.</summary>
    internal ZmqLoanEntry* Lend(in T item, ulong* sequenceWord)
    {
        if (!CanLend)
            throw new InvalidOperationException("too many loans out");
        int i = (int)(_lent++ % _items.Length);
        _items[i] = item;
        ZmqLoanEntry* e = &_entries[i];
        e->SequenceWord = sequenceWord;
        e->SequenceAtReturn = 0;
        Volatile.Write(ref e->Returned, 0);
        return e;
    }

    /// <summary>Replaces the item of the latest loan (what became of it, e.g. not sent after all).</summary>
    public void ReplaceLatest(in T item)
    {
        if (_lent == _taken)
            throw new InvalidOperationException("no loan out");
        _items[(int)((_lent - 1) % _items.Length)] = item;
    }

    /// <summary>The oldest loan, if libzmq is done with its bytes, and the slot's sequence-lock value then.</summary>
    public bool TryTakeReturned(out T item, out ulong sequenceAtReturn)
    {
        item = default;
        sequenceAtReturn = 0;
        if (_taken == _lent)
            return false;
        int i = (int)(_taken % _items.Length);
        if (Volatile.Read(ref _entries[i].Returned) == 0)
            return false;
        item = _items[i];
        sequenceAtReturn = _entries[i].SequenceAtReturn;
        _taken++;
        return true;
    }

    /// <summary>Waits (at most <paramref name="timeout"/>) until libzmq has given every loan back; false if some are still out.</summary>
    public bool WaitAllReturned(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            while (TryTakeReturned(out _, out _))
            {
            }
            if (_taken == _lent)
                return true;
            if (DateTime.UtcNow > deadline)
                return false;
            Thread.Sleep(1);
        }
    }

    /// <summary>Frees the entries, unless loans are still out (libzmq may still write one: they are left allocated).</summary>
    public void Dispose()
    {
        if (_taken == _lent)
            NativeMemory.Free(_entries);
    }
}
