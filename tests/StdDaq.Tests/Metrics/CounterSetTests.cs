using StdDaq.Shared.Metrics;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Metrics;

public sealed class CounterSetTests
{
    private enum Sample
    {
        PacketsReceived,
        Bytes,
        FrameIdResets,
    }

    private enum Gapped
    {
        A = 0,
        B = 2,
    }

    [Fact]
    public void Cells_StatsLineAndMetricsListener_ReadTheSameValues()
    {
        string meter = $"StdDaq.Test.{Guid.NewGuid():N}";
        using var set = new CounterSet<Sample>(meter, "sample", [new("detector", "jf")]);
        set[Sample.PacketsReceived] += 7;
        set[Sample.Bytes] += 7 * 8246;

        var seen = Instruments.Read(meter);

        Assert.Equal(7, seen["std_daq.sample.packets_received"].Value);
        Assert.Equal(7 * 8246, seen["std_daq.sample.bytes"].Value);
        Assert.Equal(0, seen["std_daq.sample.frame_id_resets"].Value);
        Assert.Equal("detector=jf", seen["std_daq.sample.bytes"].Tags);
        Assert.Equal("packets_received=7 bytes=57722 frame_id_resets=0", set.Read().Format());
        Assert.Equal("packets_received=7 bytes=57722", set.Read().Format(n => n == Sample.FrameIdResets));
    }

    [Fact]
    public void Snapshots_DifferenceSumAndComparison()
    {
        using var set = new CounterSet<Sample>($"StdDaq.Test.{Guid.NewGuid():N}", "sample");
        set[Sample.PacketsReceived] = 10;
        var before = set.Read();
        set[Sample.PacketsReceived] += 5;
        set[Sample.FrameIdResets]++;
        var after = set.Read();

        var period = after - before;
        Assert.Equal(5, period[Sample.PacketsReceived]);
        Assert.Equal(1, period[Sample.FrameIdResets]);
        Assert.Equal(after, before + period);
        Assert.NotEqual(after, before);
        Assert.Equal(before.With(Sample.PacketsReceived, 15).With(Sample.FrameIdResets, 1), after);
        Assert.Equal(0, default(CounterSnapshot<Sample>)[Sample.Bytes]);
    }

    [Fact]
    public void Names_NotNumberedInOrder_Refused()
    {
        var e = Assert.Throws<TypeInitializationException>(() => new CounterSet<Gapped>("StdDaq.Test.Gapped", "gapped"));
        Assert.Contains("numbered 0..n-1", e.InnerException!.Message);
    }
}

public sealed class StatsPeriodTests
{
    private enum Sample
    {
        Frames,
    }

    [Fact]
    public void TryTake_OncePerPeriodOnTheClock_WithTheChangeAndItsSeconds()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var set = new CounterSet<Sample>($"StdDaq.Test.{Guid.NewGuid():N}", "sample");
        var period = new StatsPeriod<Sample>(set, clock, 10);
        set[Sample.Frames] += 100;

        clock.Advance(TimeSpan.FromSeconds(9.9));
        Assert.False(period.TryTake(clock.GetTimestamp(), out _, out _));
        clock.Advance(TimeSpan.FromSeconds(0.2));
        Assert.True(period.TryTake(clock.GetTimestamp(), out var change, out double seconds));
        Assert.Equal(100, change[Sample.Frames]);
        Assert.Equal(10.1, seconds, 6);

        set[Sample.Frames] += 5;
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.True(period.TryTake(clock.GetTimestamp(), out change, out seconds));
        Assert.Equal(5, change[Sample.Frames]);
        Assert.Equal(10, seconds, 6);
    }
}
