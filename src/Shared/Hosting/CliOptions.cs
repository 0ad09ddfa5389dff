using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Numerics;
using StdDaq.Shared.Streams;

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

    /// <summary>A string value that may be given several times (<c>--service a --service b</c>); empty when not given.</summary>
    public static Option<string[]> Texts(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, Arity = ArgumentArity.ZeroOrMore, DefaultValueFactory = _ => [] };

    /// <summary>A number (an integer for an integer type) in [min, max], each bound optional.</summary>
    public static Option<T> Number<T>(string name, string helpName, string description, T defaultValue, T? min = null, T? max = null)
        where T : struct, INumber<T> =>
        Checked(new Option<T>(name) { DefaultValueFactory = _ => defaultValue }, helpName, description, min, max, v => v, defaultValue);

    /// <summary>A number with no default: null when the option is not given.</summary>
    public static Option<T?> OptionalNumber<T>(string name, string helpName, string description, T? min = null, T? max = null)
        where T : struct, INumber<T> =>
        Checked(new Option<T?>(name), helpName, description, min, max, v => v, null);

    /// <summary>
    /// Every service's <c>--metrics-port</c>: where it serves /metrics and /stats over HTTP, 0 = off;
    /// null when not given (the config's <c>metrics</c> port of its role then, else off).
    /// </summary>
    public static Option<int?> MetricsPort() =>
        OptionalNumber<int>("--metrics-port", "N",
            "serve Prometheus /metrics and JSON /stats over HTTP on this port, 0 = off (default: the config's metrics port of this role, else off)",
            0, 65535);

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

    /// <summary>An image share <c>i/N</c> (0 &lt;= i &lt; N &lt;= 1024); <see cref="ImageShare.All"/> when not given.</summary>
    public static Option<ImageShare> Share(string name, string description) =>
        Fraction(name, description + " (default 0/1: every image)", ImageShare.All, ImageShare.TryParse, ImageShare.MaxCount);

    /// <summary>An image part <c>i/N</c> (0 &lt;= i &lt; N &lt;= 64); null when not given.</summary>
    public static Option<ImagePart?> Part(string name, string description) =>
        Fraction<ImagePart?>(name, description, null, (string s, out ImagePart? p) =>
        {
            bool ok = ImagePart.TryParse(s, out var part);
            p = part;
            return ok;
        }, ImagePart.MaxCount);

    /// <summary>
    /// The values of a stream program's <c>--images</c> and <c>--part</c>, which exclude each other
    /// (a sender sends whole images of a share or one part of every image): both given is a usage error.
    /// </summary>
    public static (ImageShare Images, ImagePart? Part) ImagesOrPart(this ParseResult a, Option<ImageShare> images, Option<ImagePart?> part)
    {
        if (a.Given(images) && a.Given(part))
            throw new UsageException($"give {images.Name} i/N (whole images, a share of them) or {part.Name} i/N (a byte range of every image), not both");
        return (a.GetValue(images), a.GetValue(part));
    }

    private delegate bool FractionParser<T>(string text, out T value);

    /// <summary>An <c>i/N</c> value (0 &lt;= i &lt; N &lt;= <paramref name="max"/>), <paramref name="fallback"/> when not given.</summary>
    private static Option<T> Fraction<T>(string name, string description, T fallback, FractionParser<T> parse, int max) =>
        new(name)
        {
            HelpName = "i/N",
            Description = description,
            DefaultValueFactory = _ => fallback,
            CustomParser = r =>
            {
                if (r.Tokens.Count == 0)
                    return fallback;
                string s = r.Tokens[0].Value;
                if (parse(s, out var value))
                    return value;
                r.AddError($"{name} '{s}' is not i/N with 0 <= i < N <= {max}");
                return fallback;
            },
        };

    /// <summary>
    /// A ZMQ tcp:// endpoint argument (<c>tcp://host:port</c>); anything else is a usage error
    /// naming the argument.
    /// </summary>
    public static Argument<string> TcpEndpoint(string name, string description) =>
        new(name)
        {
            Description = description,
            CustomParser = r =>
            {
                string s = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                int colon = s.LastIndexOf(':');
                if (s.StartsWith("tcp://", StringComparison.Ordinal) && colon > "tcp://".Length
                    && int.TryParse(s.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and < 65536)
                    return s;
                r.AddError($"{name} '{s}' is not tcp://host:port");
                return s;
            },
        };

    /// <summary>Whether the command line names the option (not only its default).</summary>
    public static bool Given(this ParseResult result, Option option) => result.GetResult(option) is { Implicit: false };

    private static Option<TValue> Checked<T, TValue>(Option<TValue> option, string helpName, string description, T? min, T? max,
        Func<T, TValue> value, TValue fallback) where T : struct, INumber<T>
    {
        bool integer = typeof(T).GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IBinaryInteger<>));
        // "0..256" in the help, "--workers 'x' is not an integer in 0..256" in the error.
        var (range, preposition) = (min, max) switch
        {
            ({ } lo, { } hi) => ($"{Format(lo)}..{Format(hi)}", " in "),
            ({ } lo, null) => ($"at least {Format(lo)}", " of "),
            (null, { } hi) => ($"at most {Format(hi)}", " of "),
            _ => ("", ""),
        };
        option.HelpName = helpName;
        option.Description = range == "" ? description : $"{description} ({range})";
        option.CustomParser = r =>
        {
            if (r.Tokens.Count == 0)
                return fallback;
            string s = r.Tokens[0].Value;
            if (T.TryParse(s, integer ? NumberStyles.Integer : NumberStyles.Float, CultureInfo.InvariantCulture, out T v)
                && T.IsFinite(v) && (min is not { } lo || v >= lo) && (max is not { } hi || v <= hi))
                return value(v);
            r.AddError($"{option.Name} '{s}' is not {(integer ? "an integer" : "a number")}{preposition}{range}");
            return fallback;
        };
        return option;
    }

    private static string Format<T>(T v) where T : INumber<T> => v.ToString(null, CultureInfo.InvariantCulture);
}
