using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Services;

/// <summary>
/// The README's usage of each program and std-daq sub-command (the table in "Services and
/// commands") against the help the program generates from its declaration: every option the help
/// lists is in the README's usage and every option there is one the program takes, so neither can
/// drift from the other.
/// </summary>
public partial class HelpTests
{
    /// <summary>A program's <c>--help</c>: its usage line, arguments, options and sub-commands.</summary>
    private sealed record Help(string UsageLine, IReadOnlySet<string> Arguments, IReadOnlySet<string> Options, IReadOnlyList<string> Commands);

    private static readonly ConcurrentDictionary<string, Help> Helps = new();

    private static readonly string[] ExecutableNames = ["StdUdpRecv", "StdAssembler", "StdH5Writer", "WriterAgent", "StdStreamSend", "StdStreamRecv", "std-daq"];

    public static TheoryData<string> Executables() => new(ExecutableNames);

    [Theory]
    [MemberData(nameof(Executables))]
    public void Help_EveryCommandOfTheProgram_ListsTheOptionsOfItsReadmeUsage(string program)
    {
        var problems = new List<string>();
        foreach (var path in Commands([program]))
        {
            var help = HelpOf(path);
            string name = string.Join(' ', path);
            if (!help.UsageLine.StartsWith(name, StringComparison.Ordinal))
                problems.Add($"{name}: --help names it otherwise: {help.UsageLine}");
            if (help.Commands.Count > 0)
                continue; // a group: its sub-commands are checked
            var usage = ReadmeUsage(name);
            if (usage.Count == 0)
            {
                problems.Add($"{name}: no usage in the README's table (a code span starting with '{name}')");
                continue;
            }
            var documented = usage.SelectMany(u => OptionRegex().Matches(u).Select(m => m.Value)).ToHashSet();
            foreach (var o in help.Options.Except(documented))
                problems.Add($"{name}: {o} is in --help but not in the README's usage");
            foreach (var o in documented.Except(help.Options))
                problems.Add($"{name}: {o} is in the README's usage but not in --help");
            foreach (var a in help.Arguments.Where(a => !usage.Any(u => u.Contains(a, StringComparison.Ordinal))))
                problems.Add($"{name}: argument {a} is in --help but not in the README's usage");
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public void Help_EveryProgramInTheReadmeTable_IsAProgramOrSubCommand()
    {
        var known = ExecutableNames.SelectMany(p => Commands([p])).Select(p => string.Join(' ', p)).ToHashSet();
        var rows = ReadmeRows().Keys.ToList();
        Assert.NotEmpty(rows);
        Assert.All(rows, r => Assert.Contains(r, known));
    }

    /// <summary>The command and, recursively, every sub-command its help lists.</summary>
    private static IEnumerable<string[]> Commands(string[] path)
    {
        yield return path;
        foreach (var c in HelpOf(path).Commands)
            foreach (var sub in Commands([.. path, c]))
                yield return sub;
    }

    private static Help HelpOf(string[] path) => Helps.GetOrAdd(string.Join(' ', path), _ =>
    {
        var r = Programs.Run(path[0], [.. path[1..], "--help"]);
        Assert.True(r.ExitCode == 0, $"{string.Join(' ', path)} --help exited {r.ExitCode}: {r.Stderr}");
        Assert.Equal("", r.Stderr);
        return Parse(r.Stdout);
    });

    /// <summary>Reads System.CommandLine's help: sections "Usage:", "Arguments:", "Options:", "Commands:", items indented by two.</summary>
    private static Help Parse(string text)
    {
        string usage = "", section = "";
        var arguments = new HashSet<string>();
        var options = new HashSet<string>();
        var commands = new List<string>();
        foreach (var line in text.Split('\n').Select(l => l.TrimEnd()))
        {
            if (line.Length > 0 && !line.StartsWith(' '))
            {
                section = line;
                continue;
            }
            if (!line.StartsWith("  ", StringComparison.Ordinal) || line.StartsWith("   ", StringComparison.Ordinal))
                continue; // blank, or a wrapped description
            string item = line.Trim().Split("  ")[0];
            switch (section)
            {
                case "Usage:":
                    usage = item;
                    break;
                case "Arguments:":
                    arguments.Add(item);
                    break;
                case "Options:":
                    options.UnionWith(OptionRegex().Matches(item).Select(m => m.Value).Where(o => o is not ("--help" or "--version")));
                    break;
                case "Commands:":
                    commands.Add(item.Split(' ')[0]);
                    break;
            }
        }
        Assert.False(usage == "", "no Usage: section in the help:\n" + text);
        return new Help(usage, arguments, options, commands);
    }

    /// <summary>The README's usage of a program: the code spans of its table row that start with its name.</summary>
    private static List<string> ReadmeUsage(string name)
    {
        string? cell = ReadmeRows().Where(r => name == r.Key || name.StartsWith(r.Key + " ", StringComparison.Ordinal))
            .OrderByDescending(r => r.Key.Length).Select(r => r.Value).FirstOrDefault();
        return cell == null ? [] :
            CodeRegex().Matches(cell).Select(m => m.Groups[1].Value)
                .Where(u => u == name || u.StartsWith(name + " ", StringComparison.Ordinal)).ToList();
    }

    /// <summary>The table of "Services and commands": program (first column) → its usage cell.</summary>
    private static Dictionary<string, string> ReadmeRows()
    {
        var lines = File.ReadAllLines(Path.Combine(TestEnv.RepoRoot, "README.md"));
        var rows = new Dictionary<string, string>();
        foreach (var line in lines.SkipWhile(l => l != "## Services and commands").Skip(1).TakeWhile(l => !l.StartsWith("#", StringComparison.Ordinal)))
            if (RowRegex().Match(line) is { Success: true } m)
                rows[m.Groups[1].Value] = m.Groups[2].Value;
        return rows;
    }

    [GeneratedRegex(@"^\| `([^`]+)` \| (.*) \|$")]
    private static partial Regex RowRegex();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex CodeRegex();

    [GeneratedRegex(@"--[a-z0-9][a-z0-9-]*")]
    private static partial Regex OptionRegex();
}
