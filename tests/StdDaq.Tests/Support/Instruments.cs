using System.Diagnostics.Metrics;

namespace StdDaq.Tests.Support;

/// <summary>Reads the observable instruments of a meter once, as any metrics exporter would.</summary>
public static class Instruments
{
    /// <summary>Instrument name → (value, tags as "k=v,…") of the measurements whose tags <paramref name="match"/> accepts.</summary>
    public static Dictionary<string, (long Value, string Tags)> Read(string meter,
        Func<IReadOnlyList<KeyValuePair<string, object?>>, bool>? match = null)
    {
        var seen = new Dictionary<string, (long, string)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == meter)
                l.EnableMeasurementEvents(instrument);
        };
        void Record(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var list = tags.ToArray();
            if (match?.Invoke(list) ?? true)
                seen[instrument.Name] = (value, string.Join(",", list.Select(t => $"{t.Key}={t.Value}")));
        }
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<int>((i, v, t, _) => Record(i, v, t));
        listener.Start();
        listener.RecordObservableInstruments();
        return seen;
    }
}
