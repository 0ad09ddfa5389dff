namespace StdDaq.Benchmarks.Writer;

/// <summary>Command-line options and the statistics both modes print.</summary>
internal static class Bench
{
    public static string Arg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    /// <summary>The median (upper one for an even count); NaN when there is nothing.</summary>
    public static double Median(IEnumerable<double> xs)
    {
        var sorted = xs.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2];
    }
}
