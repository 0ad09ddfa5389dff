namespace StdDaq.Shared.Metrics;

/// <summary>
/// The rhythm of a service's stats line: due once per period on the service's clock, checked from
/// its own loop (no timer thread touches the counters' writer), giving the counters' change since
/// the last line and the seconds it covers.
/// </summary>
public sealed class StatsPeriod<TName> where TName : struct, Enum
{
    private readonly CounterSet<TName> _counters;
    private readonly TimeProvider _time;
    private readonly long _periodTicks;
    private long _lastTime;
    private CounterSnapshot<TName> _last;

    /// <param name="counters">The counters the lines report, read now and at each line.</param>
    /// <param name="time">The clock <c>now</c> of <see cref="TryTake"/> comes from; the first period starts now.</param>
    /// <param name="periodSeconds">stats_collection_period.</param>
    public StatsPeriod(CounterSet<TName> counters, TimeProvider time, double periodSeconds)
    {
        _counters = counters;
        _time = time;
        _periodTicks = (long)(periodSeconds * time.TimestampFrequency);
        _lastTime = time.GetTimestamp();
        _last = counters.Read();
    }

    /// <summary>
    /// When a period has passed at <paramref name="now"/> (a timestamp of the clock), the change of
    /// every counter since the last line and the seconds it covers; false until then.
    /// </summary>
    public bool TryTake(long now, out CounterSnapshot<TName> change, out double seconds)
    {
        if (now - _lastTime < _periodTicks)
        {
            change = default;
            seconds = 0;
            return false;
        }
        var snapshot = _counters.Read();
        change = snapshot - _last;
        seconds = (now - _lastTime) / (double)_time.TimestampFrequency;
        _last = snapshot;
        _lastTime = now;
        return true;
    }
}
