using System.Net;
using Microsoft.Extensions.Logging;
using StdDaq.Agent;
using StdDaq.Assembler;
using StdDaq.Shared.Config;
using StdDaq.Shared.Memory;
using StdDaq.UdpRecv;
using StdDaq.Writer;

namespace StdDaq.Pipeline;

/// <summary>Which stages a <see cref="DaqPipeline"/> runs in this process, and how.</summary>
public sealed record PipelineOptions
{
    /// <summary>Modules whose receivers run here; null: every module; empty: none (frames come from elsewhere).</summary>
    public IReadOnlyList<int>? ReceiverModules { get; init; }
    /// <summary>The receivers' bind address; null: any.</summary>
    public IPAddress? Bind { get; init; }
    /// <summary>Run the assembler (and, with <see cref="Writer"/>, the writer).</summary>
    public bool Assembler { get; init; } = true;
    public AssemblerOptions? AssemblerOptions { get; init; }
    public bool Writer { get; init; } = true;
    public WriterOptions? WriterOptions { get; init; }
    /// <summary>The WriterAgent's options; null: no agent (no broker).</summary>
    public WriterAgentOptions? Agent { get; init; }
    /// <summary>
    /// Remove the rings this pipeline created when it is disposed, or when it fails to start; never
    /// those it found made by another process (a pipeline already running).
    /// </summary>
    public bool RemoveCreatedRings { get; init; }
}

/// <summary>
/// The pipeline's composition in one place: which stages, in which order, on which endpoints (all
/// from the detector config), each on its own thread or task in this process. Receivers first
/// (they make the FrameBuffers), then the assembler (it waits for them and makes the ImageBuffer),
/// the writer, the agent. <c>std-daq up</c>, the tests and the benchmarks build it the same way;
/// the services run the same stages one per process.
/// </summary>
public sealed class DaqPipeline : IAsyncDisposable, IDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly List<Task> _tasks = [];
    private readonly List<UdpReceiver> _receivers = [];
    private readonly List<string> _created = [];
    private readonly bool _removeCreated;

    public DetectorConfig Config { get; }
    public IReadOnlyList<UdpReceiver> Receivers => _receivers;
    public StdDaq.Assembler.Assembler? Assembler { get; }
    public WriterService? Writer { get; }
    public WriterAgentService? Agent { get; }

    /// <summary>The rings this pipeline created (not those it found made by another process).</summary>
    public IReadOnlyList<string> CreatedRings => _created;

    /// <summary>Builds and starts the stages; <paramref name="startup"/> ends the waits for peers early.</summary>
    public DaqPipeline(DetectorConfig config, PipelineOptions options, ILoggerFactory loggers, CancellationToken startup = default)
    {
        Config = config;
        _removeCreated = options.RemoveCreatedRings;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(startup);
        try
        {
            foreach (int m in options.ReceiverModules ?? Enumerable.Range(0, config.NModules))
            {
                var r = new UdpReceiver(config, m, loggers.CreateLogger($"StdUdpRecv-{m}"), options.Bind);
                _receivers.Add(r);
                if (r.Ring.Created)
                    _created.Add(r.Ring.Name);
            }
            _tasks.AddRange(_receivers.Select(r => r.RunAsync(_stop.Token)));
            if (options.Assembler)
            {
                Assembler = new StdDaq.Assembler.Assembler(config, loggers.CreateLogger("StdAssembler"), options.AssemblerOptions, startup: startup);
                if (Assembler.ImageRing.Created)
                    _created.Add(Assembler.ImageRing.Name);
                _tasks.Add(Assembler.RunAsync(_stop.Token));
            }
            if (options.Writer)
            {
                Writer = new WriterService(config, options.WriterOptions ?? new WriterOptions(), loggers.CreateLogger("StdH5Writer"));
                _tasks.Add(Writer.RunAsync(_stop.Token));
            }
            if (options.Agent != null)
            {
                Agent = new WriterAgentService(config, options.Agent, loggers.CreateLogger("WriterAgent"));
                _tasks.Add(Agent.RunAsync(_stop.Token));
            }
        }
        catch
        {
            _stop.Cancel();
            DisposeStages();
            throw;
        }
    }

    /// <summary>Completes when every stage has stopped (after <see cref="StopAsync"/>, or when one fails).</summary>
    public Task Completion => Task.WhenAll(_tasks);

    /// <summary>Stops every stage and waits for them, at most <paramref name="timeout"/>; a stage's failure is thrown.</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        _stop.Cancel();
        await Completion.WaitAsync(timeout);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            await Completion.WaitAsync(TimeSpan.FromSeconds(15));
        }
        catch (Exception)
        {
            // Reported by the stage that failed (its log, or StopAsync); shutting down regardless.
        }
        DisposeStages();
        _stop.Dispose();
    }

    /// <summary>For synchronous callers (benchmarks): <see cref="DisposeAsync"/>, waited for.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private void DisposeStages()
    {
        foreach (var r in _receivers)
            r.Dispose();
        Assembler?.Dispose();
        Writer?.Dispose();
        if (_removeCreated)
            foreach (var name in _created)
                ShmRing.Unlink(name);
    }
}
