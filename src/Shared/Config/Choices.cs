using Microsoft.Extensions.Logging;

namespace StdDaq.Shared.Config;

/// <summary>Where a JUNGFRAU image's id comes from (jungfrau_image_id).</summary>
public enum JungfrauImageIdSource
{
    /// <summary>The packet's bunch id; its frame number when the bunch id is 0.</summary>
    BunchId,
    /// <summary>The packet's frame number.</summary>
    FrameNumber,
}

/// <summary>How the writer stores an image's chunk (writer_compression, a request's compression).</summary>
public enum ImageCompression
{
    /// <summary>The pixels as they are in the ImageBuffer slot.</summary>
    None,
    /// <summary>Bitshuffle-LZ4, HDF5 filter 32008.</summary>
    BitshuffleLz4,
}

/// <summary>What the agent does with a request that comes while another one writes (writer_busy_policy).</summary>
public enum WriterBusyPolicy
{
    /// <summary>It waits its turn, in order.</summary>
    Queue,
    /// <summary>It fails at once, naming the request that writes.</summary>
    Reject,
}

/// <summary>How a request whose file holds incomplete images ends (writer_incomplete_policy).</summary>
public enum WriterIncompletePolicy
{
    /// <summary>request_success, with the counts.</summary>
    Succeed,
    /// <summary>request_fail, with the same counts.</summary>
    Fail,
}

/// <summary>
/// The spelling of each value of a closed set in configs, requests and messages, one table per
/// set: parsed once where the text comes in, named again where text goes out.
/// </summary>
public sealed class Choice<T> where T : struct, Enum
{
    private readonly (string Name, T Value)[] _table;

    /// <summary>The table: each value's spelling, in the order <see cref="Names"/> lists them.</summary>
    internal Choice(params (string Name, T Value)[] table) => _table = table;

    /// <summary>The names, in order, for messages: "none, bitshuffle-lz4".</summary>
    public string Names => string.Join(", ", _table.Select(e => e.Name));

    /// <summary>The value spelled <paramref name="name"/> (exactly, or ignoring case when <paramref name="ignoreCase"/>).</summary>
    public bool TryParse(string name, out T value, bool ignoreCase = false)
    {
        foreach (var (n, v) in _table)
            if (string.Equals(n, name, ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
            {
                value = v;
                return true;
            }
        value = default;
        return false;
    }

    /// <summary>The spelling of <paramref name="value"/>.</summary>
    public string Name(T value)
    {
        foreach (var (n, v) in _table)
            if (EqualityComparer<T>.Default.Equals(v, value))
                return n;
        throw new ArgumentOutOfRangeException(nameof(value), value, $"no name for {typeof(T).Name}.{value}");
    }
}

/// <summary>The closed sets of the config and the protocols, with their spellings.</summary>
public static class Choices
{
    /// <summary>log_level: trace, debug, info, warning, error, critical (the config parses it ignoring case).</summary>
    public static readonly Choice<LogLevel> LogLevel = new(("trace", Microsoft.Extensions.Logging.LogLevel.Trace),
        ("debug", Microsoft.Extensions.Logging.LogLevel.Debug), ("info", Microsoft.Extensions.Logging.LogLevel.Information),
        ("warning", Microsoft.Extensions.Logging.LogLevel.Warning), ("error", Microsoft.Extensions.Logging.LogLevel.Error),
        ("critical", Microsoft.Extensions.Logging.LogLevel.Critical));

    /// <summary>jungfrau_image_id: bunch_id, frame_number.</summary>
    public static readonly Choice<JungfrauImageIdSource> JungfrauImageId =
        new(("bunch_id", JungfrauImageIdSource.BunchId), ("frame_number", JungfrauImageIdSource.FrameNumber));

    /// <summary>writer_compression and a request's or StoreStream message's compression: none, bitshuffle-lz4.</summary>
    public static readonly Choice<ImageCompression> Compression =
        new(("none", ImageCompression.None), ("bitshuffle-lz4", ImageCompression.BitshuffleLz4));

    /// <summary>writer_busy_policy: queue, reject.</summary>
    public static readonly Choice<WriterBusyPolicy> BusyPolicy = new(("queue", WriterBusyPolicy.Queue), ("reject", WriterBusyPolicy.Reject));

    /// <summary>writer_incomplete_policy: succeed, fail.</summary>
    public static readonly Choice<WriterIncompletePolicy> IncompletePolicy =
        new(("succeed", WriterIncompletePolicy.Succeed), ("fail", WriterIncompletePolicy.Fail));
}
