using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace StdDaq.Shared.Hosting;

/// <summary>
/// What a program says about a command line it cannot run, in the words of its other failures: the
/// program's name (<c>std-daq shm</c>), one line naming the problem (<c>unknown option --x</c>,
/// <c>--bind needs a value</c>, <c>expected &lt;config.json&gt;</c>) and a one-line usage of the
/// command, both made from the System.CommandLine declaration the parser used. The parser's own
/// error texts are kept only for what this does not recognize.
/// </summary>
public static class Usage
{
    /// <summary>The program's name on its failure lines: the executable, and for std-daq the sub-command (<c>std-daq shm</c>).</summary>
    public static string ProgramName(CommandResult command)
    {
        var path = Path(command);
        return path.Count > 1 ? $"{path[0].Name} {path[1].Name}" : path[0].Name;
    }

    /// <summary>The command in one line: <c>std-daq shm rm [&lt;name&gt;...] [--detector &lt;detector_name&gt;] [--force]</c>.</summary>
    public static string Line(CommandResult command)
    {
        var c = command.Command;
        var parts = Path(command).Select(p => p.Name).ToList();
        var subcommands = c.Subcommands.Where(s => !s.Hidden).Select(s => s.Name).ToList();
        if (subcommands.Count > 0)
            // A command that also runs on its own (std-daq monitor) takes its sub-commands optionally.
            parts.Add(c.Action == null ? string.Join('|', subcommands) + " ..." : $"[{string.Join('|', subcommands)} ...]");
        parts.AddRange(c.Arguments.Where(a => !a.Hidden).Select(Placeholder));
        foreach (var o in c.Options.Where(o => !o.Hidden && o is not (HelpOption or VersionOption)))
        {
            string text = o.Arity.MaximumNumberOfValues == 0 ? o.Name : $"{o.Name} <{o.HelpName ?? o.Name.TrimStart('-')}>";
            parts.Add(o.Required ? text : $"[{text}]");
        }
        return string.Join(' ', parts);
    }

    /// <summary>The one line naming what is wrong with the command line; null when nothing is.</summary>
    public static string? Problem(ParseResult result, IReadOnlyList<string> args)
    {
        var command = result.CommandResult.Command;
        // "--flag=value": the parser splits it and takes the value for an argument of the command
        // (or leaves it over as an unmatched one).
        foreach (string a in args.TakeWhile(a => a != "--"))
        {
            int eq = a.IndexOf('=');
            if (a.StartsWith("--", StringComparison.Ordinal) && eq > 2
                && command.Options.FirstOrDefault(o => o.Name == a[..eq] || o.Aliases.Contains(a[..eq])) is { Arity.MaximumNumberOfValues: 0 } flag)
                return $"{flag.Name} takes no value";
        }
        if (result.Errors.Count == 0)
            return null;
        if (result.UnmatchedTokens.Count > 0)
        {
            string token = result.UnmatchedTokens[0];
            if (token.Length > 1 && token[0] == '-')
                return $"unknown option {token}";
            if (command.Subcommands.Count > 0)
                return command.Parents.Any() ? $"unknown {command.Name} sub-command '{token}'" : $"unknown command '{token}'";
            return Expected(command, result.UnmatchedTokens);
        }
        foreach (var e in result.Errors)
        {
            switch (e.SymbolResult)
            {
                case OptionResult { Tokens.Count: 0 } o when o.Option.Arity.MinimumNumberOfValues > 0:
                    return $"{o.Option.Name} needs a value";
                case OptionResult o when o.Tokens.Count > o.Option.Arity.MaximumNumberOfValues:
                    return $"{o.Option.Name} is given more than once";
                case ArgumentResult { Tokens.Count: 0, Parent: CommandResult }:
                    return Expected(command, []);
                case CommandResult { Command.Subcommands.Count: > 0 } c:
                    string names = string.Join(", ", c.Command.Subcommands.Where(s => !s.Hidden).Select(s => s.Name));
                    return c.Command.Parents.Any() ? $"expected a sub-command: {names}" : $"expected a command: {names}";
            }
        }
        return result.Errors[0].Message;
    }

    /// <summary>A wrong number of positional arguments: what the command takes.</summary>
    private static string Expected(Command command, IReadOnlyList<string> unmatched)
    {
        var arguments = command.Arguments.Where(a => !a.Hidden).ToList();
        return arguments.Count == 0
            ? $"unexpected arguments: {string.Join(' ', unmatched)}"
            : "expected " + string.Join(' ', arguments.Select(Placeholder));
    }

    private static string Placeholder(Argument a)
    {
        string text = $"<{a.HelpName ?? a.Name}>" + (a.Arity.MaximumNumberOfValues > 1 ? "..." : "");
        return a.Arity.MinimumNumberOfValues == 0 ? $"[{text}]" : text;
    }

    /// <summary>The commands from the root to this one.</summary>
    private static List<Command> Path(CommandResult command)
    {
        var path = new List<Command>();
        for (SymbolResult? r = command; r != null; r = r.Parent)
            if (r is CommandResult c)
                path.Insert(0, c.Command);
        return path;
    }
}
