using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Services;

/// <summary>
/// Bad configs, bad calibration files and bad command lines written once per test run: the
/// corpus the process test below runs every program on.
/// </summary>
public sealed class BadInputCorpus : IDisposable
{
    private readonly TestEnv _env = new();

    public string Dir => _env.Dir;

    /// <summary>The detector name of the corpus's configs (nothing may be left under it).</summary>
    public string Name => _env.Name;

    public BadInputCorpus()
    {
        // Ports no test binds: every case fails before a port would be taken.
        string good = _env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, new() { [0] = [0, 0, 1023, 511] }, 39990);
        string converted = good.Replace("jungfrau-raw", "jungfrau-converted");
        Write("good.json", good);
        Write("converted.json", converted);
        Write("missing-key.json", good.Replace("\"n_modules\":1,", ""));
        Write("wrong-type.json", good.Replace("\"n_modules\":1", "\"n_modules\":\"one\""));
        Write("malformed.json", good[..(good.Length / 2)]);
        Write("empty.json", "");
        Write("metrics-port-text.json", good[..^1] + ",\"metrics\":{\"assembler_port\":\"9100\"}}");
        Write("metrics-port-range.json", good[..^1] + ",\"metrics\":{\"udp_recv_port\":65536}}");
        Write("metrics-not-object.json", good[..^1] + ",\"metrics\":9100}");
        Directory.CreateDirectory(Path.Combine(Dir, "directory.json"));
        Write("gains-key-wrong-type.json", converted[..^1] + ",\"gains_and_pedestals\":7}");
        Write("gains-key-bad-file.json", converted[..^1] + $",\"gains_and_pedestals\":\"{Path.Combine(Dir, "gains-shape.h5")}\"}}");

        Write("not-hdf5.h5", "{\"gains\": []}\n");
        Write("empty.h5", "");
        Directory.CreateDirectory(Path.Combine(Dir, "directory.h5"));
        // One module: gains and pedestals are [3, 512, 1024].
        Python.Run(_env, """
            import sys, os, h5py, numpy as np
            d = sys.argv[1]
            ok = np.ones((3, 512, 1024), np.float32)
            def write(name, **datasets):
                with h5py.File(os.path.join(d, name), "w") as f:
                    for k, v in datasets.items():
                        f[k] = v
            write("gains-shape.h5", gains=np.ones((3, 256, 1024), np.float32), pedestals=ok)
            write("gains-2d.h5", gains=np.ones((512, 1024), np.float32), pedestals=ok)
            write("gains-string.h5", gains=np.array([b"x"] * 6).reshape(3, 2), pedestals=ok)
            write("pedestals-shape.h5", gains=ok, gainsRMS=np.ones((3, 512, 1000), np.float64))
            write("no-pedestals.h5", gains=ok)
            write("no-gains.h5", pedestals=ok)
            write("mask-shape.h5", gains=ok, pedestals=ok, pixel_mask=np.zeros((256, 1024), np.uint32))
            write("mask-string.h5", gains=ok, pedestals=ok, pixel_mask=np.array([b"bad"] * 4))
            """, Dir);
    }

    private void Write(string name, string text) => File.WriteAllText(Path.Combine(Dir, name), text);

    public void Dispose() => _env.Dispose();
}

/// <summary>
/// No crash on bad input, anywhere: every program and sub-command, run as a process on each bad
/// config, calibration file and command line of <see cref="BadInputCorpus"/>, exits 2 (usage,
/// config) or 1 (anything else) with one line naming the problem — and for a usage error a
/// <c>usage:</c> line — and never a stack trace.
/// </summary>
public class BadInputTests(BadInputCorpus corpus) : IClassFixture<BadInputCorpus>
{
    /// <summary>
    /// (program, arguments with {dir} for the corpus folder, exit code, what the first line must
    /// contain). "std-daq sim" runs std-daq with "sim" as its first argument.
    /// </summary>
    public static TheoryData<string, string, int, string> Cases()
    {
        var data = new TheoryData<string, string, int, string>();
        // Bad configs, for every program that reads one.
        (string Program, string Before, string After)[] readers =
        [
            ("StdUdpRecv", "", " 0"), ("StdAssembler", "", ""), ("StdH5Writer", "", ""), ("WriterAgent", "", ""),
            ("std-daq", "sim ", ""), ("std-daq", "up ", ""),
            ("StdStreamSend", "", " tcp://127.0.0.1:5700"), ("StdStreamRecv", "", " tcp://127.0.0.1:5700"),
        ];
        (string File, string Problem)[] configs =
        [
            ("missing-key.json", "n_modules"), ("wrong-type.json", "n_modules"), ("malformed.json", "not valid JSON"),
            ("empty.json", "not valid JSON"), ("directory.json", "is a directory"), ("nonexistent.json", "Could not find file"),
        ];
        foreach (var (program, before, after) in readers)
            foreach (var (file, problem) in configs)
                data.Add(program, $"{before}{{dir}}/{file}{after}", 2, problem);

        // JUNGFRAU gains and pedestals: exit 1, the line names the file, the dataset and what is wrong.
        (string File, string Problem)[] calibrations =
        [
            ("gains-shape.h5", "gains-shape.h5: /gains has shape [3, 256, 1024], expected [3, 512, 1024]"),
            ("gains-2d.h5", "gains-2d.h5: /gains has shape [512, 1024], expected [3, 512, 1024]"),
            ("gains-string.h5", "gains-string.h5: /gains holds string values, expected numbers"),
            ("pedestals-shape.h5", "pedestals-shape.h5: /gainsRMS has shape [3, 512, 1000], expected [3, 512, 1024]"),
            ("no-pedestals.h5", "no-pedestals.h5: no /pedestals dataset"),
            ("no-gains.h5", "no-gains.h5: no /gains dataset"),
            ("mask-shape.h5", "mask-shape.h5: /pixel_mask has shape [256, 1024], expected [512, 1024]"),
            ("mask-string.h5", "mask-string.h5: /pixel_mask holds string values"),
            ("not-hdf5.h5", "not-hdf5.h5: not a readable HDF5 file"),
            ("empty.h5", "empty.h5': the file is empty"),
            ("directory.h5", "directory.h5': is a directory"),
            ("nonexistent.h5", "nonexistent.h5: no such file"),
        ];
        foreach (var (file, problem) in calibrations)
            data.Add("StdAssembler", $"{{dir}}/converted.json --gains-and-pedestals {{dir}}/{file}", 1, problem);
        data.Add("StdAssembler", "{dir}/gains-key-bad-file.json", 1, "/gains has shape [3, 256, 1024]");
        data.Add("StdAssembler", "{dir}/gains-key-wrong-type.json", 2, "gains_and_pedestals");
        data.Add("StdAssembler", "{dir}/converted.json", 2, "gains_and_pedestals");

        // Bad command lines: unknown option, missing value, not a number, out of range, too many or too few positionals.
        (string Program, string Args, string Problem)[] usage =
        [
            ("StdUdpRecv", "", "expected <config.json> <module_id>"),
            ("StdUdpRecv", "{dir}/good.json", "expected <config.json> <module_id>"),
            ("StdUdpRecv", "{dir}/good.json 0 1", "expected <config.json> <module_id>"),
            ("StdUdpRecv", "{dir}/good.json x", "module_id 'x' is not in 0..0"),
            ("StdUdpRecv", "{dir}/good.json 1", "module_id '1' is not in 0..0"),
            ("StdUdpRecv", "{dir}/good.json 0 --bind", "--bind needs a value"),
            ("StdUdpRecv", "{dir}/good.json 0 --bind localhost.invalid", "--bind 'localhost.invalid' is not an IPv4 address"),
            ("StdUdpRecv", "{dir}/good.json 0 --frobnicate", "unknown option --frobnicate"),
            ("StdUdpRecv", "{dir}/good.json 0 --bind 127.0.0.1 --bind 127.0.0.2", "--bind is given more than once"),
            ("StdAssembler", "", "expected <config.json>"),
            ("StdAssembler", "{dir}/good.json {dir}/good.json", "expected <config.json>"),
            ("StdAssembler", "{dir}/good.json --workers x", "--workers 'x' is not an integer"),
            ("StdAssembler", "{dir}/good.json --workers 1000", "--workers '1000' is not an integer in 0..256"),
            ("StdAssembler", "{dir}/good.json --timeout-ms 0", "--timeout-ms '0' is not a number"),
            ("StdAssembler", "{dir}/good.json --gains-and-pedestals", "--gains-and-pedestals needs a value"),
            ("StdAssembler", "{dir}/good.json --discard-incomplete=yes", "--discard-incomplete takes no value"),
            ("StdAssembler", "{dir}/good.json --frobnicate", "unknown option --frobnicate"),
            ("StdH5Writer", "", "expected <config.json>"),
            ("StdH5Writer", "{dir}/good.json extra", "expected <config.json>"),
            ("StdH5Writer", "{dir}/good.json --bind 127.0.0.1", "unknown option --bind"),
            ("WriterAgent", "", "expected <config.json>"),
            ("WriterAgent", "{dir}/good.json extra", "expected <config.json>"),
            ("WriterAgent", "{dir}/good.json --broker-url", "--broker-url needs a value"),
            ("WriterAgent", "{dir}/good.json --frobnicate", "unknown option --frobnicate"),
            ("StdStreamSend", "{dir}/good.json", "expected <config.json> <stream_address>"),
            ("StdStreamSend", "{dir}/good.json 127.0.0.1:5700", "stream_address '127.0.0.1:5700' is not tcp://host:port"),
            ("StdStreamSend", "{dir}/good.json tcp://127.0.0.1:x", "stream_address 'tcp://127.0.0.1:x' is not tcp://host:port"),
            ("StdStreamSend", "{dir}/good.json tcp://127.0.0.1:5700 --images 2/2", "--images '2/2' is not i/N with 0 <= i < N <= 1024"),
            ("StdStreamSend", "{dir}/good.json tcp://127.0.0.1:5700 --send-timeout-ms 0", "--send-timeout-ms '0' is not an integer in 1..60000"),
            ("StdStreamSend", "{dir}/good.json tcp://127.0.0.1:5700 --no-checksum=yes", "--no-checksum takes no value"),
            ("StdStreamRecv", "{dir}/good.json tcp://127.0.0.1:5700 extra", "expected <config.json> <stream_address>"),
            ("StdStreamRecv", "{dir}/good.json tcp://127.0.0.1:5700 --images x", "--images 'x' is not i/N"),
            ("StdStreamRecv", "{dir}/good.json tcp://127.0.0.1:5700 --detector-name a/b", "--detector-name 'a/b' is not 1-64 of A-Z a-z 0-9 _ . -"),
            ("StdStreamRecv", "{dir}/good.json tcp://127.0.0.1:5700 --frobnicate", "unknown option --frobnicate"),
            ("std-daq", "", "expected a command"),
            ("std-daq", "frobnicate", "unknown command 'frobnicate'"),
            ("std-daq", "sim", "expected <config.json>"),
            ("std-daq", "sim {dir}/good.json extra", "expected <config.json>"),
            ("std-daq", "sim {dir}/good.json --rate fast", "--rate 'fast' is not a number"),
            ("std-daq", "sim {dir}/good.json --frames 0", "--frames '0' is not an integer"),
            ("std-daq", "sim {dir}/good.json --frames", "--frames needs a value"),
            ("std-daq", "sim {dir}/good.json --frames 1 --seconds 1", "give --frames or --seconds, not both"),
            ("std-daq", "sim {dir}/good.json --loss 2", "--loss '2' is not a number in 0..1"),
            ("std-daq", "sim {dir}/good.json --modules 0,x", "--modules: 'x' is not a module id"),
            ("std-daq", "sim {dir}/good.json --modules 3", "--modules: module 3 is not in 0..0"),
            ("std-daq", "sim {dir}/good.json --host localhost.invalid", "--host 'localhost.invalid' is not an IPv4 address"),
            ("std-daq", "sim {dir}/good.json --frobnicate", "unknown option --frobnicate"),
            ("std-daq", "up", "expected <config.json>"),
            ("std-daq", "up {dir}/good.json extra", "expected <config.json>"),
            ("std-daq", "up {dir}/good.json --write {dir}/x.h5", "--write needs --images N"),
            ("std-daq", "up {dir}/good.json --write {dir}/x.h5 --images 5", "--write needs a broker"),
            ("std-daq", "up {dir}/good.json --write {dir}/x.h5 --images x --private-broker", "--images 'x' is not an integer"),
            ("std-daq", "up {dir}/good.json --receivers-only --private-broker", "--receivers-only runs no writer"),
            ("std-daq", "up {dir}/good.json --simulate --rate fast", "--rate 'fast' is not a number"),
            ("std-daq", "up {dir}/good.json --simulate --modules 5", "--modules: module 5 is not in 0..0"),
            ("std-daq", "up {dir}/good.json --frobnicate", "unknown option --frobnicate"),
            ("std-daq", "write", "expected <output_file> <n_images>"),
            ("std-daq", "write {dir}/x.h5", "expected <output_file> <n_images>"),
            ("std-daq", "write {dir}/x.h5 5 6", "expected <output_file> <n_images>"),
            ("std-daq", "write {dir}/x.h5 many", "<n_images> must be a positive integer, got 'many'"),
            ("std-daq", "write {dir}/x.h5 0", "<n_images> must be a positive integer, got '0'"),
            ("std-daq", "write {dir}/x.h5 5 --timeout -1", "--timeout '-1' is not a number"),
            ("std-daq", "write {dir}/x.h5 5 --run-id x", "--run-id 'x' is not an integer"),
            ("std-daq", "write {dir}/x.h5 5 --tag", "--tag needs a value"),
            ("std-daq", "write {dir}/x.h5 5 --frobnicate", "unknown option --frobnicate"),
            ("std-daq", "kill", "expected <request_id>"),
            ("std-daq", "kill a b", "expected <request_id>"),
            ("std-daq", "kill a --frobnicate", "unknown option --frobnicate"),
            ("std-daq", "monitor extra", "unknown monitor sub-command 'extra'"),
            ("std-daq", "monitor --seconds soon", "--seconds 'soon' is not a number"),
            ("std-daq", "monitor --broker-url", "--broker-url needs a value"),
            ("std-daq", "monitor poll", "expected <url>"),
            ("std-daq", "monitor poll ftp://x", "url 'ftp://x' is not http://host:port or host:port"),
            ("std-daq", "monitor poll 127.0.0.1:1 -a", "-a goes with -o FILE"),
            ("std-daq", "monitor poll 127.0.0.1:1 --period 0", "--period '0' is not a number"),
            ("std-daq", "shm", "expected a sub-command"),
            ("std-daq", "shm frobnicate", "unknown shm sub-command 'frobnicate'"),
            ("std-daq", "shm list extra", "unexpected arguments: extra"),
            ("std-daq", "shm rm", "rm needs a segment name or --detector"),
            ("std-daq", "shm rm a --detector b", "rm takes names or --detector, not both"),
            ("std-daq", "shm info", "expected <name>"),
            ("std-daq", "shm info a b", "expected <name>"),
            ("std-daq", "shm seqlock-check a --seconds 0", "--seconds '0' is not a number"),
            ("std-daq", "shm rm a --force=yes", "--force takes no value"),
            ("std-daq", "shm list --frobnicate", "unknown option --frobnicate"),
        ];
        foreach (var (program, args, problem) in usage)
            data.Add(program, args, 2, problem);

        // Every service's --metrics-port (0..65535) and the config's metrics ports.
        (string Program, string After)[] services =
        [
            ("StdUdpRecv", " 0"), ("StdAssembler", ""), ("StdH5Writer", ""), ("WriterAgent", ""),
            ("StdStreamSend", " tcp://127.0.0.1:5700"), ("StdStreamRecv", " tcp://127.0.0.1:5700"),
        ];
        foreach (var (program, after) in services)
        {
            data.Add(program, $"{{dir}}/good.json{after} --metrics-port x", 2, "--metrics-port 'x' is not an integer in 0..65535");
            data.Add(program, $"{{dir}}/good.json{after} --metrics-port -1", 2, "--metrics-port '-1' is not an integer in 0..65535");
            data.Add(program, $"{{dir}}/good.json{after} --metrics-port 65536", 2, "--metrics-port '65536' is not an integer in 0..65535");
            data.Add(program, $"{{dir}}/good.json{after} --metrics-port", 2, "--metrics-port needs a value");
            data.Add(program, $"{{dir}}/metrics-port-text.json{after}", 2, "metrics.assembler_port");
            data.Add(program, $"{{dir}}/metrics-port-range.json{after}", 2, "metrics.udp_recv_port");
            data.Add(program, $"{{dir}}/metrics-not-object.json{after}", 2, "key 'metrics'");
        }

        // Failures of an input that is not a config or a command line: exit 1.
        data.Add("std-daq", "sim {dir}/good.json --replay {dir}/no-such-capture", 1, "no-such-capture' does not exist");
        data.Add("std-daq", "shm info stddaq-bad-input-no-such-ring", 1, "/dev/shm/stddaq-bad-input-no-such-ring does not exist");
        data.Add("std-daq", "write {dir}/x.h5 5 --broker-url amqp://[", 1, "broker");
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Program_BadInput_ExitsOneOrTwoWithOneLineNamingTheProblemAndNoStackTrace(string program, string args, int code, string problem)
    {
        var argv = args.Replace("{dir}", corpus.Dir).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // The process name in the line: "std-daq sim" for a sub-command, else the program.
        string name = program == "std-daq" && argv.Length > 0 && argv[0] is "sim" or "up" or "write" or "kill" or "monitor" or "shm"
            ? $"std-daq {argv[0]}" : program;
        var r = Programs.Run(program, argv, TimeSpan.FromSeconds(30), new Dictionary<string, string> { [ServiceHost.DebugVariable] = "" });
        string what = $"{program} {string.Join(' ', argv)} exited {r.ExitCode}\nstderr:\n{r.Stderr}\nstdout:\n{r.Stdout}";

        Assert.True(r.ExitCode == code, what);
        Assert.DoesNotContain("Unhandled exception", r.Stderr + r.Stdout);
        Assert.DoesNotContain("   at ", r.Stderr + r.Stdout);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 || (code == 2 && lines.Length == 2 && lines[1].StartsWith($"usage: {name}", StringComparison.Ordinal)),
            "one line (and for a usage error one usage line) expected; " + what);
        Assert.StartsWith($"{name}: ", lines[0]);
        Assert.True(lines[0].Contains(problem, StringComparison.Ordinal), $"'{problem}' expected in the line; {what}");
        Assert.DoesNotContain("internal error", lines[0]);
        Assert.False(File.Exists(ShmRing.PathOf($"{corpus.Name}-image")), "no ring may be left behind");
        Assert.False(File.Exists(ShmRing.PathOf($"{corpus.Name}-0")), "no ring may be left behind");
    }

    [Theory]
    [InlineData("StdUdpRecv", " 0")]
    [InlineData("StdAssembler", "")]
    [InlineData("StdH5Writer", "")]
    [InlineData("WriterAgent", "")]
    [InlineData("StdStreamSend", " tcp://127.0.0.1:5700")]
    [InlineData("StdStreamRecv", " tcp://127.0.0.1:5700")]
    public void Service_BadRedisPort_ExitsTwoWithOneLineBeforeMakingAnything(string program, string after)
    {
        var argv = ($"{Path.Combine(corpus.Dir, "good.json")}{after}").Split(' ');
        var r = Programs.Run(program, argv, TimeSpan.FromSeconds(30),
            new Dictionary<string, string> { [ServiceHost.DebugVariable] = "", ["REDIS_PORT"] = "63790x" });
        string what = $"{program} exited {r.ExitCode}\nstderr:\n{r.Stderr}\nstdout:\n{r.Stdout}";
        Assert.True(r.ExitCode == 2, what);
        Assert.StartsWith($"{program}: REDIS_PORT '63790x' is not a port number (1-65535)", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr + r.Stdout);
        Assert.False(File.Exists(ShmRing.PathOf($"{corpus.Name}-image")), "no ring may be left behind");
        Assert.False(File.Exists(ShmRing.PathOf($"{corpus.Name}-0")), "no ring may be left behind");
    }

    [Fact]
    public void Program_BadInputWithStdDaqDebug_AlsoPrintsTheStackTrace()
    {
        var r = Programs.Run("StdAssembler", [Path.Combine(corpus.Dir, "converted.json"), "--gains-and-pedestals", Path.Combine(corpus.Dir, "gains-shape.h5")],
            TimeSpan.FromSeconds(30), new Dictionary<string, string> { [ServiceHost.DebugVariable] = "1" });
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("StdAssembler: ", r.Stderr);
        Assert.Contains("   at ", r.Stderr);
    }
}

public class FailureKindTests
{
    [Fact]
    public void Classify_ByWhatTheFailureIs_UsageConfigFailureOrBug()
    {
        Assert.Equal(ServiceHost.FailureKind.Usage, ServiceHost.Classify(new UsageException("x")));
        Assert.Equal(ServiceHost.FailureKind.Config, ServiceHost.Classify(new ConfigException("x")));
        // Wrapped by a task or a static constructor: what is inside counts.
        Assert.Equal(ServiceHost.FailureKind.Usage, ServiceHost.Classify(new AggregateException(new UsageException("x"))));
        Assert.Equal(ServiceHost.FailureKind.Failure, ServiceHost.Classify(new TypeInitializationException("T", new DllNotFoundException("libhdf5"))));
        // Inputs and the machine.
        foreach (var e in new Exception[] { new InvalidDataException(), new IOException(), new FileNotFoundException(), new UnauthorizedAccessException(),
                     new System.Net.Sockets.SocketException(98), new DllNotFoundException(), new Hdf5Exception("x"), new RingBufferException("x"),
                     new TimeoutException(), new FormatException(), new ArgumentException("broker url 'x' is not an amqp:// URI") })
            Assert.Equal(ServiceHost.FailureKind.Failure, ServiceHost.Classify(e));
        // Broken invariants of the code.
        foreach (var e in new Exception[] { new NullReferenceException(), new IndexOutOfRangeException(), new InvalidCastException(),
                     new InvalidOperationException(), new ObjectDisposedException("x"), new KeyNotFoundException(), new OverflowException(),
                     new ArgumentOutOfRangeException("m"), new ArgumentNullException("p"), new NotImplementedException() })
            Assert.Equal(ServiceHost.FailureKind.Bug, ServiceHost.Classify(e));
    }
}
