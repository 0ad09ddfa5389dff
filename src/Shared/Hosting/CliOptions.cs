using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace StdDaq.Shared.Hosting;

/// <summary>
/// Typed System.CommandLine options whose values are checked as they are parsed, so a bad value is
/// a usage error that names the option, the value and what it must be
/// (<c>--workers 'x' is not an integer in 0..256</c>) instead of the parser's type names. The range
/// and the default go into the generated help.
/// </summary>
public static class CliOptions
{
    /// <summary>The detector config every program takes first.</summary>
    public static Argument<string> ConfigArgument() =>
        new("config.json") { Description = "the detector's configuration (std-daq's JSON)" };

    /// <summary>A flag: present or not, never with a value (<c>--overwrite=yes</c> is an error).</summary>
    public static Option<bool> Flag(string name, string description) =>
        new(name) { Arity = ArgumentArity.Zero, Description = description };

    /// <summary>A string value; null when the option is not given.</summary>
    public static Option<string?> Text(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description };

    public static Option<long> Integer(string name, string helpName, string description, long defaultValue,
        long min = long.MinValue, long max = long.MaxValue) =>
        new(name)
        {
            HelpName = helpName,
            Description = description + RangeNote(min, max, long.MinValue, long.MaxValue),
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r => ParseInteger(r, name, min, max) ?? defaultValue,
        };

    /// <summary>An integer with no default: null when the option is not given.</summary>
    public static Option<long?> OptionalInteger(string name, string helpName, string description,
        long min = long.MinValue, long max = long.MaxValue) =>
        new(name)
        {
            HelpName = helpName,
            Description = description + RangeNote(min, max, long.MinValue, long.MaxValue),
            CustomParser = r => ParseInteger(r, name, min, max),
        };

    public static Option<double> Number(string name, string helpName, string description, double defaultValue,
        double min = double.MinValue, double max = double.MaxValue) =>
        new(name)
        {
            HelpName = helpName,
            Description = description + RangeNote(min, max, double.MinValue, double.MaxValue),
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r => ParseNumber(r, name, min, max) ?? defaultValue,
        };

    /// <summary>A number with no default: null when the option is not given.</summary>
    public static Option<double?> OptionalNumber(string name, string helpName, string description,
        double min = double.MinValue, double max = double.MaxValue) =>
        new(name)
        {
            HelpName = helpName,
            Description = description + RangeNote(min, max, double.MinValue, double.MaxValue),
            CustomParser = r => ParseNumber(r, name, min, max),
        };

    /// <summary>A dotted IPv4 address (no host names: nothing is resolved).</summary>
    public static Option<IPAddress> Ipv4(string name, string description, IPAddress defaultValue) =>
        new(name)
        {
            HelpName = "ipv4",
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r =>
            {
                if (r.Tokens.Count == 0)
                    return defaultValue;
                string s = r.Tokens[0].Value;
                if (IPAddress.TryParse(s, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork)
                    return ip;
                r.AddError($"{name} '{s}' is not an IPv4 address");
                return defaultValue;
            },
        };

    /// <summary>Whether the command line names the option (not only its default).</summary>
    public static bool Given(this ParseResult result, Option option) => result.GetResult(option) is { Implicit: false };

    private static long? ParseInteger(ArgumentResult r, string name, long min, long max)
    {
        if (r.Tokens.Count == 0)
            return null;
        string s = r.Tokens[0].Value;
        if (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) && v >= min && v <= max)
            return v;
        r.AddError($"{name} '{s}' is not an integer{RangeText(min, max, long.MinValue, long.MaxValue, " in ", " of at least ", " of at most ")}");
        return null;
    }

    private static double? ParseNumber(ArgumentResult r, string name, double min, double max)
    {
        if (r.Tokens.Count == 0)
            return null;
        string s = r.Tokens[0].Value;
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= min && v <= max)
            return v;
        r.AddError($"{name} '{s}' is not a number{RangeText(min, max, double.MinValue, double.MaxValue, " in ", " of at least ", " of at most ")}");
        return null;
    }

    /// <summary>The range in the help text: " (0..256)", " (at least 1)", or nothing for an unbounded value.</summary>
    private static string RangeNote<T>(T min, T max, T lowest, T highest) where T : IEquatable<T>, IFormattable =>
        RangeText(min, max, lowest, highest, "", "at least ", "at most ") is { Length: > 0 } range ? $" ({range})" : "";

    private static string RangeText<T>(T min, T max, T lowest, T highest, string both, string above, string below)
        where T : IEquatable<T>, IFormattable
    {
        string Format(T v) => v.ToString(null, CultureInfo.InvariantCulture);
        return (min.Equals(lowest), max.Equals(highest)) switch
        {
            (false, false) => $"{both}{Format(min)}..{Format(max)}",
            (false, true) => above + Format(min),
            (true, false) => below + Format(max),
            _ => "",
        };
    }
}
