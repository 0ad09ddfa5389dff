using System.Diagnostics;
using System.Net.Http;
using System.Text.Json.Nodes;
using StdDaq.Tests.Stream;

namespace StdDaq.Tests.Support;

/// <summary>
/// A private Prometheus server (Debian's package) on a free loopback port, scraping the given
/// targets every second under the job "std-daq", with the given rule files; its storage in a
/// folder of its own, removed at dispose with the process.
/// </summary>
public sealed class PrometheusServer : IDisposable
{
    private static readonly HttpClient s_http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly Process _process;

    public int Port { get; }
    public string Dir { get; }
    public string Url => $"http://127.0.0.1:{Port}";

    public PrometheusServer(IEnumerable<string> targets, IEnumerable<string>? ruleFiles = null)
    {
        if (!File.Exists("/usr/bin/prometheus"))
            Assert.Fail("prometheus is not installed (Debian package prometheus; scripts/setup.sh installs it)");
        Port = StreamSource.FreeTcpPort();
        Dir = Path.Combine(Path.GetTempPath(), "stddaq-tests", $"prometheus-{Environment.ProcessId}-{Port}");
        Directory.CreateDirectory(Path.Combine(Dir, "data"));
        string rules = ruleFiles == null ? "" : "rule_files: [" + string.Join(", ", ruleFiles.Select(f => $"'{f}'")) + "]\n";
        File.WriteAllText(Path.Combine(Dir, "prometheus.yml"),
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n" + rules +
            "scrape_configs:\n  - job_name: std-daq\n    static_configs: [{targets: [" +
            string.Join(", ", targets.Select(t => $"'{t}'")) + "]}]\n");
        var psi = new ProcessStartInfo("/usr/bin/prometheus")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { $"--config.file={Dir}/prometheus.yml", $"--storage.tsdb.path={Dir}/data",
                     $"--web.listen-address=127.0.0.1:{Port}" })
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                if (s_http.GetAsync($"{Url}/-/ready").Result.IsSuccessStatusCode)
                    break;
            }
            catch (AggregateException)
            {
            }
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                Dispose();
                Assert.Fail($"prometheus on port {Port} did not become ready");
            }
            Thread.Sleep(200);
        }
    }

    /// <summary>An instant query's result vector (empty when the query has no data).</summary>
    public JsonArray Query(string promql)
    {
        string body = s_http.GetStringAsync($"{Url}/api/v1/query?query={Uri.EscapeDataString(promql)}").Result;
        var json = JsonNode.Parse(body)!;
        Assert.True(json["status"]?.GetValue<string>() == "success", $"query {promql}: {body}");
        return json["data"]!["result"] as JsonArray ?? [];
    }

    /// <summary>Polls <paramref name="promql"/> until it returns data (the result), failing after the timeout.</summary>
    public JsonArray WaitFor(string promql, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var r = Query(promql);
            if (r.Count > 0)
                return r;
            Assert.True(DateTime.UtcNow < deadline, $"no data for {promql} within {timeout.TotalSeconds:0} s");
            Thread.Sleep(1000);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
