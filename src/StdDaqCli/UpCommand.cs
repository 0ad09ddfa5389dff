using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using StdDaq.Agent;
using StdDaq.Assembler;
using StdDaq.Cli.Sim;
using StdDaq.Pipeline;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Streams;
using StdDaq.Shared.Memory;
using StdDaq.UdpRecv;
using StdDaq.Writer;

namespace StdDaq.Cli;

/// <summary>
/// `std-daq up`: the whole pipeline in one process (DESIGN §2): one receiver per module, the
/// assembler, the writer and, with a broker, the WriterAgent, each on its own thread, with the same
/// classes, shared memory and ZMQ endpoints as the separate services. With --simulate it drives the
/// simulator; with --write it also sends a write request through the broker, shows its progress,
/// reads the file back and checks it against the simulator's pattern, then shuts everything down.
/// </summary>
internal static class UpCommand
{
    public static Command Create()
    {
        var configPath = CliOptions.ConfigArgument();
        var simulate = CliOptions.Flag("--simulate", "also run the simulator, sending to the receivers (--rate .. --burst set it up as for std-daq sim)");
        var sim = new SimCommandLine();
        var brokerUrl = CliOptions.Text("--broker-url", "URL", "run the WriterAgent on this RabbitMQ broker");
        var privateBroker = CliOptions.Flag("--private-broker", "start a private RabbitMQ on free loopback ports and run the WriterAgent on it");
        var write = CliOptions.Text("--write", "FILE", "send a write request for FILE (needs --images and a broker), show its progress, check the file, then stop");
        var images = CliOptions.OptionalNumber<long>("--images", "N", "images to write", 1);
        var compression = CliOptions.Text("--compression", "none|bitshuffle-lz4", "the written file's compression (default: none)");
        var overwrite = CliOptions.Flag("--overwrite", "replace FILE if it exists");
        var timeout = CliOptions.Number("--timeout", "S", "seconds to wait for the write to end", 600.0, 1);
        var receiversOnly = CliOptions.Flag("--receivers-only", "run the receivers only (no assembler, writer or agent)");
        var writerOnly = CliOptions.Flag("--writer-only",
            "run the writer (and, with a broker, the agent) only: the images come from an assembler or a replica (StdStreamRecv) running as a service");
        var cleanup = CliOptions.Flag("--cleanup", "remove the shared-memory rings this run created when it ends");
        var writerShare = CliOptions.Share("--writer-share",
            "scale-out writing: the agent writes share i/N of every request (ids with id % N == i) with N - 1 agents elsewhere; 0/N leads");
        var command = new Command("up",
            "Runs the whole pipeline in one process (receivers, assembler, StdH5Writer and, with a broker, the WriterAgent), " +
            "with the same classes, shared memory and endpoints as the services; with --simulate and --write, the demo.")
        {
            configPath, simulate,
        };
        sim.AddTo(command);
        foreach (var o in (Option[])[brokerUrl, privateBroker, write, images, compression, overwrite, timeout, receiversOnly, writerOnly, cleanup, writerShare])
            command.Add(o);
        command.SetBody((a, logger, ct) =>
        {
            string path = a.GetValue(configPath)!;
            var config = ServiceHost.LoadConfig(path, logger, service: false);
            var demo = a.GetValue(write) is { } file
                ? new DemoWrite(Path.GetFullPath(file), a.GetValue(images) ?? 0, a.GetValue(compression) ?? "none",
                    a.GetValue(overwrite), a.GetValue(timeout))
                : null;
            if (demo is { NImages: 0 })
                throw new UsageException("--write needs --images N");
            var run = new UpRun(a.GetValue(brokerUrl), a.GetValue(privateBroker), a.GetValue(receiversOnly), a.GetValue(writerOnly), a.GetValue(cleanup), demo, a.GetValue(writerShare));
            if (demo != null && run.BrokerUrl == null && !run.PrivateBroker)
                throw new UsageException("--write needs a broker: --broker-url URL or --private-broker");
            if (run.ReceiversOnly && (demo != null || run.PrivateBroker || run.BrokerUrl != null))
                throw new UsageException("--receivers-only runs no writer; drop --write and the broker options");
            if (run.WriterShare.Count > 1 && run.BrokerUrl == null && !run.PrivateBroker)
                throw new UsageException("--writer-share needs a broker: --broker-url URL or --private-broker");
            if (demo != null && run.WriterShare.Count > 1 && run.WriterShare.Index != 0)
                throw new UsageException("--write with --writer-share: only the lead share (0/N) takes part in the request's statuses");
            if (run.WriterOnly && (run.ReceiversOnly || a.GetValue(simulate)))
                throw new UsageException("--writer-only runs no receivers: drop --receivers-only and --simulate");
            // Every option is checked here, before a ring or a port is taken.
            var simOptions = a.GetValue(simulate) ? sim.Read(a, config) : null;
            // Writing with no amount to send: the simulator sends until the write is done.
            if (simOptions != null && demo != null && !sim.AmountGiven(a))
                simOptions = simOptions with { Frames = long.MaxValue };
            return RunAsync(run, config, File.ReadAllText(path), simOptions, logger, ct).GetAwaiter().GetResult();
        });
        return command;
    }

    private sealed record DemoWrite(string File, long NImages, string Compression, bool Overwrite, double TimeoutS);

    /// <summary>What the command line asks of one `up`.</summary>
    private sealed record UpRun(string? BrokerUrl, bool PrivateBroker, bool ReceiversOnly, bool WriterOnly, bool Cleanup, DemoWrite? Write,
        ImageShare WriterShare);

    private static async Task<int> RunAsync(UpRun run, DetectorConfig config, string configText, SimOptions? simOptions,
        ILogger logger, CancellationToken ct)
    {
        var write = run.Write;
        using var quiet = ServiceHost.CreateLoggerFactory(LogLevel.Warning);
        PrivateBroker? broker = null;
        DaqPipeline? pipeline = null;
        using var simStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            string? brokerUrl = run.BrokerUrl;
            if (run.PrivateBroker)
            {
                Console.WriteLine("std-daq up: starting a private RabbitMQ on loopback ...");
                broker = await PrivateBroker.StartAsync(ct: ct);
                brokerUrl = broker.Url;
                Console.WriteLine($"std-daq up: RabbitMQ {broker.NodeName} on {broker.Url}");
            }
            pipeline = new DaqPipeline(config, new PipelineOptions
            {
                ReceiverModules = run.WriterOnly ? [] : null,
                Assembler = !run.ReceiversOnly && !run.WriterOnly,
                Writer = !run.ReceiversOnly,
                WriterOptions = new WriterOptions { ConfigText = configText },
                Agent = brokerUrl != null ? new WriterAgentOptions { BrokerUrl = brokerUrl, Share = run.WriterShare } : null,
                RemoveCreatedRings = run.Cleanup,
            }, quiet, ct);
            string stages = run.WriterOnly
                ? $"images from /dev/shm/{config.ImageBufferName} (made by a service), writer on {config.WriterAgentEndpoint}"
                : $"receiving on udp {config.StartUdpPort}..{config.UdpPort(config.NModules - 1)}";
            if (!run.ReceiversOnly && !run.WriterOnly)
                stages += $", assembling into /dev/shm/{config.ImageBufferName}, writer on {config.WriterAgentEndpoint}";
            if (brokerUrl != null)
                stages += $", WriterAgent on broker {brokerUrl}";
            Console.WriteLine($"std-daq up: {config.DetectorName} ({config.DetectorType}, {config.NModules} modules), {stages}");

            SimReport? report = null;
            Task<SimReport>? simTask = null;
            var sw = Stopwatch.StartNew();
            if (simOptions != null)
            {
                simTask = Task.Factory.StartNew(() =>
                {
                    using var sim = new DetectorSimulator(config, simOptions);
                    return sim.Run(simStop.Token);
                }, TaskCreationOptions.LongRunning);
            }

            int code = 0;
            if (write != null)
            {
                code = await DemoRequest.RunAsync(config, brokerUrl!, write.File, write.NImages, write.Compression, write.Overwrite,
                    TimeSpan.FromSeconds(write.TimeoutS), quiet.CreateLogger("std-daq"), ct);
                simStop.Cancel();
                if (simTask != null)
                    report = await simTask;
            }
            else if (simTask != null)
            {
                while (!simTask.Wait(1000))
                    Console.WriteLine(Live(pipeline, sw.Elapsed.TotalSeconds));
                report = simTask.Result;
                // The last frames arrive and close (at most a few frame timeouts), then the pipeline stops.
                var receivers = pipeline.Receivers;
                SpinWait.SpinUntil(() => receivers.Sum(r => r.Counters.Read().Frames) >= report.Frames,
                    TimeSpan.FromMilliseconds(config.UdpFrameTimeoutMs * 4 + 200));
            }
            else
            {
                while (!ct.WaitHandle.WaitOne(TimeSpan.FromSeconds(Math.Max(1, config.StatsCollectionPeriod))))
                    Console.WriteLine(Live(pipeline, sw.Elapsed.TotalSeconds));
            }
            await pipeline.StopAsync(TimeSpan.FromSeconds(30));
            int summary = write == null ? Summary(config, pipeline, report) : 0;
            return code != 0 ? code : summary;
        }
        finally
        {
            simStop.Cancel();
            if (pipeline != null)
                await pipeline.DisposeAsync();
            if (broker != null)
                await broker.DisposeAsync();
        }
    }

    private static string Live(DaqPipeline pipeline, double t)
    {
        var (assembler, writer) = (pipeline.Assembler, pipeline.Writer);
        var parts = pipeline.Receivers.Select(r =>
        {
            var c = r.Counters.Read();
            return $"m{r.ModuleId}: {c[ReceiverCounter.FramesComplete]} ok {c[ReceiverCounter.FramesIncomplete]} incomplete {c[ReceiverCounter.MissingPackets]} lost";
        }).ToList();
        if (assembler != null)
        {
            var c = assembler.Counters.Read();
            parts.Add($"images: {c[AssemblerCounter.ImagesGood]} good {c[AssemblerCounter.ImagesIncomplete]} incomplete");
        }
        if (writer != null)
            parts.Add($"written: {writer.Counters[WriterCounter.ImagesWritten]}");
        return $"[{t,6:F1} s] " + string.Join(" | ", parts);
    }

    private static int Summary(DetectorConfig config, DaqPipeline pipeline, SimReport? report)
    {
        var (receivers, assembler) = (pipeline.Receivers, pipeline.Assembler);
        Console.WriteLine("summary:");
        long complete = 0, incomplete = 0, missing = 0, drops = 0, malformed = 0;
        foreach (var r in receivers)
        {
            var c = r.Counters.Read();
            Console.WriteLine($"  module {r.ModuleId} (udp {r.Port}): {c.Format(0)}");
            complete += c[ReceiverCounter.FramesComplete];
            incomplete += c[ReceiverCounter.FramesIncomplete];
            missing += c[ReceiverCounter.MissingPackets];
            drops += c[ReceiverCounter.KernelDrops];
            malformed += c.Malformed;
        }
        Console.WriteLine($"  received: {complete} complete frames, {incomplete} incomplete, {missing} packets lost, {malformed} malformed, {drops} kernel drops");
        if (assembler != null)
        {
            var a = assembler.Counters.Read();
            Console.WriteLine($"  assembled: {a[AssemblerCounter.ImagesGood]} good images, {a[AssemblerCounter.ImagesIncomplete]} incomplete, {a[AssemblerCounter.ImagesIdMismatch]} id mismatch, " +
                $"{a[AssemblerCounter.ModulesMissing]} modules missing, {a[AssemblerCounter.FramesOverrun]} frames overrun");
        }
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
