using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using StdDaq.Shared.Hosting;
using StdDaq.Tests.Support;
using StdDaq.Writer;

namespace StdDaq.Tests.Writer;

/// <summary>
/// Reading a file while it is written (SWMR): a reader polling it with h5py <c>swmr=True</c>, and a
/// file whose writer died, recovered by the next writer.
/// </summary>
public sealed class SwmrTests
{
    // Polls every 100 ms until the file is closed (end_time set): "live" with a handle kept open and
    // refreshed, "fresh" with a new open each poll (in a process of its own: libhdf5 shares one
    // cache among the opens of a file in a process). Checks each view, reading each field before
    // those it is compared with (opening or refreshing a dataset reads its extent, which a later
    // flush only lengthens): n_images_written at most the images written in status, data and omega
    // as long as image_id, the last image's pixels, id and status, counts never going back.
    // Prints what it saw as JSON.
    private const string Poller = """
        import json, sys, time
        import h5py, numpy as np
        path, total, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        NAMES = ["/entry/data/image_id", "/entry/data/status", "/entry/end_time", "/entry/data/data", "/entry/sample/transformations/omega"]
        live = h5py.File(path, "r", swmr=True) if mode == "live" else None
        print("ready", flush=True)
        counts, errors, polls, closed = [], [], 0, False
        t0 = time.monotonic()
        def view(f, refresh):
            counted = f["/entry/data/n_images_written"]
            if refresh: counted.refresh()
            w = int(counted[()])
            ids, status, end, data, omega = (f[n] for n in NAMES)
            if refresh:
                for d in (ids, status, end, data, omega):
                    d.refresh()
            n = ids.shape[0]
            st = status[:n]
            k, m = data.shape[0], omega.shape[0]
            if k < n: raise Exception(f"data has {k} images, image_id {n}")
            if m < n: raise Exception(f"omega has {m} values, image_id {n}")
            if n > 0:
                j = n - 1
                want_status = 0xFFFF if j % 97 == 96 else 0
                if st[j] != want_status: raise Exception(f"status[{j}] = {st[j]}")
                if want_status == 0:
                    img = data[j]
                    if ids[j] != 1000 + j: raise Exception(f"image_id[{j}] = {ids[j]}")
                    if not np.all(img == j): raise Exception(f"image {j}: pixels {np.unique(img)[:5]}, not {j}")
            good = int(np.count_nonzero(st != 0xFFFF))
            if w > good: raise Exception(f"n_images_written {w} > {good} images written in status[:{n}]")
            return n, len(end[()]) > 0
        seen_closed = False  # one more poll after end_time was seen: the images were read before it
        while time.monotonic() - t0 < 60 and not (closed and seen_closed):
            seen_closed = closed
            polls += 1
            try:
                if live is None:
                    with h5py.File(path, "r", swmr=True) as f:
                        n, closed = view(f, False)
                else:
                    n, closed = view(live, True)
                if counts and n < counts[-1]:
                    errors.append(f"poll {polls}: count went back from {counts[-1]} to {n}")
                counts.append(n)
            except Exception as e:
                errors.append(f"poll {polls}: {type(e).__name__}: {e}")
            time.sleep(0.1)
        if live is not None: live.close()
        with h5py.File(path, "r") as f:  # a plain reader, once the writer has closed the file
            final = f["/entry/data/data"].shape[0]
        print(json.dumps({"polls": polls, "counts": counts, "errors": errors[:20], "closed": closed, "final": final}))
        """;

    [Fact]
    public async Task LiveReader_PollsEvery100msDuring2000ImageWrite_NeverFailsAndSeesTheCountGrow()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "live.h5");
        string script = Path.Combine(env.Dir, "poller.py");
        File.WriteAllText(script, Poller);
        const int total = 2000, h = 32, w = 64;
        using var file = NexusImageFile.Create(path, new NexusFileOptions(total, h, w, 2, false, [])
        {
            Run = new StdDaq.Shared.Streams.NxmxRun { OmegaIncrement = 0.1 },
        }, overwrite: false);

        var pollers = new[] { "live", "fresh" }.Select(mode => Process.Start(new ProcessStartInfo("/usr/bin/python3", [script, path, $"{total}", mode])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!).ToArray();
        try
        {
            var stderr = pollers.Select(p => p.StandardError.ReadToEndAsync()).ToArray();
            for (int p = 0; p < pollers.Length; p++)
            {
                string? first = await pollers[p].StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
                Assert.True(first == "ready", $"a poller did not start: {first} {(pollers[p].HasExited ? await stderr[p] : "")}");
            }

            // About 3 s of images, flushed every 100 ms as a writer with a short flush interval does.
            var image = new ushort[h * w];
            var flushed = Stopwatch.StartNew();
            var pace = Stopwatch.StartNew();
            for (int i = 0; i < total; i++)
            {
                if (i % 97 == 96)
                    file.MarkMissing(i, (ulong)(1000 + i));
                else
                {
                    Array.Fill(image, (ushort)i);
                    file.WriteImage(i, System.Runtime.InteropServices.MemoryMarshal.AsBytes(image.AsSpan()), (ulong)(1000 + i), 0);
                }
                if (flushed.ElapsedMilliseconds >= 100)
                {
                    file.Flush();
                    flushed.Restart();
                }
                while (pace.Elapsed.TotalMilliseconds < 1.5 * (i + 1))
                    Thread.Sleep(1);
            }
            file.Close(interrupted: false, null);

            for (int p = 0; p < pollers.Length; p++)
            {
                string mode = p == 0 ? "live" : "fresh";
                string output = await pollers[p].StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(90));
                Assert.True(pollers[p].WaitForExit(TimeSpan.FromSeconds(30)) && pollers[p].ExitCode == 0, $"{mode} poller: {await stderr[p]}");
                var r = JsonDocument.Parse(output).RootElement;
                var errors = r.GetProperty("errors").EnumerateArray().Select(e => e.GetString()).ToArray();
                Assert.True(errors.Length == 0, $"the {mode} SWMR reader failed:\n" + string.Join("\n", errors));
                var counts = H5py.Longs(r.GetProperty("counts"));
                Assert.True(r.GetProperty("polls").GetInt32() >= 15, $"{mode}: only {r.GetProperty("polls")} polls in a 3 s run");
                Assert.True(counts.Distinct().Count() >= 8, $"{mode}: the reader saw the count take only these values: {string.Join(", ", counts.Distinct())}");
                Assert.Contains(counts, c => c > 0 && c < total); // images seen in the middle of the run
                Assert.True(r.GetProperty("closed").GetBoolean(), $"{mode}: the reader never saw end_time set");
                Assert.Equal(total, counts[^1]);
                Assert.Equal(total, r.GetProperty("final").GetInt64());
            }
        }
        finally
        {
            foreach (var p in pollers)
            {
                if (!p.HasExited)
                    p.Kill();
                p.Dispose();
            }
        }
    }

    /// <summary>
    /// In the middle of a run silx (which retries as a SWMR reader by itself) finds the image stack
    /// through the NeXus default and reads the images flushed so far. DIALS does not: dxtbx 3.11
    /// (Debian's) reads NXmx files as a SWMR reader, but its format detection opens them without
    /// SWMR first, which HDF5 refuses for a file in SWMR writing; so dials.import takes the file
    /// once it is closed.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void DuringTheRun_SilxReadsTheImagesFlushed_DialsImportOnlyAfterTheClose()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "midrun.h5");
        const int h = 64, w = 96;
        using var file = NexusImageFile.Create(path, new NexusFileOptions(50, h, w, 2, false, [])
        {
            Run = new StdDaq.Shared.Streams.NxmxRun { OmegaIncrement = 0.5, WavelengthAngstrom = 1.2, DetectorDistanceMm = 150 },
        }, overwrite: false);
        var image = new ushort[h * w];
        for (int i = 0; i < 21; i++)
        {
            Array.Fill(image, (ushort)(10 + i));
            file.WriteImage(i, System.Runtime.InteropServices.MemoryMarshal.AsBytes(image.AsSpan()), (ulong)i, 0);
            if (i == 19)
                file.Flush(); // image 20 is written but not flushed
        }

        string output = Python.Run(env, """
            import sys, json
            import silx.io
            from silx.io.nxdata import get_default
            with silx.io.open(sys.argv[1]) as f:
                d = get_default(f)
                print(json.dumps({"signal": d.signal.name, "shape": list(d.signal.shape),
                    "sums": [float(d.signal[i].sum()) for i in range(d.signal.shape[0])]}))
            """, path);
        var r = JsonDocument.Parse(output).RootElement;
        Assert.Equal("/entry/data/data", r.GetProperty("signal").GetString());
        Assert.Equal([20, h, w], H5py.Longs(r.GetProperty("shape")));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (double)(10 + i) * h * w),
            r.GetProperty("sums").EnumerateArray().Select(x => x.GetDouble()));

        string expt = Path.Combine(env.Dir, "midrun.expt");
        var refused = Programs.RunProcess("/usr/bin/dials.import", [path, $"output.experiments={expt}",
            $"output.log={Path.Combine(env.Dir, "midrun.log")}"], TimeSpan.FromMinutes(3));
        Assert.False(File.Exists(expt), $"dials.import took a file in SWMR writing (the README says it refuses): {refused.Stdout}");

        file.Close(interrupted: false, null);
        var import = Dials.Run(env, path);
        Assert.Equal(1, import.Sweeps);
        Assert.Equal(21, import.Images);
    }

    [Fact]
    public void WriterDied_NextWriterRecoversItsFile_EveryReaderOpensIt()
    {
        using var env = new TestEnv();
        var config = env.Config("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1));
        string path = Path.Combine(env.Dir, "died.h5");
        var r = Programs.Run("StdDaq.WriterChild", [path, "4", "8", "1000", "100", "300", "--end", "kill", "--role", config.DetectorName]);
        Assert.True(r.ExitCode == 137, $"the writer was to die of SIGKILL, exit {r.ExitCode}: {r.Stderr}");
        string lockFile = RoleLock.PathFor($"{config.DetectorName}-writer");
        Assert.Contains(path, File.ReadAllText(lockFile)); // the file noted in the role lock it left

        var log = new LinesLogger();
        using (var writer = new WriterService(config, new WriterOptions(), log))
        {
            Assert.True(log.Lines.Any(l => l.StartsWith($"recovered {path}", StringComparison.Ordinal)), string.Join("\n", log.Lines));
            Assert.DoesNotContain(path, File.ReadAllText(lockFile)); // the new holder's note is its own
        }
        var h5 = H5py.Read(env, path); // h5py's defaults: refused until the flags were cleared
        Assert.Equal(100, h5.GetProperty("shape")[0].GetInt64());
        Assert.Equal(1, h5.GetProperty("attrs").GetProperty("interrupted").GetInt64());
        Assert.Equal(NexusImageFile.NotClosedReason, h5.GetProperty("attrs").GetProperty("interrupted_reason").GetString());
        Assert.False(File.Exists(lockFile), "the writer that stopped normally left its role lock");

        // A writer that stops normally notes nothing: the next one recovers nothing.
        var quiet = new LinesLogger();
        using (new WriterService(config, new WriterOptions(), quiet))
            Assert.DoesNotContain(quiet.Lines, l => l.Contains("recover", StringComparison.Ordinal));
    }

    [Fact]
    public void Recover_RefusesLinksAndFilesItDidNotWrite()
    {
        using var env = new TestEnv();
        string other = Path.Combine(env.Dir, "other.h5");
        Python.Run(env, """
            import sys, h5py
            f = h5py.File(sys.argv[1], "w", libver=("v110", "v110"))
            f.create_dataset("x", shape=(0,), maxshape=(10,), dtype="u1")
            f.swmr_mode = True
            import os; os._exit(0)  # dies with the file open for SWMR writing
            """, other);
        var e = Assert.Throws<InvalidDataException>(() => NexusImageFile.Recover(other));
        Assert.Contains("not written by StdDaq StdH5Writer", e.Message);
        string link = Path.Combine(env.Dir, "link.h5");
        File.CreateSymbolicLink(link, other);
        Assert.Contains("symbolic link", Assert.Throws<InvalidDataException>(() => NexusImageFile.Recover(link)).Message);
        string text = Path.Combine(env.Dir, "text.h5");
        File.WriteAllText(text, "not hdf5");
        Assert.Throws<StdDaq.Shared.Interop.Hdf5Exception>(() => NexusImageFile.Recover(text));
    }

    /// <summary>Collects formatted log lines.</summary>
    private sealed class LinesLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines)
                Lines.Add(formatter(state, exception));
        }
    }
}
