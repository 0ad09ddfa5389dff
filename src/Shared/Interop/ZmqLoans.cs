using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// Slot bytes lent to libzmq without a copy (<see cref="ZmqOutMessage.InitLent"/>): each loan has a
/// flag in native memory that libzmq's free callback sets, on its I/O thread, once it has written the
/// bytes to the socket or dropped the message, and an item of the lender's (which slot, which
/// version) that comes back (<see cref="TryTakeReturned"/>) in lending order once its flag is set
/// (a long, set to 1).
/// </summary>
/// <remarks>
/// Hand-written because it is the sender's hot path: it saves the copy of every image into a libzmq
/// buffer (and that buffer's allocation, whose fresh pages fault and are zeroed by the kernel). The
/// lent bytes must stay mapped until every loan is back: <see cref="WaitAllReturned"/> before the
/// ring is unmapped; flags still out at <see cref="Dispose"/> are left allocated (libzmq may still
/// write one).
/// </remarks>
public sealed unsafe class ZmqLoans<T> : IDisposable where T : struct
{
    private readonly long* _flags;
    private readonly T[] _items;
    private long _lent;
    private long _taken;

    /// <summary>At most <paramref name="capacity"/> loans out at once.</summary>
    public ZmqLoans(int capacity)
    {
        _items = new T[capacity];
        _flags = (long*)NativeMemory.AllocZeroed((nuint)capacity, sizeof(long));
    }

    /// <summary>Loans not taken back yet.</summary>
    public int Outstanding => (int)(_lent - _taken);

    /// <summary>Whether another loan fits.</summary>
    public bool CanLend => Outstanding < _items.Length;

    /// <summary>Records a loan of <paramref name="item"/>: the hint for zmq_msg_init_data.</summary>
    internal void* Lend(in T item)
    {
        if (!CanLend)
            throw new InvalidOperationException("too many loans out");
        int i = (int)(_lent++ % _items.Length);
        _items[i] = item;
        Volatile.Write(ref _flags[i], 0);
        return &_flags[i];
    }

    /// <summary>Replaces the item of the latest loan (what became of it, e.g. not sent after all).</summary>
    public void ReplaceLatest(in T item)
    {
        if (_lent == _taken)
            throw new InvalidOperationException("no loan out");
        _items[(int)((_lent - 1) % _items.Length)] = item;
    }

    /// <summary>The oldest loan, if libzmq is done with its bytes.</summary>
    public bool TryTakeReturned(out T item)
    {
        item = default;
        if (_taken == _lent)
            return false;
        int i = (int)(_taken % _items.Length);
        if (Volatile.Read(ref _flags[i]) == 0)
            return false;
        item = _items[i];
        _taken++;
        return true;
    }

    /// <summary>Waits (at most <paramref name="timeout"/>) until libzmq has given every loan back; false if some are still out.</summary>
    public bool WaitAllReturned(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            while (TryTakeReturned(out _))
            {
            }
            if (_taken == _lent)
                return true;
            if (DateTime.UtcNow > deadline)
                return false;
            Thread.Sleep(1);
        }
    }

    /// <summary>Frees the flags, unless loans are still out (libzmq may still set one: they are left allocated).</summary>
    public void Dispose()
    {
        if (_taken == _lent)
            NativeMemory.Free(_flags);
    }
}
