using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace StdDaq.Shared.Metrics;

/// <summary>
/// A service's metrics over HTTP, beside its data path (like its Redis heartbeat): <c>GET /metrics</c>,
/// the Prometheus text exposition of its meter's instruments (the counters of a
/// <see cref="CounterSet{TName}"/> as <c>std_daq_&lt;prefix&gt;_&lt;key&gt;_total</c>, its gauges), and
/// <c>GET /stats</c>, the same counters and gauges as one JSON object. Observable instruments are read
/// when a scrape comes, so the hot paths only write their cells.
/// </summary>
/// <remarks>
/// OpenTelemetry's Prometheus exporter does the exposition: it maps System.Diagnostics.Metrics as
/// Prometheus expects (an observable counter is a <c>counter</c> named <c>…_total</c>, tags are labels,
/// the instrument's description is the HELP text); prometheus-net's MeterAdapter instead exports
/// counters as gauges named after the meter. The exporter's ASP.NET Core endpoint in a minimal
/// Kestrel app serves /stats beside it (its stand-alone HttpListener serves /metrics only). Kestrel's
/// threads are the thread pool's; no host lifetime of its own, so SIGTERM stays the program's.
/// </remarks>
public sealed partial class MetricsServer : IDisposable
{
    // Not a WebApplication field: loading this type must not load ASP.NET Core (see Serve).
    private readonly Func<CancellationToken, Task> _stop;
    private readonly IDisposable _app;

    /// <summary>Where it serves, e.g. <c>http://0.0.0.0:9100/metrics</c>.</summary>
    public string Url { get; }

    private MetricsServer(Func<CancellationToken, Task> stop, IDisposable app, string url)
    {
        _stop = stop;
        _app = app;
        Url = url;
    }

    /// <summary>
    /// Serves the instruments of <paramref name="counters"/>' meter on <paramref name="port"/> (every
    /// interface), each measurement tagged with <c>service</c> = <paramref name="service"/>, and says
    /// where in one line of <paramref name="logger"/>; port 0: serves nothing, says metrics are off,
    /// returns null. A port that cannot be bound (in use) is an <see cref="IOException"/> naming it.
    /// </summary>
    public static MetricsServer? Start<TName>(int port, string program, string service, CounterSet<TName> counters, ILogger logger)
        where TName : struct, Enum
    {
        if (port == 0)
        {
            LogOff(logger, program, service);
            return null;
        }
        return Serve(port, program, service, counters, logger);
    }

    // Not inlined into Start: a service whose metrics are off never loads ASP.NET Core's assemblies
    // (the JIT loads what a method refers to when it compiles it).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static MetricsServer Serve<TName>(int port, string program, string service, CounterSet<TName> counters, ILogger logger)
        where TName : struct, Enum
    {
        counters.SetTag("service", service);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            // Not the working directory: no appsettings.json found there changes the server.
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IHostLifetime, NoHostLifetime>();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Any, port));
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(service))
            .WithMetrics(m => m.AddMeter(counters.Meter.Name).AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        var app = builder.Build();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/stats", (HttpContext context) => WriteStats(context, program, service, counters));
        try
        {
            app.StartAsync().GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            ((IDisposable)app).Dispose();
            if (e is IOException)
            {
                // Kestrel: "Failed to bind to address http://0.0.0.0:N: address already in use."
                string reason = e.Message;
                for (var inner = e.InnerException; inner != null; inner = inner.InnerException)
                    if (inner is SocketException socket)
                        reason = socket.Message;
                throw new IOException($"metrics port {port}: cannot listen on 0.0.0.0:{port}: {reason}", e);
            }
            throw;
        }
        var server = new MetricsServer(app.StopAsync, app, $"http://0.0.0.0:{port}/metrics");
        LogServing(logger, program, service, server.Url, port);
        return server;
    }

    private static async Task WriteStats<TName>(HttpContext context, string program, string service, CounterSet<TName> counters)
        where TName : struct, Enum
    {
        context.Response.ContentType = "application/json";
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("service", service);
            json.WriteString("program", program);
            json.WriteStartObject("labels");
            foreach (var (key, value) in counters.Tags)
                json.WriteString(key, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture));
            json.WriteEndObject();
            counters.WriteStats(json);
            json.WriteEndObject();
        }
        await context.Response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
    }

    /// <summary>Stops serving (bounded: a scrape in progress gets 2 s).</summary>
    public void Dispose()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            _stop(timeout.Token).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
        }
        _app.Dispose();
    }

    /// <summary>The host's lifetime without the console's signal handlers: the program's own handle SIGINT/SIGTERM.</summary>
    private sealed class NoHostLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Program} {Service}: metrics on {Url} (and /stats), port {Port}")]
    private static partial void LogServing(ILogger logger, string program, string service, string url, int port);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Program} {Service}: metrics off (--metrics-port N or the config's metrics ports)")]
    private static partial void LogOff(ILogger logger, string program, string service);
}
