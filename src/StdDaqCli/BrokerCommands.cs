using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using StdDaq.Agent.Broker;
using StdDaq.Shared.Hosting;

namespace StdDaq.Cli;

/// <summary>
/// The broker client commands: `write` (a write request, optionally waiting for its end with a
/// progress bar), `kill` and `monitor` (every status message, one line each).
/// </summary>
internal static class BrokerCommands
{
    private const string WriteUsage = """
        std-daq write <output_file> <n_images> [--wait] [--timeout S] [--broker-url URL] [--tag TAG]
                      [--compression none|bitshuffle-lz4] [--overwrite] [--run-id N] [--start-image-id N]
        """;
    private const string KillUsage = "std-daq kill <request_id> [--broker-url URL] [--tag TAG]";
    private const string MonitorUsage = "std-daq monitor [--broker-url URL] [--seconds S]";

    public static int Write(string[] args) => ServiceHost.Run("std-daq write", args, WriteUsage, (a, logger, ct) =>
    {
        if (a.Positional.Count != 2)
            throw new UsageException("expected <output_file> <n_images>");
        if (!long.TryParse(a.Positional[1], out long n) || n < 1)
            throw new UsageException($"<n_images> must be a positive integer, got '{a.Positional[1]}'");
        // The agent takes absolute paths only; a relative one is meant from here.
        string file = Path.GetFullPath(a.Positional[0]);
        var body = new JsonObject { ["output_file"] = file, ["n_images"] = n };
        if (a.Option("compression") is { } c)
            body["compression"] = c;
        if (a.Flag("overwrite"))
            body["overwrite"] = true;
        if (a.Option("run-id") != null)
            body["run_id"] = a.Long("run-id", 0, 0);
        if (a.Option("start-image-id") != null)
            body["start_image_id"] = a.Long("start-image-id", 0, 0);
        double timeout = a.Double("timeout", 0, 0);
        return WriteAsync(a.Option("broker-url"), a.Option("tag") ?? "", body.ToJsonString(), n, a.Flag("wait"),
            timeout > 0 ? TimeSpan.FromSeconds(timeout) : Timeout.InfiniteTimeSpan, ct).GetAwaiter().GetResult();
    }, ["broker-url", "tag", "timeout", "compression", "run-id", "start-image-id"], ["wait", "overwrite"]);

    private static async Task<int> WriteAsync(string? url, string tag, string body, long n, bool wait, TimeSpan timeout,
        CancellationToken ct)
    {
        await using var client = await BrokerClient.ConnectAsync(url, QuietLogger, ct);
        string id = await client.SendRequestAsync(body, tag, ct);
        Console.WriteLine(id);
        if (!wait)
            return 0;
        return (await WaitAsync(client, id, n, timeout, ct)).Code;
    }

    /// <summary>Shows the request's progress as a bar until its final status; prints that and returns exit code and status.</summary>
    public static async Task<(int Code, BrokerStatus? Final)> WaitAsync(BrokerClient client, string id, long n, TimeSpan timeout, CancellationToken ct)
    {
        var bar = new ProgressBar(n);
        var final = await client.WaitFinalAsync(id, timeout, s =>
        {
            if (s.Action == BrokerProtocol.ActionProgress && Number(s.Message, "n_images_written") is { } w)
                bar.Show(w);
        }, ct);
        if (final == null)
        {
            bar.End();
            Console.Error.WriteLine(ct.IsCancellationRequested
                ? $"std-daq write: stopped waiting; request {id} goes on (std-daq kill {id} ends it)"
                : $"std-daq write: no final status for request {id} within {timeout.TotalSeconds:F0} s");
            return (1, null);
        }
        if (final.Action == BrokerProtocol.ActionSuccess && Number(final.Message, "n_images_written") is { } written)
            bar.Show(written);
        bar.End();
        Console.WriteLine($"{final.Action} from {final.Source}: {final.Message}");
        return (final.Action == BrokerProtocol.ActionSuccess ? 0 : 1, final);
    }

    public static int Kill(string[] args) => ServiceHost.Run("std-daq kill", args, KillUsage, (a, logger, ct) =>
    {
        if (a.Positional.Count != 1)
            throw new UsageException("expected <request_id>");
        return Run(async () =>
        {
            await using var client = await BrokerClient.ConnectAsync(a.Option("broker-url"), QuietLogger, ct);
            await client.SendKillAsync(a.Positional[0], a.Option("tag") ?? "", ct);
            Console.WriteLine($"kill sent for request {a.Positional[0]}");
            return 0;
        });
    }, ["broker-url", "tag"]);

    public static int Monitor(string[] args) => ServiceHost.Run("std-daq monitor", args, MonitorUsage, (a, logger, ct) =>
    {
        if (a.Positional.Count != 0)
            throw new UsageException("unexpected arguments");
        double seconds = a.Double("seconds", 0, 0);
        return Run(async () =>
        {
            await using var client = await BrokerClient.ConnectAsync(a.Option("broker-url"), QuietLogger, ct, monitor: true);
            Console.Error.WriteLine($"std-daq monitor: status messages on {client.Address} (Ctrl-C ends)");
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (seconds > 0)
                cts.CancelAfter(TimeSpan.FromSeconds(seconds));
            try
            {
                await foreach (var s in client.Statuses.ReadAllAsync(cts.Token))
                    Console.WriteLine(Line(s));
            }
            catch (OperationCanceledException)
            {
            }
            return 0;
        });
    }, ["broker-url", "seconds"]);

    /// <summary>One status as a line: time, request id, service, action, message.</summary>
    public static string Line(BrokerStatus s) =>
        $"{s.Time:yyyy-MM-ddTHH:mm:ss.fff} {s.RequestId} {s.Source} {s.Action} {s.Message ?? "-"}";

    private static int Run(Func<Task<int>> body) => body().GetAwaiter().GetResult();

    private static readonly Lazy<ILoggerFactory> Warnings = new(() => ServiceHost.CreateLoggerFactory(LogLevel.Warning));

    /// <summary>The client's own log: warnings only (reconnects), so stdout stays the command's output.</summary>
    public static ILogger QuietLogger => Warnings.Value.CreateLogger("std-daq");

    public static long? Number(string? json, string key)
    {
        if (json == null || !json.StartsWith('{'))
            return null;
        try
        {
            return JsonNode.Parse(json)?[key]?.GetValue<long>();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    /// <summary>A one-line bar redrawn in place on a terminal; a line per 10 % otherwise.</summary>
    private sealed class ProgressBar(long total)
    {
        private long _shown = -1;
        private readonly bool _tty = !Console.IsOutputRedirected;

        public void Show(long done)
        {
            if (done == _shown)
                return;
            if (!_tty && _shown >= 0 && done * 10 / total == _shown * 10 / total && done != total)
                return;
            _shown = done;
            int width = 40, filled = (int)(width * Math.Min(done, total) / total);
            string line = $"[{new string('#', filled)}{new string('.', width - filled)}] {done}/{total} images";
            if (_tty)
                Console.Write("\r" + line);
            else
                Console.WriteLine(line);
        }

        public void End()
        {
            if (_tty && _shown >= 0)
                Console.WriteLine();
        }
    }
}
