namespace StdDaq.Benchmarks.Writer;

/// <summary>The statistics both modes print.</summary>
internal static class Bench
{
    /// <summary>The median (upper one for an even count); NaN when there is nothing.</summary>
    public static double Median(IEnumerable<double> xs)
    {
        var sorted = xs.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2];
    }
}
