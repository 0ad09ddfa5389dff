using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;

namespace StdDaq.Cli;

internal static class SimCommand
{
    public const string UsageText = """
        std-daq sim <config.json> [--rate HZ] [--frames N | --seconds S] [--modules 0,1,..] [--start-id ID]
                    [--loss P] [--duplicate P] [--reorder P] [--truncate P] [--seed N] [--burst PACKETS]
                    [--host IPV4] [--report FILE.json] [--replay DIR]
        """;

    public static readonly string[] Options =
        ["rate", "frames", "seconds", "modules", "start-id", "loss", "duplicate", "reorder", "truncate", "seed", "burst", "host", "report", "replay"];

    public static int Run(string[] args) => ServiceHost.Run("std-daq sim", args, UsageText, (a, logger, ct) =>
    {
        if (a.Positional.Count != 1)
            throw new UsageException("expected <config.json>");
        var config = ServiceHost.LoadConfig(a.Positional[0], logger);
        var options = Parse(a, config);
        SimReport report;
        if (options.Replay != null)
        {
            using var replay = new CaptureReplay(config, options);
            report = replay.Run(ct);
        }
        else
        {
            using var sim = new DetectorSimulator(config, options);
            report = sim.Run(ct);
        }
        Console.WriteLine(report.Summary());
        if (a.Option("report") is { } path)
            File.WriteAllText(path, report.ToJson());
        return 0;
    }, Options);

    public static SimOptions Parse(CommandLine a, DetectorConfig config)
    {
        var modules = a.Option("modules") is { } list
            ? list.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s =>
                int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int m) ? m : throw new UsageException($"--modules: '{s}' is not a module id")).ToList()
            : null;
        foreach (int m in modules ?? [])
            if (m < 0 || m >= config.NModules)
                throw new UsageException($"--modules: module {m} is not in 0..{config.NModules - 1}");
        if (a.Option("frames") != null && a.Option("seconds") != null)
            throw new UsageException("give --frames or --seconds, not both");
        return new SimOptions
        {
            Rate = a.Double("rate", 100, 0, 1e6),
            Frames = a.Long("frames", 100, 1, long.MaxValue),
            Seconds = a.Option("seconds") != null ? a.Double("seconds", 0, 0.001, 1e7) : null,
            Modules = modules,
            StartId = (ulong)a.Long("start-id", 1, 0, long.MaxValue),
            Loss = a.Double("loss", 0, 0, 1),
            Duplicate = a.Double("duplicate", 0, 0, 1),
            Reorder = a.Double("reorder", 0, 0, 1),
            Truncate = a.Double("truncate", 0, 0, 1),
            Seed = (int)a.Long("seed", 1, int.MinValue, int.MaxValue),
            Burst = (int)a.Long("burst", 16, 1, 1024),
            Host = a.Option("host") is { } host
                ? IPAddress.TryParse(host, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork ? host
                    : throw new UsageException($"--host '{host}' is not an IPv4 address")
                : "127.0.0.1",
            Replay = a.Option("replay"),
        };
    }
}
