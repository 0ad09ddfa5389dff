using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using StdDaq.Shared.Hosting;

namespace StdDaq.Cli;

/// <summary>
/// <c>std-daq monitor poll</c>: polls every named service's <c>/stats</c> on a fixed schedule and
/// writes one JSON line per poll, <c>{"time", "poll", "late_s", "replies": {url: {"data", "delta",
/// "restarted", "latency_ms"} | {"error", "latency_ms"}}}</c>, made with System.Text.Json (always valid,
/// whatever a reply holds). What changed since the last poll is printed as text (a counter that went
/// back is a restart, never a negative rate); a poll that started late says so; at the end, each
/// service's reply latency as <c>mean±stderr (count, min, 1%, 10%, median, 90%, 99%, max)</c>, over
/// every sample (none dropped).
/// </summary>
internal static class MonitorPoll
{
    public static Command Create()
    {
        var urls = new Argument<string[]>("url") { Description = "a service's metrics address: http://host:port (its /stats is read) or host:port", Arity = ArgumentArity.OneOrMore };
        var period = CliOptions.Number("--period", "S", "seconds between polls (on a fixed schedule)", 10.0, 0.05, 86400);
        var output = CliOptions.Text("-o", "FILE", "write the JSON lines to FILE (default: standard output, and the changes to standard error)");
        var append = CliOptions.Flag("-a", "with -o: append to FILE instead of replacing it");
        var count = CliOptions.Number("--count", "N", "stop after N polls; 0 = until Ctrl-C", 0, 0);
        var command = new Command("poll", "Polls services' /stats on a schedule: one JSON line per poll, the changes since the last poll, reply latencies at the end.")
        {
            urls, period, output, append, count,
        };
        command.SetBody((a, logger, ct) =>
        {
            string[] targets = a.GetValue(urls)!.Select(Normalize).ToArray();
            if (a.GetValue(append) && a.GetValue(output) == null)
                throw new UsageException("-a goes with -o FILE");
            return Run(targets, TimeSpan.FromSeconds(a.GetValue(period)), a.GetValue(output), a.GetValue(append), a.GetValue(count), ct)
                .GetAwaiter().GetResult();
        });
        return command;
    }

    /// <summary>"host:port" or "http://host:port[/]" → "http://host:port/stats"; a path given is kept.</summary>
    private static string Normalize(string url)
    {
        string u = url.Contains("://", StringComparison.Ordinal) ? url : $"http://{url}";
        if (!Uri.TryCreate(u, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Port <= 0)
            throw new UsageException($"url '{url}' is not http://host:port or host:port");
        return uri.AbsolutePath is "" or "/" ? $"{uri.Scheme}://{uri.Authority}/stats" : uri.ToString();
    }

    private static async Task<int> Run(string[] targets, TimeSpan period, string? outputPath, bool append, int count, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(Math.Clamp(period.TotalSeconds, 1, 10)) };
        await using var file = outputPath == null ? null : new StreamWriter(outputPath, append) { AutoFlush = true };
        TextWriter lines = file ?? Console.Out;
        TextWriter changes = file == null ? Console.Error : Console.Out;
        var previous = new Dictionary<string, Dictionary<string, long>>();
        var latencies = targets.ToDictionary(t => t, _ => new List<double>());
        var clock = Stopwatch.StartNew();
        int polls = 0;
        try
        {
            while (!ct.IsCancellationRequested && (count == 0 || polls < count))
            {
                var due = period * polls;
                var wait = due - clock.Elapsed;
                if (wait > TimeSpan.Zero)
                    await Task.Delay(wait, ct);
                double late = (clock.Elapsed - due).TotalSeconds;
                var time = DateTimeOffset.UtcNow;
                var replies = await Task.WhenAll(targets.Select(t => Poll(http, t, ct)));
                var record = new JsonObject
                {
                    ["time"] = time.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
                    ["poll"] = polls,
                };
                // Late: started more than a quarter period (and 50 ms) after its slot.
                bool isLate = late > Math.Max(0.05, period.TotalSeconds / 4);
                if (isLate)
                {
                    record["late_s"] = Math.Round(late, 3);
                    changes.WriteLine($"{time:HH:mm:ss.fff} poll {polls} ran {late:F3} s late");
                }
                var replyObject = new JsonObject();
                for (int i = 0; i < targets.Length; i++)
                {
                    var (data, error, ms) = replies[i];
                    latencies[targets[i]].Add(ms);
                    var reply = new JsonObject();
                    if (data != null)
                    {
                        reply["data"] = data;
                        var counters = Counters(data);
                        if (previous.TryGetValue(targets[i], out var before))
                        {
                            bool restarted = counters.Any(c => before.TryGetValue(c.Key, out long b) && c.Value < b);
                            var delta = new JsonObject();
                            foreach (var (key, value) in counters)
                            {
                                // After a restart the counters start again from 0: the new value is the change.
                                long d = restarted ? value : value - before.GetValueOrDefault(key);
                                if (d != 0)
                                    delta[key] = d;
                            }
                            reply["delta"] = delta;
                            if (restarted)
                                reply["restarted"] = true;
                            Print(changes, time, targets[i], data, delta, restarted, polls == 0 ? 0 : period.TotalSeconds);
                        }
                        previous[targets[i]] = counters;
                    }
                    else
                    {
                        reply["error"] = error;
                        changes.WriteLine($"{time:HH:mm:ss.fff} {targets[i]}: {error}");
                    }
                    reply["latency_ms"] = Math.Round(ms, 3);
                    replyObject[targets[i]] = reply;
                }
                record["replies"] = replyObject;
                lines.WriteLine(record.ToJsonString());
                polls++;
            }
        }
        catch (OperationCanceledException)
        {
        }
        foreach (var (target, samples) in latencies)
            changes.WriteLine($"{target} reply latency (ms): {Summary(samples)}");
        return 0;
    }

    private static async Task<(JsonNode? Data, string? Error, double Ms)> Poll(HttpClient http, string url, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            using var response = await http.GetAsync(url, ct);
            string body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode)
                return (null, $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", sw.Elapsed.TotalMilliseconds);
            try
            {
                return (JsonNode.Parse(body), null, sw.Elapsed.TotalMilliseconds);
            }
            catch (JsonException e)
            {
                return (null, $"not JSON: {e.Message}", sw.Elapsed.TotalMilliseconds);
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return (null, e is TaskCanceledException ? $"no answer within {http.Timeout.TotalSeconds:0.#} s" : e.Message, sw.Elapsed.TotalMilliseconds);
        }
    }

    /// <summary>The reply's counters (its "counters" object of numbers).</summary>
    private static Dictionary<string, long> Counters(JsonNode data)
    {
        var counters = new Dictionary<string, long>();
        if (data["counters"] is JsonObject c)
            foreach (var (key, value) in c)
                if (value is JsonValue v && v.TryGetValue(out long n))
                    counters[key] = n;
        return counters;
    }

    private static void Print(TextWriter to, DateTimeOffset time, string url, JsonNode data, JsonObject delta, bool restarted, double seconds)
    {
        string who = data["service"]?.GetValue<string>() is { } s ? $"{s} ({url})" : url;
        if (restarted)
            to.WriteLine($"{time:HH:mm:ss.fff} {who}: restarted (its counters started again)");
        if (delta.Count == 0)
            return;
        var parts = delta.Select(d => seconds > 0
            ? $"{d.Key} +{d.Value} ({d.Value!.GetValue<long>() / seconds:0.##}/s)"
            : $"{d.Key} +{d.Value}");
        to.WriteLine($"{time:HH:mm:ss.fff} {who}: {string.Join(", ", parts)}");
    }

    /// <summary><c>mean±stderr (count, min, 1%, 10%, median, 90%, 99%, max)</c> of every sample.</summary>
    public static string Summary(IReadOnlyCollection<double> samples)
    {
        if (samples.Count == 0)
            return "no samples";
        var sorted = samples.Order().ToArray();
        double mean = sorted.Average();
        double stderr = sorted.Length > 1
            ? Math.Sqrt(sorted.Sum(x => (x - mean) * (x - mean)) / (sorted.Length - 1) / sorted.Length)
            : 0;
        double Q(double q) => sorted[(int)Math.Min(sorted.Length - 1, Math.Floor(q * (sorted.Length - 1) + 0.5))];
        string F(double x) => x.ToString("0.###", CultureInfo.InvariantCulture);
        return $"{F(mean)}±{F(stderr)} ({sorted.Length}, {F(sorted[0])}, {F(Q(0.01))}, {F(Q(0.10))}, {F(Q(0.5))}, {F(Q(0.9))}, {F(Q(0.99))}, {F(sorted[^1])})";
    }
}
