namespace StdDaq.Shared.Hosting;

/// <summary>
/// Waiting at start for what a peer makes (a ring, an endpoint): a deadline on a clock, the line
/// that says what is awaited (said once, not at every check), and the pause between checks. What
/// is awaited has no event to wait on (a name appearing in /dev/shm or /tmp), hence checks.
/// </summary>
public sealed class PeerWait
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(50);
    private readonly Action<string>? _say;
    private readonly CancellationToken _ct;
    private readonly TimeProvider _time;
    private readonly long _start;

    /// <param name="timeout">How long to wait in all.</param>
    /// <param name="say">Where the one line goes (the service's log).</param>
    /// <param name="ct">Ends the wait early: <see cref="Pause"/> throws <see cref="OperationCanceledException"/>.</param>
    /// <param name="time">The clock of the deadline.</param>
    public PeerWait(TimeSpan timeout, Action<string>? say, CancellationToken ct = default, TimeProvider? time = null)
    {
        Timeout = timeout;
        _say = say;
        _ct = ct;
        _time = time ?? TimeProvider.System;
        _start = _time.GetTimestamp();
    }

    /// <summary>The whole wait, as given.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>What is left of the wait (zero once it is over).</summary>
    public TimeSpan Left
    {
        get
        {
            var left = Timeout - _time.GetElapsedTime(_start);
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }

    /// <summary>Whether the wait is over (nothing left of <see cref="Timeout"/>).</summary>
    public bool Expired => Left == TimeSpan.Zero;

    /// <summary>Whether the line was said (so the caller can say when the wait ended).</summary>
    public bool Said { get; private set; }

    /// <summary>Says <paramref name="what"/> the first time only, then pauses before the next check.</summary>
    public void Pause(Func<string> what)
    {
        if (!Said)
            _say?.Invoke(what());
        Said = true;
        if (_ct.WaitHandle.WaitOne(Interval))
            throw new OperationCanceledException(_ct);
    }
}
