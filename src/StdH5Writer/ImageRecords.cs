namespace StdDaq.Writer;

/// <summary>
/// image_id and status of the images handled since the last flush, indices [Start, End), kept in
/// memory so the file gets them in one write per dataset at the flush instead of one per image.
/// </summary>
internal sealed class ImageRecords
{
    private ulong[] _ids = new ulong[256];
    private ushort[] _statuses = new ushort[256];

    /// <summary>The first index not yet in the file (n at the last flush).</summary>
    public long Start { get; private set; }

    /// <summary>The highest index handled + 1.</summary>
    public long End { get; private set; }

    public ReadOnlySpan<ulong> Ids => _ids.AsSpan(0, (int)(End - Start));

    public ReadOnlySpan<ushort> Statuses => _statuses.AsSpan(0, (int)(End - Start));

    /// <summary>Adds image <paramref name="index"/> (≥ End); indices skipped on the way get id 0 and <paramref name="gapStatus"/>.</summary>
    public void Add(long index, ulong imageId, ushort status, ushort gapStatus)
    {
        long need = index + 1 - Start;
        if (need > _ids.Length)
        {
            int size = (int)Math.Min(Math.Max(need, 2L * _ids.Length), Array.MaxLength);
            Array.Resize(ref _ids, size);
            Array.Resize(ref _statuses, size);
        }
        _ids.AsSpan((int)(End - Start), (int)(index - End)).Clear();
        _statuses.AsSpan((int)(End - Start), (int)(index - End)).Fill(gapStatus);
        _ids[index - Start] = imageId;
        _statuses[index - Start] = status;
        End = index + 1;
    }

    /// <summary>Changes the status of index <paramref name="index"/>, handled since the last flush.</summary>
    public void SetStatus(long index, ushort status) => _statuses[index - Start] = status;

    /// <summary>The records are in the file: start after them.</summary>
    public void Clear() => Start = End;
}
