using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using StdDaq.Shared.Config;
using StdDaq.Shared.Memory;

namespace StdDaq.Shared.Hosting;

/// <summary>
/// The common frame of every program: a console logger, SIGINT/SIGTERM → cancellation, and
/// failures mapped to one line on stderr and a non-zero exit code (2 usage/config, 1 otherwise).
/// </summary>
public static class ServiceHost
{
    public delegate int Body(CommandLine args, ILogger logger, CancellationToken ct);

    public static int Run(string name, string[] args, string usage, Body body,
        IEnumerable<string>? options = null, IEnumerable<string>? flags = null)
    {
        using var cts = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cts.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        using var loggerFactory = CreateLoggerFactory(LogLevel.Information);
        var logger = loggerFactory.CreateLogger(name);
        try
        {
            if (args.Contains("--help") || args.Contains("-h"))
            {
                Console.WriteLine("usage: " + usage);
                return 0;
            }
            var cl = new CommandLine(args, options ?? ["bind"], flags);
            return body(cl, logger, cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            Console.Error.WriteLine($"{name}: stopped before it was up");
            return 0;
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"{name}: {e.Message}\nusage: {usage}");
            return 2;
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"{name}: {e.Message}");
            return ConfigException.ExitCode;
        }
        catch (Exception e) when (e is RingBufferException or IOException or ArgumentException or DllNotFoundException or UnauthorizedAccessException or NotSupportedException or Interop.Hdf5Exception)
        {
            Console.Error.WriteLine($"{name}: {e.Message}");
            return 1;
        }
    }

    public static ILoggerFactory CreateLoggerFactory(LogLevel level) =>
        LoggerFactory.Create(b => b
            .SetMinimumLevel(level)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
                o.UseUtcTimestamp = false;
            })
            .AddFilter((_, l) => l >= level));
}
