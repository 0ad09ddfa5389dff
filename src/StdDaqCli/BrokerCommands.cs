using System.CommandLine;
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
    public static Command Write()
    {
        var output = new Argument<string>("output_file") { Description = "the HDF5 file to write (a relative path is made absolute here)" };
        var count = new Argument<long>("n_images")
        {
            Description = "how many images to write",
            CustomParser = r =>
            {
                string s = r.Tokens[0].Value;
                if (long.TryParse(s, out long n) && n >= 1)
                    return n;
                r.AddError($"<n_images> must be a positive integer, got '{s}'");
                return 0;
            },
        };
        var wait = CliOptions.Flag("--wait", "show the progress and wait for the final status (exit 1 if the request fails)");
        var timeout = CliOptions.Number("--timeout", "S", "with --wait, give up after S seconds; 0 = no limit", 0.0, 0);
        var brokerUrl = BrokerUrl();
        var tag = Tag();
        var compression = CliOptions.Text("--compression", "none|bitshuffle-lz4", "the file's compression (default: the agent's, none)");
        var overwrite = CliOptions.Flag("--overwrite", "replace the file if it exists (only a regular HDF5 file)");
        var runId = CliOptions.OptionalNumber<long>("--run-id", "N", "the run's id (default: the agent's, milliseconds since the epoch)", 0);
        var startImageId = CliOptions.OptionalNumber<long>("--start-image-id", "N", "skip images older than this image id", 0);
        var command = new Command("write", "Sends a write request to the WriterAgent through the broker and prints its request id.")
        {
            output, count, wait, timeout, brokerUrl, tag, compression, overwrite, runId, startImageId,
        };
        command.SetBody((a, logger, ct) =>
        {
            long n = a.GetValue(count);
            // The agent takes absolute paths only; a relative one is meant from here.
            string file = Path.GetFullPath(a.GetValue(output)!);
            var body = new JsonObject { ["output_file"] = file, ["n_images"] = n };
            if (a.GetValue(compression) is { } c)
                body["compression"] = c;
            if (a.GetValue(overwrite))
                body["overwrite"] = true;
            if (a.GetValue(runId) is { } run)
                body["run_id"] = run;
            if (a.GetValue(startImageId) is { } start)
                body["start_image_id"] = start;
            double seconds = a.GetValue(timeout);
            return WriteAsync(a.GetValue(brokerUrl), a.GetValue(tag) ?? "", body.ToJsonString(), n, a.GetValue(wait),
                seconds > 0 ? TimeSpan.FromSeconds(seconds) : Timeout.InfiniteTimeSpan, ct).GetAwaiter().GetResult();
        });
        return command;
    }

    private static Option<string?> BrokerUrl() =>
        CliOptions.Text("--broker-url", "URL", "the RabbitMQ broker: host[:port] or amqp:// URI (default: env BROKER_HOST, else 127.0.0.1)");

    private static Option<string?> Tag() => CliOptions.Text("--tag", "TAG", "the routing key: the tag of the agent meant (default: empty)");

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

    public static Command Kill()
    {
        var requestId = new Argument<string>("request_id") { Description = "the id std-daq write printed" };
        var brokerUrl = BrokerUrl();
        var tag = Tag();
        var command = new Command("kill", "Ends a running write request early: the file is closed and marked interrupted.")
        {
            requestId, brokerUrl, tag,
        };
        command.SetBody((a, logger, ct) => Run(async () =>
        {
            string id = a.GetValue(requestId)!;
            await using var client = await BrokerClient.ConnectAsync(a.GetValue(brokerUrl), QuietLogger, ct);
            await client.SendKillAsync(id, a.GetValue(tag) ?? "", ct);
            Console.WriteLine($"kill sent for request {id}");
            return 0;
        }));
        return command;
    }

    public static Command Monitor()
    {
        var brokerUrl = BrokerUrl();
        var seconds = CliOptions.Number("--seconds", "S", "stop after S seconds; 0 = until Ctrl-C", 0.0, 0);
        var command = new Command("monitor", "Prints every status message: time, request id, service, action, message; `monitor poll` polls services' /stats.")
        {
            brokerUrl, seconds, MonitorPoll.Create(),
        };
        command.SetBody((a, logger, ct) => Run(async () =>
        {
            await using var client = await BrokerClient.ConnectAsync(a.GetValue(brokerUrl), QuietLogger, ct, monitor: true);
            Console.Error.WriteLine($"std-daq monitor: status messages on {client.Address} (Ctrl-C ends)");
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (a.GetValue(seconds) is > 0 and var s)
                cts.CancelAfter(TimeSpan.FromSeconds(s));
            try
            {
                await foreach (var status in client.Statuses.ReadAllAsync(cts.Token))
                    Console.WriteLine(Line(status));
            }
            catch (OperationCanceledException)
            {
            }
            return 0;
        }));
        return command;
    }

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
