using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;

namespace StdDaq.Shared.Memory;

/// <summary>
/// How N part receivers (StdStreamRecv --part i/N, each its own process) write the byte ranges of one
/// image into the same ImageBuffer slot, and how the publisher among them (part 0) seals the slot
/// once every part is in: the slot header's <see cref="SlotPartsState"/>, changed only under its
/// per-slot lock (a few stores; the image bytes are written outside it).
/// </summary>
/// <remarks>
/// The sequence lock keeps its meaning for readers: odd from the first part's claim until the seal.
/// A part claims the slot for its image (<see cref="Claim"/>): the first claim of an image makes the
/// slot odd (BeginWrite: even → odd, or odd → odd + 2 over an unfinished image) and records the
/// image's id and key (a hash of its ImageMetadata and source slot header, so parts of two different
/// source images with one id never make one image); the others find it open and check the key. Each
/// part then writes its range and reports it done or failed (<see cref="Complete"/>). The publisher
/// seals (<see cref="TrySeal"/>: the source slot header in, even sequence) only when every part is
/// done, under the lock, so a claim of the next image in the slot either comes before the seal (the
/// slot then belongs to that image and the seal fails) or after it (and opens the slot anew): no
/// image is ever sealed with a byte of another. An image the publisher gives up
/// (<see cref="Abandon"/>) leaves the slot odd, id 0 and status empty, until the next claim.
/// The lock holds a pid: a holder that died (killed within its few stores) is taken over.
/// </remarks>
public static class SlotParts
{
    /// <summary>What a part's claim found.</summary>
    public enum ClaimResult
    {
        /// <summary>The slot is open for this image: write the range, then <see cref="Complete"/>.</summary>
        Open,
        /// <summary>The image was already sealed or given up: the part comes too late, write nothing.</summary>
        Late,
        /// <summary>The slot is open for this id but another source image (other metadata or slot header): write nothing.</summary>
        Mismatch,
    }

    /// <summary>What the publisher's seal found.</summary>
    public enum SealResult
    {
        /// <summary>Every part was in: the slot now holds the image (even sequence).</summary>
        Sealed,
        /// <summary>Parts still to come.</summary>
        Waiting,
        /// <summary>A part failed: the image can never be whole.</summary>
        Failed,
        /// <summary>The slot is no longer this image's (another image claimed it, or another source image with this id).</summary>
        Gone,
    }

    /// <summary>Claims slot <paramref name="slot"/> for image <paramref name="id"/> (of key <paramref name="key"/>) as <paramref name="part"/>.</summary>
    public static ClaimResult Claim(ShmRing ring, int slot, ulong id, ulong key, ImagePart part)
    {
        ref SlotHeader h = ref ring.Slot(slot);
        ref SlotPartsState p = ref h.Parts;
        Enter(ref p.Lock);
        try
        {
            if (p.ImageId == id && p.Phase != SlotPartsPhase.None)
            {
                if (p.Phase != SlotPartsPhase.Open)
                    return ClaimResult.Late;
                if (p.Key != key)
                {
                    p.Failed |= part.Bit;
                    return ClaimResult.Mismatch;
                }
                return ClaimResult.Open;
            }
            // Another image (or none) had the slot: this one takes it. An older image's unfinished
            // parts are lost with it (the publisher finds the slot gone and counts them).
            ring.BeginWrite(slot);
            h.ImageId = 0;
            h.Status = SlotStatus.Empty;
            p.ImageId = id;
            p.Key = key;
            p.Done = 0;
            p.Failed = 0;
            p.Phase = SlotPartsPhase.Open;
            return ClaimResult.Open;
        }
        finally
        {
            Exit(ref p.Lock);
        }
    }

    /// <summary>
    /// Reports <paramref name="part"/> of image <paramref name="id"/> written (<paramref name="ok"/>)
    /// or unusable. False if the slot is no longer open for that image (claimed by another meanwhile,
    /// or given up): the part is lost.
    /// </summary>
    public static bool Complete(ShmRing ring, int slot, ulong id, ImagePart part, bool ok)
    {
        ref SlotPartsState p = ref ring.Slot(slot).Parts;
        Enter(ref p.Lock);
        try
        {
            if (p.ImageId != id || p.Phase != SlotPartsPhase.Open)
                return false;
            if (ok)
                p.Done |= part.Bit;
            else
                p.Failed |= part.Bit;
            return true;
        }
        finally
        {
            Exit(ref p.Lock);
        }
    }

    /// <summary>
    /// Seals the slot for image <paramref name="id"/> if every part of <paramref name="all"/> is done:
    /// the slot header becomes <paramref name="source"/> (sequence aside) and the sequence even.
    /// <paramref name="missing"/>: the parts not done (after a failure: the failed ones).
    /// </summary>
    public static SealResult TrySeal(ShmRing ring, int slot, ulong id, ulong key, ulong all, in SlotHeader source, out ulong missing)
    {
        ref SlotHeader h = ref ring.Slot(slot);
        ref SlotPartsState p = ref h.Parts;
        Enter(ref p.Lock);
        try
        {
            missing = all & ~p.Done;
            if (p.ImageId != id || p.Phase != SlotPartsPhase.Open || p.Key != key)
                return SealResult.Gone;
            if ((p.Failed & all) != 0)
            {
                missing = p.Failed & all;
                return SealResult.Failed;
            }
            if (missing != 0)
                return SealResult.Waiting;
            var parts = p;
            ulong sequence = h.Sequence;
            h = source;
            h.Sequence = sequence;
            h.Reserved = default;
            h.ReservedTail = default;
            parts.Phase = SlotPartsPhase.Sealed;
            h.Parts = parts;
            ring.EndWrite(slot);
            return SealResult.Sealed;
        }
        finally
        {
            Exit(ref p.Lock);
        }
    }

    /// <summary>
    /// Gives image <paramref name="id"/> up if the slot is still open for it: it stays odd, id 0,
    /// status empty. Returns the parts of <paramref name="all"/> that were not done, or null if the
    /// slot is not open for that image (nothing changed then).
    /// </summary>
    public static ulong? Abandon(ShmRing ring, int slot, ulong id, ulong all)
    {
        ref SlotHeader h = ref ring.Slot(slot);
        ref SlotPartsState p = ref h.Parts;
        Enter(ref p.Lock);
        try
        {
            if (p.ImageId != id || p.Phase != SlotPartsPhase.Open)
                return null;
            p.Phase = SlotPartsPhase.Abandoned;
            h.ImageId = 0;
            h.Status = SlotStatus.Empty;
            return all & ~p.Done;
        }
        finally
        {
            Exit(ref p.Lock);
        }
    }

    /// <summary>Longest a holder may keep a slot's lock before it is taken over: the section is a few stores.</summary>
    private static readonly TimeSpan LongestHold = TimeSpan.FromSeconds(1);

    /// <summary>Spins for the slot's lock; takes it over from a holder that died, or that has held it for <see cref="LongestHold"/>.</summary>
    private static void Enter(ref int lockWord)
    {
        int me = Environment.ProcessId;
        var spin = new SpinWait();
        long since = 0;
        while (Interlocked.CompareExchange(ref lockWord, me, 0) != 0)
        {
            spin.SpinOnce();
            // A holder seen for this long was preempted, died (killed inside its few stores), or the
            // word is not a pid at all (a segment another program version wrote).
            if (spin.Count % 2048 == 2047)
            {
                if (since == 0)
                    since = System.Diagnostics.Stopwatch.GetTimestamp();
                int holder = Volatile.Read(ref lockWord);
                bool stale = !Libc.ProcessAlive(holder) || System.Diagnostics.Stopwatch.GetElapsedTime(since) > LongestHold;
                if (holder != 0 && stale && Interlocked.CompareExchange(ref lockWord, me, holder) == holder)
                    return;
            }
        }
    }

    private static void Exit(ref int lockWord) => Volatile.Write(ref lockWord, 0);
}
