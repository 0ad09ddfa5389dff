using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Agent;
using StdDaq.Agent.Broker;
using StdDaq.Cli.Sim;
using StdDaq.Pipeline;
using StdDaq.Shared.Config;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;
using StdDaq.UdpRecv;
using StdDaq.Writer;

namespace StdDaq.Tests.Writer;

/// <summary>
/// The writer path of one test, all real: frames (the UDP simulator and receivers, or a
/// <see cref="ModuleFrameSource"/>) → assembler → ImageBuffer + ImageMetadata → WriterAgent
/// (RabbitMQ) → StoreStream → StdH5Writer → HDF5 file; and a broker client that sends requests
/// and collects statuses. A 2-module JUNGFRAU (raw) with a unique name, ports and rings.
/// </summary>
public sealed class WriterPipeline : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private readonly ModuleFrameSource? _source;
    private readonly Action<int, ulong, Span<byte>>? _frames;
    private readonly DaqPipeline _pipeline;

    public DetectorConfig Config { get; }
    /// <summary>Without UDP: modules whose frames are not sent (a dead receiver).</summary>
    public HashSet<int> SilentModules { get; } = [];
    public StdDaq.Assembler.Assembler Assembler => _pipeline.Assembler!;
    public WriterService Writer => _pipeline.Writer!;
    /// <summary>The in-process agent (none when the test runs the agent as a process).</summary>
    public WriterAgentService Agent => _pipeline.Agent ?? throw new InvalidOperationException("this pipeline has no in-process agent");
    public BrokerClient Client { get; private set; } = null!;
    /// <summary>Every status seen by the client, in order.</summary>
    public List<BrokerStatus> Statuses { get; } = [];

    private WriterPipeline(TestEnv env, string brokerUrl, bool udp, double rate, Func<DetectorConfig, DetectorConfig>? tweak,
        WriterOptions? writerOptions, bool agent, Action<int, ulong, Span<byte>>? frames, Func<WriterAgentOptions, WriterAgentOptions>? agentOptions)
    {
        _frames = frames;
        env.Ring("image");
        // A deep image ring (256 images, 1.3 s at 200 Hz): under CPU starvation (2 cores shared
        // with the test) the writer's first image (file creation, plugin load, code compiled) can
        // take long; these tests check the writer, not how a starved writer copes (the
        // lapped-writer test does that). The assembler runs with the default timeout. Over UDP,
        // a receiver closes a frame 500 ms after its last packet (not 50): the simulator's thread
        // may stall that long mid-frame on a busy machine, and no packet is lost on loopback.
        var config = env.Config("jungfrau-raw", 2, 16, 1024, 1024, TestEnv.JungfrauColumn(2), slots: 64, timeoutMs: 500) with { ImageBufferSlots = 256 };
        Config = tweak?.Invoke(config) ?? config;
        if (!udp)
            _source = new ModuleFrameSource(Config);
        _pipeline = new DaqPipeline(Config, new PipelineOptions
        {
            ReceiverModules = udp ? null : [],
            Bind = System.Net.IPAddress.Loopback,
            WriterOptions = writerOptions ?? new WriterOptions { ConfigText = "{\"test\": true}" },
            Agent = agent
                ? (agentOptions ?? (o => o))(new WriterAgentOptions
                {
                    BrokerUrl = brokerUrl,
                    Tag = Config.DetectorName,
                    ReconnectGrace = TimeSpan.FromSeconds(1),
                    ProgressInterval = TimeSpan.FromMilliseconds(200),
                })
                : null,
        }, NullLoggerFactory.Instance);
        if (udp)
        {
            var sim = new DetectorSimulator(Config, new SimOptions { Rate = rate, Frames = long.MaxValue });
            _tasks.Add(Task.Factory.StartNew(() =>
            {
                using (sim)
                    sim.Run(_stop.Token);
            }, TaskCreationOptions.LongRunning));
        }
        else
        {
            _tasks.Add(Task.Factory.StartNew(() => Feed(rate), TaskCreationOptions.LongRunning));
        }
    }

    /// <summary>
    /// Starts the pipeline. Without UDP, <paramref name="frames"/> (module, image id, frame bytes in
    /// packet order) writes each frame's pixels; null: the simulator's pattern.
    /// </summary>
    public static async Task<WriterPipeline> StartAsync(TestEnv env, string brokerUrl, bool udp = false, double rate = 200,
        Func<DetectorConfig, DetectorConfig>? tweak = null, WriterOptions? writerOptions = null, bool agent = true,
        Action<int, ulong, Span<byte>>? frames = null, Func<WriterAgentOptions, WriterAgentOptions>? agentOptions = null)
    {
        var p = new WriterPipeline(env, brokerUrl, udp, rate, tweak, writerOptions, agent, frames, agentOptions);
        try
        {
            if (p._pipeline.Agent is { } a)
                await a.WaitConnectedAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
            p.Client = await BrokerClient.ConnectAsync(brokerUrl, NullLogger.Instance, CancellationToken.None);
            return p;
        }
        catch
        {
            await p.DisposeAsync();
            throw;
        }
    }

    /// <summary>The routing key the agent of this pipeline binds (its detector name).</summary>
    public string Tag => Config.DetectorName;

    /// <summary>Sends a request body and returns its id.</summary>
    public Task<string> SendAsync(string body, string? requestId = null) => Client.SendRequestAsync(body, Tag, CancellationToken.None, requestId);

    public static string Body(string file, long n, string? extra = null) =>
        $"{{\"output_file\": {JsonSerializer.Serialize(file)}, \"n_images\": {n}{(extra == null ? "" : ", " + extra)}}}";

    /// <summary>Waits for the request's final status; every status of it goes to <see cref="Statuses"/>.</summary>
    public async Task<BrokerStatus> FinalAsync(string requestId, TimeSpan timeout, Action<BrokerStatus>? onStatus = null)
    {
        var final = await Client.WaitFinalAsync(requestId, timeout, s =>
        {
            lock (Statuses)
                Statuses.Add(s);
            onStatus?.Invoke(s);
        }, CancellationToken.None);
        return final ?? throw new TimeoutException($"no final status for request {requestId} within {timeout.TotalSeconds:F0} s; saw: " +
            string.Join(" | ", Statuses.Where(s => s.RequestId == requestId).Select(s => $"{s.Action} {s.Message}")));
    }

    public async Task<BrokerStatus> WriteAsync(string body, TimeSpan timeout) => await FinalAsync(await SendAsync(body), timeout);

    public List<BrokerStatus> StatusesOf(string requestId)
    {
        lock (Statuses)
            return Statuses.Where(s => s.RequestId == requestId).ToList();
    }

    /// <summary>Replaces the broker client (after a broker restart the old one reconnects too, but a test may want a fresh one).</summary>
    public async Task ReconnectClientAsync(string brokerUrl)
    {
        await Client.DisposeAsync();
        Client = await BrokerClient.ConnectAsync(brokerUrl, NullLogger.Instance, CancellationToken.None);
    }

    private void Feed(double rate)
    {
        var source = _source!;
        source.WaitForSubscribers(TimeSpan.FromSeconds(10));
        var sw = Stopwatch.StartNew();
        for (ulong id = 1; !_stop.IsCancellationRequested; id++)
        {
            for (int m = 0; m < Config.NModules; m++)
                if (!SilentModules.Contains(m))
                    source.Publish(_frames == null ? source.WritePattern(m, id) : source.Write(m, id, f => _frames(m, id, f)));
            double due = id / rate;
            double wait = due - sw.Elapsed.TotalSeconds;
            if (wait > 0)
                Thread.Sleep(TimeSpan.FromSeconds(wait));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            await Task.WhenAll(_tasks).WaitAsync(TimeSpan.FromSeconds(15));
        }
        catch (OperationCanceledException)
        {
        }
        if (Client != null)
            await Client.DisposeAsync();
        await _pipeline.DisposeAsync();
        _source?.Dispose();
        _stop.Dispose();
    }
}
