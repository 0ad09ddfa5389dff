using System.Globalization;

namespace StdDaq.Shared.Streams;

/// <summary>
/// A share of a detector's images, <c>i/N</c>: the images whose id % N == i (<c>--images i/N</c>).
/// N stream senders with shares 0/N .. N-1/N together send every image once; <see cref="All"/> (0/1)
/// is every image.
/// </summary>
public readonly record struct ImageShare
{
    /// <summary>The most shares a detector's images may be split into.</summary>
    public const int MaxCount = 1024;

    /// <summary>Every image: 0/1.</summary>
    public static ImageShare All { get; } = new(0, 1);

    /// <summary>i: the remainder of this share's ids modulo <see cref="Count"/>.</summary>
    public int Index { get; }
    /// <summary>N: how many shares the images are split into.</summary>
    public int Count { get; }

    /// <summary>Share <paramref name="index"/> of <paramref name="count"/>; 0 &lt;= index &lt; count &lt;= <see cref="MaxCount"/>.</summary>
    public ImageShare(int index, int count)
    {
        if (count < 1 || count > MaxCount || index < 0 || index >= count)
            throw new ArgumentOutOfRangeException(nameof(index), $"image share {index}/{count}: needs 0 <= i < N <= {MaxCount}");
        Index = index;
        Count = count;
    }

    /// <summary>Whether image <paramref name="id"/> is in this share.</summary>
    public bool Includes(ulong id) => id % (ulong)Count == (ulong)Index;

    /// <summary>The ids of this share strictly between <paramref name="after"/> and <paramref name="before"/> (0 if none lie between).</summary>
    public ulong CountBetween(ulong after, ulong before) => before > after + 1 ? UpTo(before - 1) - UpTo(after) : 0;

    /// <summary>The ids of this share in 0..<paramref name="last"/>.</summary>
    private ulong UpTo(ulong last) => last >= (ulong)Index ? (last - (ulong)Index) / (ulong)Count + 1 : 0;

    /// <summary>"i/N".</summary>
    public override string ToString() => $"{Index}/{Count}";

    /// <summary>Parses "i/N" (0 &lt;= i &lt; N &lt;= <see cref="MaxCount"/>).</summary>
    public static bool TryParse(string text, out ImageShare share)
    {
        share = All;
        int slash = text.IndexOf('/');
        if (slash <= 0
            || !int.TryParse(text.AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            || n < 1 || n > MaxCount || i >= n)
            return false;
        share = new ImageShare(i, n);
        return true;
    }
}
