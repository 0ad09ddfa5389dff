using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using StdDaq.Shared.Config;

namespace StdDaq.Shared.Hosting;

/// <summary>
/// The common frame of every program: its command line parsed with its System.CommandLine
/// declaration (help generated), a console logger, SIGINT/SIGTERM → cancellation, and failures
/// mapped to one line on stderr and an exit code by what they are (README "Exit codes"): 2 for
/// bad usage or a bad config, 1 for anything else that stops a program — a bad input file, a
/// missing library, shared memory, a port, I/O, HDF5 or a bug. A bug's line names the exception
/// type (<c>internal error: NullReferenceException: ...</c>) so it is not taken for a bad input;
/// the stack trace goes to stderr only when <c>STDDAQ_DEBUG=1</c>.
/// </summary>
public static class ServiceHost
{
    /// <summary>What a command does, given its parsed command line, the program's log and its cancellation (SIGINT/SIGTERM).</summary>
    public delegate int Body(ParseResult args, ILogger logger, CancellationToken ct);

    /// <summary>Set to 1 to also print the stack trace of a failure.</summary>
    public const string DebugVariable = "STDDAQ_DEBUG";

    /// <summary>Makes <paramref name="body"/> what runs, inside <see cref="Run"/>'s frame, when the command line names this command.</summary>
    public static void SetBody(this Command command, Body body) => command.Action = new BodyAction(body);

    /// <summary>
    /// Parses <paramref name="args"/> with the program's command declaration and runs the command
    /// they name: its body, or the generated help (<c>--help</c>, exit 0). A command line the
    /// declaration does not accept is a usage error (<see cref="Usage.Problem"/>), exit 2.
    /// </summary>
    public static int Run(string[] args, RootCommand root)
    {
        ParseResult parsed;
        try
        {
            // No response files: an argument starting with '@' is a path like any other.
            parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        }
        catch (Exception e)
        {
            return Report(root.Name, root.Name, e);
        }
        string name = Usage.ProgramName(parsed.CommandResult);
        string usage = Usage.Line(parsed.CommandResult);
        // A failure on a thread of our own (not the one running the body) would otherwise end the
        // process with the runtime's multi-line report and exit 134.
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            if (e.ExceptionObject is Exception ex)
                Environment.Exit(Report(name, usage, ex));
        };
        using var cts = new CancellationTokenSource();
        s_run = cts;
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cts.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        try
        {
            // Help stands even when the rest of the line is wrong (it clears the parse errors).
            if (parsed.Action is not { ClearsParseErrors: true } && Usage.Problem(parsed, args) is { } problem)
                throw new UsageException(problem);
            // The signals above are ours: System.CommandLine registers none (no termination timeout)
            // and lets failures through to the report below.
            var invocation = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
            int rc = parsed.InvokeAsync(invocation, cts.Token).GetAwaiter().GetResult();
            if (s_exit is { } exit)
            {
                Console.Error.WriteLine($"{name}: stopped: {exit.Reason}");
                return exit.Code;
            }
            return rc;
        }
        catch (Exception e) when (Unwrap(e) is OperationCanceledException && cts.IsCancellationRequested)
        {
            if (s_exit is { } exit)
            {
                Console.Error.WriteLine($"{name}: stopped: {exit.Reason}");
                return exit.Code;
            }
            Console.Error.WriteLine($"{name}: stopped before it was up");
            return 0;
        }
        catch (Exception e)
        {
            return Report(name, usage, e);
        }
    }

    private static CancellationTokenSource? s_run;
    private static (int Code, string Reason)? s_exit;

    /// <summary>
    /// Stops the running program as SIGTERM does (its body's cancellation), and makes it exit with
    /// <paramref name="code"/>, saying <paramref name="reason"/> (e.g. its config in Redis changed).
    /// </summary>
    public static void RequestExit(int code, string reason)
    {
        s_exit ??= (code, reason);
        try
        {
            s_run?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>A command's body as its System.CommandLine action, given a console logger named after the program.</summary>
    private sealed class BodyAction(Body body) : AsynchronousCommandLineAction
    {
        public override Task<int> InvokeAsync(ParseResult parseResult, CancellationToken cancellationToken)
        {
            using var loggerFactory = CreateLoggerFactory(() => s_level);
            var logger = loggerFactory.CreateLogger(Usage.ProgramName(parseResult.CommandResult));
            return Task.FromResult(body(parseResult, logger, cancellationToken));
        }
    }

    /// <summary>What a failure is, which decides the exit code and how it is reported.</summary>
    public enum FailureKind
    {
        /// <summary>The command line is wrong: exit 2, the line and a usage line.</summary>
        Usage,
        /// <summary>The config file is missing, unreadable or invalid: exit 2.</summary>
        Config,
        /// <summary>
        /// An input file, the machine or a peer: a calibration file that is not what it must be,
        /// a missing library, shared memory, a port, a broker, I/O, HDF5. Exit 1; the exception's
        /// message is written for the user and is the whole line.
        /// </summary>
        Failure,
        /// <summary>
        /// An exception the runtime raises for a broken invariant of the code itself (a null
        /// dereference, an index out of range, a call in the wrong state, an argument a caller
        /// must never pass): exit 1, the line names the exception type.
        /// </summary>
        Bug,
    }

    /// <summary>What <paramref name="e"/> (unwrapped from task and reflection wrappers) is, by its type.</summary>
    public static FailureKind Classify(Exception e) => Unwrap(e) switch
    {
        UsageException => FailureKind.Usage,
        ConfigException => FailureKind.Config,
        // Contract checks name the parameter (ArgumentNullException, ArgumentOutOfRangeException,
        // ThrowIf helpers); our messages about user input (a broker url, a module list) do not.
        ArgumentException { ParamName: not null } => FailureKind.Bug,
        NullReferenceException or IndexOutOfRangeException or InvalidCastException or InvalidOperationException
            or NotImplementedException or KeyNotFoundException or ArithmeticException or AccessViolationException => FailureKind.Bug,
        _ => FailureKind.Failure,
    };

    /// <summary>Writes the failure's line(s) to stderr and returns the exit code.</summary>
    public static int Report(string name, string usage, Exception e)
    {
        var inner = Unwrap(e);
        var kind = Classify(inner);
        string message = OneLine(inner.Message);
        Console.Error.WriteLine(kind switch
        {
            FailureKind.Usage => $"{name}: {message}\nusage: {OneLine(usage)}",
            FailureKind.Bug => $"{name}: internal error: {inner.GetType().Name}: {message}",
            _ => $"{name}: {message}",
        });
        if (Environment.GetEnvironmentVariable(DebugVariable) == "1")
            Console.Error.WriteLine(e);
        return kind is FailureKind.Usage or FailureKind.Config ? ConfigException.ExitCode : 1;
    }

    /// <summary>The failure itself, not the task or reflection wrapper around it.</summary>
    private static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case AggregateException { InnerExceptions.Count: 1 } a:
                    e = a.InnerExceptions[0];
                    continue;
                case TargetInvocationException { InnerException: { } i }:
                    e = i;
                    continue;
                case TypeInitializationException { InnerException: { } t }:
                    e = t;
                    continue;
                default:
                    return e;
            }
        }
    }

    /// <summary>Newlines and runs of spaces collapsed, so a failure is one line whatever a library put in its message.</summary>
    private static string OneLine(string text) =>
        string.Join(' ', text.Split((char[])['\n', '\r', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The programs' console logger (one line per message, local timestamps) at a fixed <paramref name="level"/>.</summary>
    public static ILoggerFactory CreateLoggerFactory(LogLevel level) => CreateLoggerFactory(() => level);

    /// <summary>A console logger whose level is read at each message (the program's changes once its config is loaded).</summary>
    private static ILoggerFactory CreateLoggerFactory(Func<LogLevel> level) =>
        LoggerFactory.Create(b => b
            .SetMinimumLevel(LogLevel.Trace)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
                o.UseUtcTimestamp = false;
            })
            .AddFilter((_, l) => l >= level()));

    // The program's log level: info until its config says otherwise (log_level).
    private static volatile int s_levelValue = (int)LogLevel.Information;
    private static LogLevel s_level => (LogLevel)s_levelValue;

    /// <summary>
    /// Loads the detector config (its warnings go to the log) and applies its log_level to this
    /// program's log from here on: trace, debug, info, warning, error or critical.
    /// </summary>
    public static DetectorConfig LoadConfig(string path, ILogger logger, bool service = true)
    {
        // A service's Redis environment (REDIS_PORT) is checked with its config, before the service
        // makes a ring or takes its role: a bad value is a usage error that leaves nothing behind.
        if (service)
            _ = RedisPlace.FromEnvironment();
        var config = DetectorConfigLoader.Load(path, w => logger.LogWarning("{Warning}", w));
        s_levelValue = (int)config.LogLevel;
        return config;
    }
}
