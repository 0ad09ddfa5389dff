using System.Diagnostics;
using System.Text;
using System.Text.Json;
using StdDaq.Agent;
using StdDaq.Tests.Support;
using StdDaq.Writer;

namespace StdDaq.Tests.Writer;

/// <summary>What a restarted agent makes of a request an agent before it had begun (the file it left).</summary>
public sealed class RequestRecoveryTests
{
    private static readonly StdDaq.Shared.Config.DetectorConfig Config = StdDaq.Shared.Config.DetectorConfigLoader.Parse(
        """{"detector_name":"recovery","detector_type":"jungfrau-raw","n_modules":1,"bit_depth":16,"image_pixel_height":512,"image_pixel_width":1024,"start_udp_port":50000,"module_positions":{"0":[0,0,1023,511]}}""");

    private static WriteRequest Request(string file, long n) =>
        WriteRequest.Parse(Encoding.UTF8.GetBytes(WriterPipeline.Body(file, n)), Config, begunBefore: true);

    private static NexusImageFile Begin(string path, long n, string requestId) =>
        NexusImageFile.Create(path, new NexusFileOptions(n, 2, 4, 2, false, [new("request_id", requestId), new("run_id", "77")]), overwrite: false);

    private static void Write(NexusImageFile f, long count)
    {
        var pixels = new byte[2 * 4 * 2];
        for (long i = 0; i < count; i++)
            f.WriteImage(i, pixels, (ulong)(100 + i), 0);
    }

    [Fact]
    public void Recover_InterruptedFileOfThisRequest_FailsWithWhatTheFileHolds()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "begun.h5");
        using (var f = Begin(path, 10, "req-1"))
        {
            Write(f, 4);
            f.Close(true, "the writer agent went away during the run");
        }

        var outcome = RequestRecovery.Recover(Request(path, 10), "req-1", TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.NotNull(outcome);
        Assert.False(outcome.Success);
        Assert.StartsWith($"the writer agent restarted during this request: '{path}' holds 4 of 10 images and is marked interrupted " +
            "(the writer agent went away during the run); ", outcome.Message);
        var summary = JsonDocument.Parse(outcome.Message[(outcome.Message.IndexOf('{'))..]).RootElement;
        Assert.Equal(4, summary.GetProperty("n_images_written").GetInt64());
        Assert.Equal(6, summary.GetProperty("n_images_missing").GetInt64());
        Assert.Equal(77, summary.GetProperty("run_id").GetInt64());
    }

    [Fact]
    public void Recover_CompleteFileOfThisRequest_SucceedsWithItsNumbers()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "done.h5");
        using (var f = Begin(path, 3, "req-2"))
        {
            Write(f, 3);
            f.Close(false, null);
        }

        var outcome = RequestRecovery.Recover(Request(path, 3), "req-2", TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.NotNull(outcome);
        Assert.True(outcome.Success, outcome.Message);
        var summary = JsonDocument.Parse(outcome.Message).RootElement;
        Assert.Equal(3, summary.GetProperty("n_images_written").GetInt64());
        Assert.True(summary.GetProperty("agent_restarted").GetBoolean());
    }

    [Fact]
    public void Recover_NoFileOrAnotherRequestsFile_NotBegunSoWrittenAnew()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "other.h5");
        Assert.Null(RequestRecovery.Recover(Request(path, 3), "req-3", TimeSpan.FromSeconds(5), CancellationToken.None));
        using (var f = Begin(path, 3, "someone-else"))
            f.Close(false, null);
        Assert.Null(RequestRecovery.Recover(Request(path, 3), "req-3", TimeSpan.FromSeconds(5), CancellationToken.None));
    }

    /// <summary>
    /// Another process (h5py) holds the file open for writing, as the writer does while it closes a
    /// run: HDF5's file lock keeps readers out until it closes. It then records what it wrote.
    /// </summary>
    private const string Holder = """
        import sys, time, h5py, numpy as np
        path, request_id, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
        f = h5py.File(path, "w")
        f.attrs["request_id"] = np.bytes_(request_id)
        f.attrs["n_images_requested"] = np.int64(10)
        f.attrs["n_images_written"] = np.int64(2)
        f.attrs["interrupted"] = np.uint8(1)
        f.flush()
        print("open", flush=True)
        time.sleep(hold)
        f.attrs["n_images_written"] = np.int64(5)
        f.attrs["interrupted_reason"] = np.bytes_("the writer agent went away during the run")
        f.close()
        """;

    private static Process Hold(TestEnv env, string path, string requestId, double seconds)
    {
        string script = Path.Combine(env.Dir, "holder.py");
        File.WriteAllText(script, Holder);
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { script, path, requestId, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        string? line = p.StandardOutput.ReadLine();
        if (line != "open")
            Assert.Fail($"h5py did not open {path}: {line} {p.StandardError.ReadToEnd()}");
        return p;
    }

    [Fact]
    public async Task Recover_FileStillOpenInAnotherProcess_WaitsUntilItIsClosed()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "closing.h5");
        using var holder = Hold(env, path, "req-4", 1.5);
        var sw = Stopwatch.StartNew();

        var outcome = await Task.Run(() => RequestRecovery.Recover(Request(path, 10), "req-4", TimeSpan.FromSeconds(30), CancellationToken.None))
            .WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(holder.WaitForExit(10_000));
        Assert.NotNull(outcome);
        // What the file held once closed, not the 2 images it said while still open.
        Assert.Contains("holds 5 of 10 images and is marked interrupted (the writer agent went away during the run)", outcome.Message);
        Assert.InRange(sw.Elapsed.TotalSeconds, 1.0, 30);
    }

    [Fact]
    public void Recover_FileStillOpenAtTheDeadline_FailsSayingSo()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "stuck.h5");
        using var holder = Hold(env, path, "req-5", 30);
        try
        {
            var outcome = RequestRecovery.Recover(Request(path, 10), "req-5", TimeSpan.FromSeconds(1), CancellationToken.None);

            Assert.NotNull(outcome);
            Assert.False(outcome.Success);
            Assert.Contains($"'{path}' is still open in the writer after 1 s", outcome.Message);
        }
        finally
        {
            holder.Kill();
            holder.WaitForExit();
        }
    }
}
