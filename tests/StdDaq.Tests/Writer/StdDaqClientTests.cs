using System.Diagnostics;
using System.Text.Json;
using StdDaq.Agent.Broker;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Writer;

/// <summary>
/// std-daq's own clients against our WriterAgent, written as std-daq writes them (Python, pika).
/// </summary>
[Collection("broker")]
public sealed class StdDaqClientTests(BrokerFixture broker)
{
    /// <summary>
    /// A post-processing service the way std-daq's are written: it binds an exclusive queue to the
    /// `status` fanout exchange and runs its work on every status of the primary service that is
    /// not request_start or request_fail. Each run is printed as a JSON line with what the file
    /// held at that moment (h5py; interrupted = 1 until the writer closed it).
    /// </summary>
    private const string PostProcessing = """
        import json, sys, time, pika, h5py
        host, port, primary, request_id, output_file = sys.argv[1:6]
        connection = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=int(port)))
        channel = connection.channel()
        channel.exchange_declare(exchange="status", exchange_type="fanout")
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.queue_bind(queue=queue, exchange="status")
        print("ready", flush=True)
        done = False
        def on_status(ch, method, properties, body):
            global done
            headers = properties.headers or {}
            action, source = headers.get("action"), headers.get("source")
            if properties.correlation_id != request_id:
                return
            if action in ("request_success", "request_fail"):
                done = True
            if source != primary or action in ("request_start", "request_fail"):
                return
            # std-daq's post-processing would start its work on the file here.
            try:
                with h5py.File(output_file, "r") as f:
                    closed = int(f.attrs["interrupted"]) == 0
                    written = int(f.attrs["n_images_written"])
            except Exception as e:
                closed, written = False, -1
            print(json.dumps({"action": action, "closed": closed, "n_images_written": written}), flush=True)
        channel.basic_consume(queue=queue, on_message_callback=on_status, auto_ack=True)
        deadline = time.time() + 120
        while not done and time.time() < deadline:
            connection.process_data_events(time_limit=0.2)
        # Anything that still comes late for this request would count too.
        connection.process_data_events(time_limit=1.0)
        connection.close()
        """;

    [Fact]
    public async Task Write_StdDaqPostProcessingClient_RunsOnceAfterTheFileIsClosed()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, rate: 100);
        string file = Path.Combine(env.Dir, "post.h5");
        string script = Path.Combine(env.Dir, "post_processing.py");
        File.WriteAllText(script, PostProcessing);
        string id = Guid.NewGuid().ToString();
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        var at = BrokerProtocol.Factory(broker.Url, "test");
        foreach (var a in new[] { script, at.HostName, at.Port.ToString(), $"{p.Config.DetectorName}.writer_agent", id, file })
            psi.ArgumentList.Add(a);
        using var client = Process.Start(psi)!;
        var stderr = client.StandardError.ReadToEndAsync();
        try
        {
            string? ready = await client.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(ready == "ready", $"the pika client did not start: {ready} {(client.WaitForExit(5000) ? await stderr : "")}");
            // 300 images at 100 Hz: 3 s, so the agent (every 200 ms) reports progress meanwhile, even on
            // a loaded machine where it skips reports while earlier statuses are still being published.
            await p.SendAsync(WriterPipeline.Body(file, 300), id);
            var final = await p.FinalAsync(id, TimeSpan.FromSeconds(60));
            Assert.True(final.Action == BrokerProtocol.ActionSuccess, $"{final.Action}: {final.Message}");
            Assert.True(p.StatusesOf(id).Any(s => s.Action == BrokerProtocol.ActionProgress),
                "the agent reported no progress (to our clients), so the test proved nothing");
            string rest = await client.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(130));
            Assert.True(client.WaitForExit(10_000));
            Assert.True(client.ExitCode == 0, await stderr);
            var runs = rest.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var run = Assert.Single(runs);
            Assert.Equal(BrokerProtocol.ActionSuccess, run.GetProperty("action").GetString());
            Assert.True(run.GetProperty("closed").GetBoolean(), "the post-processing ran on a file that was not closed yet");
            Assert.Equal(300, run.GetProperty("n_images_written").GetInt32());
        }
        finally
        {
            if (!client.HasExited)
                client.Kill();
        }
    }
}
