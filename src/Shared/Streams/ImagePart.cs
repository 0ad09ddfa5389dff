namespace StdDaq.Shared.Streams;

/// <summary>
/// A part of every image, <c>i/N</c> (<c>--part i/N</c>, std-daq's image_part): byte range i of N
/// contiguous ranges of the image's payload, so N stream senders, each with its own TCP stream, share
/// the bandwidth, and N part receivers on the replica write their ranges into the same slot.
/// </summary>
/// <remarks>
/// The payload (height × width × bytes per pixel, or user_2 bytes for bitshuffle-LZ4) is cut at 4 KiB
/// page boundaries (slot data is 4 KiB aligned, so every range starts on a page) into N ranges as
/// even as whole pages allow: with p = ceil(payload / 4096) pages, part i is pages
/// [⌊i·p/N⌋, ⌊(i+1)·p/N⌋), the last page ending with the payload. Ranges differ by at most one page;
/// a part is empty only when the payload has fewer pages than N (a small compressed image), and is
/// then still sent, so the receiver knows the part came.
/// </remarks>
public readonly record struct ImagePart
{
    /// <summary>The most parts: one bit each in a slot's part bitmaps (<see cref="Memory.SlotParts"/>).</summary>
    public const int MaxCount = 64;
    /// <summary>Ranges start on multiples of this.</summary>
    public const long Alignment = 4096;

    /// <summary>The whole image: 0/1.</summary>
    public static ImagePart Whole { get; } = new(0, 1);

    /// <summary>i: which range.</summary>
    public int Index { get; }
    /// <summary>N: how many ranges the image is cut into.</summary>
    public int Count { get; }

    /// <summary>Part <paramref name="index"/> of <paramref name="count"/>; 0 &lt;= index &lt; count &lt;= <see cref="MaxCount"/>.</summary>
    public ImagePart(int index, int count)
    {
        if (count < 1 || count > MaxCount || index < 0 || index >= count)
            throw new ArgumentOutOfRangeException(nameof(index), $"image part {index}/{count}: needs 0 <= i < N <= {MaxCount}");
        Index = index;
        Count = count;
    }

    /// <summary>All N parts' bits: the value a slot's done bitmap has once every part is in.</summary>
    public ulong AllBits => Count == 64 ? ulong.MaxValue : (1UL << Count) - 1;

    /// <summary>This part's bit in a slot's bitmaps.</summary>
    public ulong Bit => 1UL << Index;

    /// <summary>This part's byte range of a payload of <paramref name="payload"/> bytes: where it starts and how long it is.</summary>
    public (long Start, long Length) RangeOf(long payload)
    {
        long pages = (payload + Alignment - 1) / Alignment;
        long start = Math.Min(pages * Index / Count * Alignment, payload);
        long end = Math.Min(pages * (Index + 1) / Count * Alignment, payload);
        return (start, end - start);
    }

    /// <summary>"i/N".</summary>
    public override string ToString() => $"{Index}/{Count}";

    /// <summary>Parses "i/N" (0 &lt;= i &lt; N &lt;= <see cref="MaxCount"/>).</summary>
    public static bool TryParse(string text, out ImagePart part)
    {
        part = Whole;
        if (!ImageShare.TryParse(text, out var fraction) || fraction.Count > MaxCount)
            return false;
        part = new ImagePart(fraction.Index, fraction.Count);
        return true;
    }
}
