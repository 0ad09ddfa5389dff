using StdDaq.Shared.Memory;
using StdDaq.Shared.Metrics;
using StdDaq.Shared.Streams;

namespace StdDaq.StreamRecv;

/// <summary>
/// The part-0 receiver's other job (StdStreamRecv --part 0/N): the images whose part 0 it wrote wait
/// here, in increasing id order, until every part is in their slot; then it seals the slot
/// (<see cref="SlotParts.TrySeal"/>) and publishes the ImageMetadata. An image whose parts do not all
/// come within the part timeout, or with a part that failed, or whose slot another image took, is
/// never published: it is given up (<see cref="SlotParts.Abandon"/>) and counted
/// (images_incomplete, parts_missing, and by part in <see cref="MissingByPart"/>). Images behind a
/// waiting one wait too, so ids are published in increasing order.
/// </summary>
internal sealed class PartPublisher(ShmRing ring, ImagePart part, TimeSpan timeout, TimeProvider time,
    CounterSet<StreamRecvCounter> counters, PartPublisher.PublishImage publish)
{
    /// <summary>Publishes the metadata of an image whose slot was just sealed.</summary>
    public delegate void PublishImage(in ImageMetadata meta);

    private readonly record struct Waiting(ImageMetadata Meta, SlotHeader Source, ulong Key, long Since);

    private readonly Queue<Waiting> _waiting = new();
    /// <summary>
    /// At most a ring of images wait (ids increase, so the next would take the oldest's slot; its
    /// parts' claims give that one up anyway).
    /// </summary>
    private readonly int _most = ring.SlotCount;

    /// <summary>Per part: parts that images given up lacked (or that failed).</summary>
    public long[] MissingByPart { get; } = new long[part.Count];

    /// <summary>Whether images wait for parts (the receive loop then looks again within a millisecond).</summary>
    public bool Pending => _waiting.Count > 0;

    /// <summary>Adds an image whose part 0 is in its slot; the oldest is given up if a ring of images waits.</summary>
    public void Add(in ImageMetadata meta, in SlotHeader source, ulong key)
    {
        if (_waiting.Count >= _most)
            GiveUp(_waiting.Dequeue(), null);
        _waiting.Enqueue(new Waiting(meta, source, key, time.GetTimestamp()));
    }

    /// <summary>Publishes the waiting images that are whole, in order; gives up those that cannot be or waited too long.</summary>
    public void Advance()
    {
        while (_waiting.TryPeek(out var w))
        {
            int slot = ring.SlotOf(w.Meta.Id);
            var result = SlotParts.TrySeal(ring, slot, w.Meta.Id, w.Key, part.AllBits, w.Source, out ulong missing);
            if (result == SlotParts.SealResult.Sealed)
            {
                _waiting.Dequeue();
                publish(w.Meta);
                continue;
            }
            if (result == SlotParts.SealResult.Waiting && time.GetElapsedTime(w.Since) < timeout)
                return;
            _waiting.Dequeue();
            // Timed out: the parts not in (as the slot says when given up); failed: those that
            // failed; gone: another image took the slot, which of this one's parts came is unknown.
            GiveUp(w, result switch
            {
                SlotParts.SealResult.Failed => missing,
                SlotParts.SealResult.Gone => 0,
                _ => null,
            });
        }
    }

    /// <summary>Gives every waiting image up (the receiver stops).</summary>
    public void Clear()
    {
        while (_waiting.TryDequeue(out var w))
            GiveUp(w, null);
    }

    /// <summary>Abandons the image's slot and counts it; <paramref name="missing"/> null: the parts the slot did not have.</summary>
    private void GiveUp(in Waiting w, ulong? missing)
    {
        ulong? notDone = SlotParts.Abandon(ring, ring.SlotOf(w.Meta.Id), w.Meta.Id, part.AllBits);
        ulong parts = missing ?? notDone ?? 0;
        counters[StreamRecvCounter.ImagesIncomplete]++;
        for (int i = 0; i < MissingByPart.Length; i++)
            if ((parts & (1UL << i)) != 0)
            {
                MissingByPart[i]++;
                counters[StreamRecvCounter.PartsMissing]++;
            }
    }

    /// <summary>"parts_missing_by_part=0:0,1:5,..." for the stats line.</summary>
    public string Format() => "parts_missing_by_part=" + string.Join(',', MissingByPart.Select((n, i) => $"{i}:{n}"));
}
