using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace StdDaq.Shared.Metrics;

/// <summary>
/// A service's counters, each named once: by a member of the enum <typeparamref name="TName"/>
/// (values 0..n-1). The member's snake_case spelling is its key on the stats line and, prefixed, its
/// System.Diagnostics.Metrics instrument (an observable counter of <see cref="Meter"/>), so the
/// stats line and any metrics listener or exporter read the same cells.
/// </summary>
/// <remarks>
/// Hand-rolled cells rather than <see cref="Counter{T}.Add(T)"/> on the hot paths: one thread
/// writes each cell with a plain add (a receiver counts every packet), Add would pay for tags and
/// listeners per packet; readers see each cell whole (64-bit reads), a few increments stale.
/// </remarks>
public sealed class CounterSet<TName> : IDisposable where TName : struct, Enum
{
    private static readonly TName[] s_members = Members();
    private static readonly string[] s_keys = s_members.Select(m => SnakeCase(m.ToString())).ToArray();
    private readonly long[] _cells = new long[s_members.Length];
    private readonly string _prefix;
    // Replaced whole (never changed in place) by SetTag, read by every observation.
    private KeyValuePair<string, object?>[] _tags;
    private readonly List<(string Key, Func<long> Read)> _gauges = [];

    /// <summary>The meter whose observable counters read these cells (one per member), and the gauges.</summary>
    public Meter Meter { get; }

    /// <summary>The tags of every measurement now (detector, module, service, ...).</summary>
    public IReadOnlyList<KeyValuePair<string, object?>> Tags => Volatile.Read(ref _tags);

    /// <param name="meterName">e.g. <c>StdDaq.Receiver</c>; instruments are <c>std_daq.&lt;prefix&gt;.&lt;key&gt;</c>.</param>
    /// <param name="prefix">The instruments' middle part, e.g. <c>receiver</c>.</param>
    /// <param name="tags">Tags of every measurement (detector, module).</param>
    public CounterSet(string meterName, string prefix, IEnumerable<KeyValuePair<string, object?>>? tags = null)
    {
        _tags = (tags ?? []).ToArray();
        _prefix = prefix;
        Meter = new Meter(meterName);
        for (int i = 0; i < s_members.Length; i++)
        {
            int cell = i;
            // A description is the exposition's HELP text, which Prometheus' lint requires.
            Meter.CreateObservableCounter($"std_daq.{prefix}.{s_keys[i]}", () => new Measurement<long>(Volatile.Read(ref _cells[cell]), Volatile.Read(ref _tags)),
                description: $"{prefix}: {s_keys[i].Replace('_', ' ')} (stats line key {s_keys[i]})");
        }
    }

    /// <summary>
    /// Sets tag <paramref name="key"/> of every measurement from now on (replacing one of that key),
    /// e.g. the service name once the program knows it.
    /// </summary>
    public void SetTag(string key, object? value) =>
        Volatile.Write(ref _tags, [.. _tags.Where(t => t.Key != key), new(key, value)]);

    /// <summary>
    /// A gauge <c>std_daq.&lt;prefix&gt;.&lt;key&gt;</c> with this set's tags, whose value
    /// <paramref name="read"/> gives when a listener or exporter observes it (never on the hot path),
    /// also in <see cref="WriteStats"/>. <paramref name="read"/> must be safe to call from any thread.
    /// </summary>
    public void AddGauge(string key, Func<long> read, string description)
    {
        lock (_gauges)
            _gauges.Add((key, read));
        Meter.CreateObservableGauge($"std_daq.{_prefix}.{key}", () => new Measurement<long>(read(), Volatile.Read(ref _tags)), description: description);
    }

    /// <summary>
    /// Writes <c>"counters": {key: value, ...}, "gauges": {key: value, ...}</c> (properties of the
    /// object <paramref name="writer"/> is in): every counter now and every gauge read now.
    /// </summary>
    public void WriteStats(Utf8JsonWriter writer)
    {
        var now = Read();
        writer.WriteStartObject("counters");
        foreach (var name in s_members)
            writer.WriteNumber(Key(name), now[name]);
        writer.WriteEndObject();
        writer.WriteStartObject("gauges");
        lock (_gauges)
            foreach (var (key, read) in _gauges)
                writer.WriteNumber(key, read());
        writer.WriteEndObject();
    }

    /// <summary>The cell of <paramref name="name"/>, to add to (from the one thread that writes it).</summary>
    public ref long this[TName name]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref _cells[Unsafe.As<TName, int>(ref name)];
    }

    /// <summary>Every cell now.</summary>
    public CounterSnapshot<TName> Read()
    {
        var values = new long[_cells.Length];
        for (int i = 0; i < values.Length; i++)
            values[i] = Volatile.Read(ref _cells[i]);
        return new CounterSnapshot<TName>(values);
    }

    /// <summary>The stats-line key of <paramref name="name"/> (snake_case of the member).</summary>
    public static string Key(TName name) => s_keys[Unsafe.As<TName, int>(ref name)];

    /// <summary>Disposes <see cref="Meter"/>: listeners stop seeing the instruments. The cells stay readable.</summary>
    public void Dispose() => Meter.Dispose();

    private static TName[] Members()
    {
        if (Unsafe.SizeOf<TName>() != sizeof(int))
            throw new InvalidOperationException($"{typeof(TName).Name}: counter names must be an int enum");
        var members = Enum.GetValues<TName>();
        for (int i = 0; i < members.Length; i++)
            if (Unsafe.As<TName, int>(ref members[i]) != i)
                throw new InvalidOperationException($"{typeof(TName).Name}: counter names must be numbered 0..n-1 in order");
        return members;
    }

    private static string SnakeCase(string pascal)
    {
        var sb = new StringBuilder(pascal.Length + 8);
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            if (char.IsUpper(c) && i > 0)
                sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}

/// <summary>The values of a <see cref="CounterSet{TName}"/> at one moment, or their change over a period.</summary>
public readonly struct CounterSnapshot<TName> : IEquatable<CounterSnapshot<TName>> where TName : struct, Enum
{
    private readonly long[]? _values;

    internal CounterSnapshot(long[] values) => _values = values;

    /// <summary>The counter's value; 0 in a default snapshot.</summary>
    public long this[TName name] => _values is { } v ? v[Unsafe.As<TName, int>(ref name)] : 0;

    /// <summary>This snapshot with <paramref name="name"/> set to <paramref name="value"/> (to compare the others).</summary>
    public CounterSnapshot<TName> With(TName name, long value)
    {
        var values = Combine(this, default, +1)._values!;
        values[Unsafe.As<TName, int>(ref name)] = value;
        return new CounterSnapshot<TName>(values);
    }

    /// <summary>Every counter has the same value (a default snapshot equals one of zeros).</summary>
    public bool Equals(CounterSnapshot<TName> other)
    {
        foreach (var name in Enum.GetValues<TName>())
            if (this[name] != other[name])
                return false;
        return true;
    }

    /// <summary>A snapshot of the same counter names with the same values.</summary>
    public override bool Equals(object? obj) => obj is CounterSnapshot<TName> other && Equals(other);

    /// <summary>Of the values, so that equal snapshots hash alike.</summary>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var name in Enum.GetValues<TName>())
            hash.Add(this[name]);
        return hash.ToHashCode();
    }

    /// <summary>The stats-line form of every counter (<see cref="Format"/>).</summary>
    public override string ToString() => Format();

    /// <summary>Every counter has the same value (<see cref="Equals(CounterSnapshot{TName})"/>).</summary>
    public static bool operator ==(CounterSnapshot<TName> a, CounterSnapshot<TName> b) => a.Equals(b);

    /// <summary>Some counter differs.</summary>
    public static bool operator !=(CounterSnapshot<TName> a, CounterSnapshot<TName> b) => !a.Equals(b);

    /// <summary>Each counter's change from <paramref name="b"/> to <paramref name="a"/>: a period's counts from two reads.</summary>
    public static CounterSnapshot<TName> operator -(CounterSnapshot<TName> a, CounterSnapshot<TName> b) => Combine(a, b, -1);

    /// <summary>Each counter's sum, e.g. over several services' or periods' snapshots.</summary>
    public static CounterSnapshot<TName> operator +(CounterSnapshot<TName> a, CounterSnapshot<TName> b) => Combine(a, b, +1);

    private static CounterSnapshot<TName> Combine(CounterSnapshot<TName> a, CounterSnapshot<TName> b, int sign)
    {
        int n = Enum.GetValues<TName>().Length;
        var values = new long[n];
        for (int i = 0; i < n; i++)
            values[i] = (a._values?[i] ?? 0) + sign * (b._values?[i] ?? 0);
        return new CounterSnapshot<TName>(values);
    }

    /// <summary>
    /// <c>key=value</c> for every counter in declaration order, separated by spaces; those for which
    /// <paramref name="onlyIfNonZero"/> is true are left out while they are 0.
    /// </summary>
    public string Format(Func<TName, bool>? onlyIfNonZero = null)
    {
        var sb = new StringBuilder();
        foreach (var name in Enum.GetValues<TName>())
        {
            long v = this[name];
            if (v == 0 && onlyIfNonZero?.Invoke(name) == true)
                continue;
            if (sb.Length > 0)
                sb.Append(' ');
            sb.Append(CounterSet<TName>.Key(name)).Append('=').Append(v);
        }
        return sb.ToString();
    }
}
