using System.Diagnostics;
using Microsoft.Extensions.Logging;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Memory;
using StdDaq.UdpRecv;

namespace StdDaq.Cli;

/// <summary>
/// `std-daq up`: the pipeline in one process, one receiver thread per module (the same classes
/// the per-module services run). With --simulate it also drives the simulator, shows live
/// counters and ends with a summary comparing what was sent with what was received.
/// </summary>
internal static class UpCommand
{
    private const string UsageText = """
        std-daq up <config.json> [--simulate] [--rate HZ] [--frames N | --seconds S] [--loss P] [--duplicate P]
                   [--reorder P] [--truncate P] [--seed N] [--cleanup]
        """;

    public static int Run(string[] args) => ServiceHost.Run("std-daq up", args, UsageText, (a, logger, ct) =>
    {
        if (a.Positional.Count != 1)
            throw new UsageException("expected <config.json>");
        var config = DetectorConfigLoader.Load(a.Positional[0], w => logger.LogWarning("{Warning}", w));
        using var quiet = ServiceHost.CreateLoggerFactory(LogLevel.Warning);
        var receivers = new List<UdpReceiver>();
        try
        {
            for (int m = 0; m < config.NModules; m++)
                receivers.Add(new UdpReceiver(config, m, quiet.CreateLogger($"StdUdpRecv-{m}")));
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var tasks = receivers.Select(r => r.RunAsync(stop.Token)).ToList();
            Console.WriteLine($"std-daq up: {config.DetectorName} ({config.DetectorType}, {config.NModules} modules), " +
                $"receiving on udp {config.StartUdpPort}..{config.UdpPort(config.NModules - 1)}, frame buffers /dev/shm/{config.FrameBufferName(0)}..");
            SimReport? report = null;
            var sw = Stopwatch.StartNew();
            if (a.Flag("simulate"))
            {
                var simOptions = SimCommand.Parse(a);
                var simTask = Task.Factory.StartNew(() =>
                {
                    using var sim = new DetectorSimulator(config, simOptions);
                    return sim.Run(stop.Token);
                }, TaskCreationOptions.LongRunning);
                while (!simTask.Wait(1000))
                    Console.WriteLine(Live(receivers, sw.Elapsed.TotalSeconds));
                report = simTask.Result;
                // Let the last frames arrive and close (timeout), then stop.
                Thread.Sleep(TimeSpan.FromMilliseconds(config.UdpFrameTimeoutMs * 4 + 200));
                stop.Cancel();
            }
            else
            {
                while (!ct.WaitHandle.WaitOne(TimeSpan.FromSeconds(Math.Max(1, config.StatsCollectionPeriod))))
                    Console.WriteLine(Live(receivers, sw.Elapsed.TotalSeconds));
            }
            Task.WaitAll(tasks.ToArray());
            return Summary(config, receivers, report);
        }
        finally
        {
            foreach (var r in receivers)
                r.Dispose();
            if (a.Flag("cleanup"))
                for (int m = 0; m < config.NModules; m++)
                    ShmRing.Unlink(config.FrameBufferName(m));
        }
    }, SimCommand.Options.Where(o => o is not ("report" or "replay" or "host")), ["simulate", "cleanup"]);

    private static string Live(List<UdpReceiver> receivers, double t)
    {
        var parts = receivers.Select(r =>
        {
            var c = r.Counters.Read();
            return $"m{r.ModuleId}: {c.FramesComplete} ok {c.FramesIncomplete} incomplete {c.MissingPackets} lost";
        });
        return $"[{t,6:F1} s] " + string.Join(" | ", parts);
    }

    private static int Summary(DetectorConfig config, List<UdpReceiver> receivers, SimReport? report)
    {
        Console.WriteLine("summary:");
        long complete = 0, incomplete = 0, missing = 0, drops = 0, malformed = 0;
        foreach (var r in receivers)
        {
            var c = r.Counters.Read();
            Console.WriteLine($"  module {r.ModuleId} (udp {r.Port}): {c.Format(0)}");
            complete += c.FramesComplete;
            incomplete += c.FramesIncomplete;
            missing += c.MissingPackets;
            drops += c.KernelDrops;
            malformed += c.Malformed;
        }
        Console.WriteLine($"  received: {complete} complete frames, {incomplete} incomplete, {missing} packets lost, {malformed} malformed, {drops} kernel drops");
        if (report == null)
            return 0;
        Console.WriteLine($"  sent:     {report.Frames} module-frames at {report.FrameRate / receivers.Count:F1} frames/s per module, {report.Lost.Count} packets dropped on purpose, {report.Truncated.Count} truncated");
        long expectedMissing = report.Lost.Count + report.Truncated.Count;
        bool ok = complete + incomplete == report.Frames && missing == expectedMissing && drops == 0;
        Console.WriteLine(ok
            ? $"  OK: every frame sent was received and every lost packet was counted ({config.DetectorName})"
            : $"  MISMATCH: sent {report.Frames} frames with {expectedMissing} faulty packets; received {complete + incomplete} frames with {missing} missing packets");
        return ok ? 0 : 1;
    }
}
