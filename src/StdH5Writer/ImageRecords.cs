namespace StdDaq.Writer;

/// <summary>
/// image_id, status, detector frame index and receive time of the images handled since the last
/// flush, indices [Start, End), kept in memory so the file gets them in one write per dataset at
/// the flush instead of one per image.
/// </summary>
internal sealed class ImageRecords
{
    private ulong[] _ids = new ulong[256];
    private ushort[] _statuses = new ushort[256];
    private ulong[] _frameIndices = new ulong[256];
    private long[] _receiveTimes = new long[256];

    /// <summary>The first index not yet in the file (n at the last flush).</summary>
    public long Start { get; private set; }

    /// <summary>The highest index handled + 1.</summary>
    public long End { get; private set; }

    public ReadOnlySpan<ulong> Ids => _ids.AsSpan(0, (int)(End - Start));

    public ReadOnlySpan<ushort> Statuses => _statuses.AsSpan(0, (int)(End - Start));

    public ReadOnlySpan<ulong> FrameIndices => _frameIndices.AsSpan(0, (int)(End - Start));

    public ReadOnlySpan<long> ReceiveTimes => _receiveTimes.AsSpan(0, (int)(End - Start));

    /// <summary>
    /// Adds image <paramref name="index"/> (≥ End); indices skipped on the way get id 0,
    /// <paramref name="gapStatus"/>, frame index 0 and receive time 0.
    /// </summary>
    public void Add(long index, ulong imageId, ushort status, ushort gapStatus, ulong frameIndex = 0, long receiveTimeNs = 0)
    {
        long need = index + 1 - Start;
        if (need > _ids.Length)
        {
            int size = (int)Math.Min(Math.Max(need, 2L * _ids.Length), Array.MaxLength);
            Array.Resize(ref _ids, size);
            Array.Resize(ref _statuses, size);
            Array.Resize(ref _frameIndices, size);
            Array.Resize(ref _receiveTimes, size);
        }
        int from = (int)(End - Start), gap = (int)(index - End);
        _ids.AsSpan(from, gap).Clear();
        _statuses.AsSpan(from, gap).Fill(gapStatus);
        _frameIndices.AsSpan(from, gap).Clear();
        _receiveTimes.AsSpan(from, gap).Clear();
        _ids[index - Start] = imageId;
        _statuses[index - Start] = status;
        _frameIndices[index - Start] = frameIndex;
        _receiveTimes[index - Start] = receiveTimeNs;
        End = index + 1;
    }

    /// <summary>
    /// Makes index <paramref name="index"/>, handled since the last flush, an image not written:
    /// <paramref name="status"/>, frame index and receive time 0 (the image id stays).
    /// </summary>
    public void SetNotWritten(long index, ushort status)
    {
        _statuses[index - Start] = status;
        _frameIndices[index - Start] = 0;
        _receiveTimes[index - Start] = 0;
    }

    /// <summary>The records are in the file: start after them.</summary>
    public void Clear() => Start = End;
}
