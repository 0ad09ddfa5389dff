using System.Globalization;

namespace StdDaq.Shared.Hosting;

/// <summary>Bad command-line usage: reported as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Positional arguments and "--name value" / "--name=value" options. Names listed as flags take
/// no value. Unknown options are errors, so a typo never silently changes a run.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string> _options = new();
    private readonly HashSet<string> _flags = new();

    public List<string> Positional { get; } = new();

    public CommandLine(IEnumerable<string> args, IEnumerable<string> options, IEnumerable<string>? flags = null)
    {
        var knownOptions = options.ToHashSet();
        var knownFlags = (flags ?? []).ToHashSet();
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            string a = list[i];
            if (!a.StartsWith("--", StringComparison.Ordinal) || a == "--")
            {
                Positional.Add(a);
                continue;
            }
            string name = a[2..];
            string? value = null;
            int eq = name.IndexOf('=');
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }
            if (knownFlags.Contains(name))
            {
                if (value != null)
                    throw new UsageException($"--{name} takes no value");
                _flags.Add(name);
            }
            else if (knownOptions.Contains(name))
            {
                if (value == null)
                {
                    if (i + 1 >= list.Count)
                        throw new UsageException($"--{name} needs a value");
                    value = list[++i];
                }
                _options[name] = value;
            }
            else
            {
                throw new UsageException($"unknown option --{name}");
            }
        }
    }

    public string? Option(string name) => _options.GetValueOrDefault(name);

    public bool Flag(string name) => _flags.Contains(name);

    public double Double(string name, double fallback, double min = double.MinValue, double max = double.MaxValue)
    {
        if (Option(name) is not { } s)
            return fallback;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v >= min && v <= max))
            throw new UsageException($"--{name} '{s}' is not a number in {min}..{max}");
        return v;
    }

    public long Long(string name, long fallback, long min = long.MinValue, long max = long.MaxValue)
    {
        if (Option(name) is not { } s)
            return fallback;
        if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) || v < min || v > max)
            throw new UsageException($"--{name} '{s}' is not an integer in {min}..{max}");
        return v;
    }
}
