using System.Diagnostics;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Assembler;

/// <summary>The assembler on a machine whose cores another process keeps busy.</summary>
[Collection("serial")]
public class AssemblerUnderLoadTests
{
    [Fact]
    public async Task Assemble_BothCoresBusyElsewhere_NoImageIncompleteWhoseFramesAllArrivedInTime()
    {
        using var env = new TestEnv();
        // An EIGER of 4 ports (1 MiB images) with the default assembler_timeout_ms; 256 frame
        // slots (2.56 s at 100 Hz) so an assembler that falls behind is not also lapped.
        var config = env.Config("eiger", 4, 16, 1030, 514,
            System.Text.Json.JsonSerializer.Deserialize<Dictionary<int, int[]>>(
                "{\"0\":[0,0,513,255],\"1\":[516,0,1029,255],\"2\":[0,513,513,258],\"3\":[516,513,1029,258]}"),
            slots: 256) with { ImageBufferSlots = 32 };
        Assert.Equal(200, config.AssemblerTimeoutMs);
        const int frames = 400;
        var spinners = new List<Process>();
        try
        {
            using var harness = new AssemblerHarness(env, config);
            for (int i = 0; i < Environment.ProcessorCount; i++)
                spinners.Add(Process.Start("/bin/sh", ["-c", "while :; do :; done"]));
            var receivers = harness.Receivers!;
            var notices = Task.Factory.StartNew(() => receivers.Collect(4 * frames, TimeSpan.FromSeconds(30), null, quiet: TimeSpan.FromSeconds(3)),
                TaskCreationOptions.LongRunning);
            var sim = Task.Factory.StartNew(() =>
            {
                using var s = new DetectorSimulator(config, new SimOptions { Rate = 100, Frames = frames, StartId = 1 });
                return s.Run(CancellationToken.None);
            }, TaskCreationOptions.LongRunning);
            harness.Collect(frames, TimeSpan.FromSeconds(30), quiet: TimeSpan.FromSeconds(3));
            var sent = await sim;
            await notices;
            StopAll(spinners);

            Assert.Empty(sent.Lost);
            // Frames of one image closed within half the timeout of each other, all complete: the
            // assembler must have had them all before the timeout, whatever the machine was doing.
            long inTimeNs = (long)(config.AssemblerTimeoutMs / 2 * 1e6);
            var byId = receivers.Notices.GroupBy(n => n.ImageId).ToDictionary(g => g.Key, g => g.ToList());
            int inTime = 0;
            var starved = new List<string>();
            foreach (var (meta, _) in harness.Images)
            {
                if (!byId.TryGetValue(meta.Id, out var frameNotices) || frameNotices.Count != 4 || frameNotices.Any(n => n.NMissingPackets != 0))
                    continue;
                ulong spread = frameNotices.Max(n => n.ReceiveTimeNs) - frameNotices.Min(n => n.ReceiveTimeNs);
                if (spread >= (ulong)inTimeNs)
                    continue;
                inTime++;
                if (meta.Status != (ushort)ImageStatus.Good)
                    starved.Add($"{meta.Id} (frames within {spread / 1e6:F1} ms)");
            }
            var c = harness.Assembler.Counters.Read();
            Assert.True(starved.Count == 0, $"{starved.Count} of {inTime} images whose frames all arrived in time were published incomplete: " +
                $"{string.Join(", ", starved.Take(10))}; assembler: {c}; receivers: {receivers.Totals()}");
            // The check means something only if most images qualified.
            Assert.True(inTime >= frames * 3 / 4, $"only {inTime} of {frames} images had all their frames complete and in time; receivers: {receivers.Totals()}");
        }
        finally
        {
            StopAll(spinners);
        }
    }

    private static void StopAll(List<Process> processes)
    {
        foreach (var p in processes)
        {
            try
            {
                if (!p.HasExited)
                    p.Kill();
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
        processes.Clear();
    }
}
