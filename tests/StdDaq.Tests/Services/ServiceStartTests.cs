using System.Diagnostics;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;
using Xunit.Abstractions;

namespace StdDaq.Tests.Services;

/// <summary>
/// The services as separate processes, the way a supervisor runs them: started together in any
/// order, killed while they set up, started twice, stopped.
/// </summary>
[Collection("serial")]
public class ServiceStartTests(ITestOutputHelper output)
{
    private const int Modules = 4;

    /// <summary>A 4-module JUNGFRAU whose rings take a while to allocate (32 MiB per module, 64 MiB of images).</summary>
    private static (DetectorConfig Config, string Path) Detector(TestEnv env, int frameSlots = 32, int? port = null, string file = "det.json")
    {
        string json = env.ConfigJson("jungfrau-raw", Modules, 16, 1024, Modules * 512, TestEnv.JungfrauColumn(Modules),
            port ?? TestEnv.FreeUdpPorts(Modules), slots: frameSlots);
        json = json[..^1] + ",\"image_buffer_slots\":16,\"udp_receive_buffer_bytes\":16777216,\"wait_for_peers_s\":60}";
        string path = System.IO.Path.Combine(env.Dir, file);
        File.WriteAllText(path, json);
        for (int m = 0; m < Modules; m++)
            env.Ring(m.ToString());
        env.Ring("image");
        return (DetectorConfigLoader.Parse(json), path);
    }

    /// <summary>What each service prints once it is up.</summary>
    private static (string Program, string[] Args, string Ready)[] Services(DetectorConfig c, string path) =>
    [
        .. Enumerable.Range(0, Modules).Select(m => ("StdUdpRecv", new[] { path, m.ToString() }, $"udp port {c.UdpPort(m)}")),
        ("StdAssembler", [path], $"StdAssembler {c.DetectorName}: {Modules} modules"),
        ("StdH5Writer", [path], $"StdH5Writer {c.DetectorName}: StoreStream"),
        // No broker: the agent comes up all the same and keeps trying to connect.
        ("WriterAgent", [path, "--broker-url", $"127.0.0.1:{TestEnv.FreeUdpPorts(1)}"], $"WriterAgent {c.DetectorName}.writer_agent:"),
    ];

    private static string LeftoverFiles(DetectorConfig c) =>
        string.Join(", ", Directory.EnumerateFiles("/dev/shm", $"{c.DetectorName}*.lock")
            .Concat(Directory.EnumerateFiles("/dev/shm", $"{c.DetectorName}*.new-*"))
            .Concat(Directory.EnumerateFileSystemEntries("/tmp", $"{c.DetectorName}-*"))
            .Concat(Directory.EnumerateFileSystemEntries("/tmp", $"std-daq-{c.DetectorName}-*")));

    /// <summary>Sends frames at 100 Hz until the assembler has published <paramref name="n"/> good images (bounded).</summary>
    private static int GoodImages(DetectorConfig c, int n, TimeSpan timeout)
    {
        using var sub = ZmqSocket.Subscriber(c.AssemblerEndpoint, receiveTimeoutMs: 50);
        using var stop = new CancellationTokenSource(timeout);
        var sim = Task.Factory.StartNew(() =>
        {
            using var s = new DetectorSimulator(c, new SimOptions { Rate = 100, Frames = long.MaxValue });
            return s.Run(stop.Token);
        }, TaskCreationOptions.LongRunning);
        var buffer = new byte[ImageMetadata.Size + 1];
        int good = 0;
        try
        {
            while (good < n && !stop.IsCancellationRequested)
                if (sub.Receive(buffer) == ImageMetadata.Size && ImageMetadata.Read(buffer).Status == (ushort)ImageStatus.Good)
                    good++;
        }
        finally
        {
            stop.Cancel();
            sim.Wait();
        }
        return good;
    }

    [Fact]
    public void Services_StartedTogetherInRandomOrder20Times_AllComeUpImagesFlowAndStopCleanly()
    {
        int seed = Environment.TickCount;
        var rnd = new Random(seed);
        for (int round = 0; round < 20; round++)
        {
            using var env = new TestEnv();
            var (c, path) = Detector(env);
            var order = Services(c, path).OrderBy(_ => rnd.Next()).ToList();
            string what = $"round {round} (seed {seed}), order {string.Join(", ", order.Select(s => s.Program + " " + s.Args.ElementAtOrDefault(1)))}";
            var procs = new List<ServiceProcess>();
            try
            {
                foreach (var s in order)
                    procs.Add(new ServiceProcess(s.Program, s.Args));
                for (int i = 0; i < procs.Count; i++)
                    Assert.True(procs[i].WaitForLine(order[i].Ready, TimeSpan.FromSeconds(60)),
                        $"{what}: {order[i].Program} did not come up:\n{procs[i].Output}");
                int good = GoodImages(c, 5, TimeSpan.FromSeconds(30));
                Assert.True(good >= 5, $"{what}: {good} good images\n" + string.Join("\n", procs.Select(p => p.Program + ": " + p.Output)));
                foreach (var p in procs)
                {
                    Assert.True(p.Terminate(TimeSpan.FromSeconds(20)), $"{what}: {p.Program} did not stop on SIGTERM");
                    Assert.True(p.ExitCode == 0, $"{what}: {p.Program} exited {p.ExitCode}:\n{p.Output}");
                    Assert.DoesNotContain("Unhandled exception", p.Output);
                }
                Assert.Equal("", LeftoverFiles(c));
            }
            finally
            {
                foreach (var p in procs)
                    p.Dispose();
            }
        }
        output.WriteLine($"20 rounds, seed {seed}");
    }

    [Fact]
    public void StdUdpRecv_KilledWhileCreatingItsRing_NothingHalfMadeIsPublishedAndARestartComesUp()
    {
        using var env = new TestEnv();
        var (c, path) = Detector(env, frameSlots: 2000); // 2 GiB: allocating takes long enough to be caught at it
        string ring = ShmRing.PathOf(c.FrameBufferName(0));
        using (var first = new ServiceProcess("StdUdpRecv", path, "0"))
        {
            string prefix = ShmRing.TemporaryPrefix(c.FrameBufferName(0), first.Pid);
            string? temp = null;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while ((temp = Directory.EnumerateFiles("/dev/shm", prefix + "*").FirstOrDefault()) == null && !first.HasExited && DateTime.UtcNow < deadline)
                Thread.Sleep(1);
            Assert.True(temp != null, "the receiver never started creating its ring:\n" + first.Output);
            first.Kill();
            Assert.False(File.Exists(ring), "a ring was published before it was whole");
            Assert.True(File.Exists(temp));
        }
        using var second = new ServiceProcess("StdUdpRecv", path, "0");
        try
        {
            Assert.True(second.WaitForLine($"udp port {c.UdpPort(0)}", TimeSpan.FromSeconds(60)), second.Output);
            Assert.Empty(Directory.EnumerateFiles("/dev/shm", c.FrameBufferName(0) + ".new-*")); // the dead creator's temporary is gone
            using var attached = ShmRing.Attach(c.FrameBufferName(0), RingKind.FrameBuffer, c.Module.FrameBytes, 2000);
            Assert.Equal(second.Pid, attached.Header.CreatorPid);
        }
        finally
        {
            Assert.True(second.Terminate(TimeSpan.FromSeconds(20)));
        }
    }

    [Fact]
    public async Task StdUdpRecv_SecondForTheSameModuleOnAnotherPort_ExitsNamingTheFirstWhichKeepsWorking()
    {
        using var env = new TestEnv();
        var (c, path) = Detector(env);
        var (_, otherPath) = Detector(env, port: TestEnv.FreeUdpPorts(Modules), file: "other-port.json");
        using var first = new ServiceProcess("StdUdpRecv", path, "0");
        Assert.True(first.WaitForLine($"udp port {c.UdpPort(0)}", TimeSpan.FromSeconds(60)), first.Output);
        var second = Programs.Run("StdUdpRecv", [otherPath, "0"]);
        Assert.Equal(1, second.ExitCode);
        Assert.Contains($"StdUdpRecv for module 0 of detector '{c.DetectorName}' is already running as pid {first.Pid}", second.Stderr);
        Assert.DoesNotContain("   at ", second.Stderr);
        // The first one still owns its notice endpoint and ring: frames sent to it come out.
        Assert.True(ZmqSocket.IsListening(c.ModuleFrameEndpoint(0)));
        using var sub = ZmqSocket.Subscriber(c.ModuleFrameEndpoint(0), receiveTimeoutMs: 50);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var sending = Task.Factory.StartNew(() =>
        {
            using var sim = new DetectorSimulator(c, new SimOptions { Rate = 100, Frames = long.MaxValue, Modules = [0] });
            sim.Run(stop.Token);
        }, TaskCreationOptions.LongRunning);
        var buffer = new byte[ModuleFrameNotice.Size];
        int notices = 0;
        while (notices < 20 && !stop.IsCancellationRequested)
            if (sub.Receive(buffer) == ModuleFrameNotice.Size)
                notices++;
        stop.Cancel();
        await sending;
        Assert.True(notices == 20, $"{notices} notices from the first receiver");
        Assert.True(first.Terminate(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, first.ExitCode);
        Assert.Equal("", LeftoverFiles(c));
    }

    [Fact]
    public void StdAssembler_SecondForTheSameDetector_ExitsNamingTheFirstWhichKeepsPublishing()
    {
        using var env = new TestEnv();
        var (c, path) = Detector(env);
        using var source = new ModuleFrameSource(c);
        using var first = new ServiceProcess("StdAssembler", path);
        Assert.True(first.WaitForLine($"StdAssembler {c.DetectorName}:", TimeSpan.FromSeconds(60)), first.Output);
        var second = Programs.Run("StdAssembler", [path]);
        Assert.Equal(1, second.ExitCode);
        Assert.Contains($"StdAssembler of detector '{c.DetectorName}' is already running as pid {first.Pid}", second.Stderr);
        using var sub = ZmqSocket.Subscriber(c.AssemblerEndpoint, receiveTimeoutMs: 50);
        // The first assembler's module sockets are subscribed when the source's XPUBs say so. Its
        // ImageMetadata goes out on a plain PUB, which drops what it sends before the test's
        // subscription has reached it and does not say when it has: only an image that arrives
        // shows it. Probe with single images until one does.
        source.WaitForSubscribers(TimeSpan.FromSeconds(10));
        ulong next = 1;
        do
        {
            Assert.True(next <= 20, "no image from the first assembler after 20 probes");
            for (int m = 0; m < Modules; m++)
                source.Publish(source.WritePattern(m, next));
            next++;
        }
        while (!sub.WaitReadable(TimeSpan.FromSeconds(1)));
        for (ulong id = next; id < next + 10; id++)
            for (int m = 0; m < Modules; m++)
                source.Publish(source.WritePattern(m, id));
        var buffer = new byte[ImageMetadata.Size];
        int images = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (images < 10 && DateTime.UtcNow < deadline)
            if (sub.Receive(buffer) == ImageMetadata.Size && ImageMetadata.Read(buffer).Id >= next) // not a probe
                images++;
        Assert.Equal(10, images);
        Assert.True(first.Terminate(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, first.ExitCode);
    }

    [Fact]
    public void StdAssembler_NoReceivers_WaitsSayingForWhatThenFailsAtTheTimeout()
    {
        using var env = new TestEnv();
        var (c, path) = Detector(env);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"wait_for_peers_s\":60", "\"wait_for_peers_s\":1.5"));
        var sw = Stopwatch.StartNew();
        var r = Programs.Run("StdAssembler", [path]);
        Assert.Equal(1, r.ExitCode);
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(1.5));
        Assert.Single(r.Stdout.Split('\n'), l => l.Contains($"waiting up to 1.5 s for {ShmRing.PathOf(c.FrameBufferName(0))}"));
        Assert.Contains($"is {ServiceRoles.ReceiverName(c, 0)} running?", r.Stderr);
        Assert.False(File.Exists(ShmRing.PathOf(c.ImageBufferName)));
        Assert.Equal("", LeftoverFiles(c));
    }

    [Fact]
    public void Up_Cleanup_WhenItCannotStart_LeavesTheRunningPipelinesRings()
    {
        using var env = new TestEnv();
        var (c, path) = Detector(env);
        using var receiver = new ServiceProcess("StdUdpRecv", path, "0");
        Assert.True(receiver.WaitForLine($"udp port {c.UdpPort(0)}", TimeSpan.FromSeconds(60)), receiver.Output);
        var up = Programs.Run("std-daq", ["up", path, "--cleanup"]);
        Assert.Equal(1, up.ExitCode);
        Assert.Contains($"already running as pid {receiver.Pid}", up.Stderr);
        Assert.True(File.Exists(ShmRing.PathOf(c.FrameBufferName(0))), "up --cleanup removed a running receiver's ring");
        Assert.True(receiver.Terminate(TimeSpan.FromSeconds(20)));

        // A start that fails half-way (module 2's port taken) removes what it made, and only that.
        using var taken = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram,
            System.Net.Sockets.ProtocolType.Udp);
        taken.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Any, c.UdpPort(2)));
        var half = Programs.Run("std-daq", ["up", path, "--cleanup"]);
        Assert.Equal(1, half.ExitCode);
        Assert.Contains($"{c.UdpPort(2)}", half.Stderr);
        Assert.True(File.Exists(ShmRing.PathOf(c.FrameBufferName(0))), "removed a ring it did not create");
        Assert.False(File.Exists(ShmRing.PathOf(c.FrameBufferName(1))), "left a ring it created");
        Assert.Equal("", LeftoverFiles(c));
    }

    [Fact]
    public void ShmListAndRm_RingOfARunningReceiver_IsShownAndKeptUntilItStops()
    {
        using var env = new TestEnv();
        var (c, path) = Detector(env);
        string ring = c.FrameBufferName(0);
        using var receiver = new ServiceProcess("StdUdpRecv", path, "0");
        Assert.True(receiver.WaitForLine($"udp port {c.UdpPort(0)}", TimeSpan.FromSeconds(60)), receiver.Output);

        var list = Programs.Run("std-daq", ["shm", "list"]);
        Assert.Equal(0, list.ExitCode);
        var line = list.Stdout.Split('\n').Single(l => l.StartsWith(ring + " ", StringComparison.Ordinal));
        Assert.Contains("FrameBuffer", line);
        Assert.Contains("32 x 1048576 B", line);
        Assert.Contains("ready", line);
        Assert.Contains($"pid {receiver.Pid} (StdUdpRecv)", line);
        var lockLine = list.Stdout.Split('\n').Single(l => l.StartsWith(ring + ".lock ", StringComparison.Ordinal));
        Assert.Contains($"held: {ServiceRoles.ReceiverName(c, 0)}", lockLine);

        var refused = Programs.Run("std-daq", ["shm", "rm", ring]);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains($"is in use by pid {receiver.Pid} (StdUdpRecv); stop it first, or --force", refused.Stderr);
        var byDetector = Programs.Run("std-daq", ["shm", "rm", "--detector", c.DetectorName]);
        Assert.Equal(1, byDetector.ExitCode);
        Assert.True(File.Exists(ShmRing.PathOf(ring)));
        Assert.True(RoleLock.IsHeld(RoleLock.PathFor(ring)));

        string foreign = env.Ring("foreign");
        File.WriteAllBytes(ShmRing.PathOf(foreign), Enumerable.Repeat((byte)7, 8192).ToArray());
        var notOurs = Programs.Run("std-daq", ["shm", "rm", foreign]);
        Assert.Equal(1, notOurs.ExitCode);
        Assert.Contains("is not std-daq's", notOurs.Stderr);
        Assert.True(File.Exists(ShmRing.PathOf(foreign)));

        Assert.True(receiver.Terminate(TimeSpan.FromSeconds(20)));
        var removed = Programs.Run("std-daq", ["shm", "rm", "--detector", c.DetectorName]);
        Assert.True(removed.ExitCode == 0, removed.Stdout + removed.Stderr);
        Assert.Contains($"removed {ShmRing.PathOf(ring)}", removed.Stdout);
        Assert.False(File.Exists(ShmRing.PathOf(ring)));
        Assert.Equal([ShmRing.PathOf(foreign)], Directory.EnumerateFiles("/dev/shm", c.DetectorName + "-*")); // not one of the detector's
    }

    [Fact]
    public void StdUdpRecv_LogLevelWarning_PrintsNoInfoLines()
    {
        using var env = new TestEnv();
        var (c, path) = Detector(env);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"stats_collection_period\":3600", "\"stats_collection_period\":0.2,\"log_level\":\"warning\""));
        using var receiver = new ServiceProcess("StdUdpRecv", path, "0");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!RoleLock.IsHeld(RoleLock.PathFor(c.FrameBufferName(0))) && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
        Assert.True(ZmqSocket.IsListening(c.ModuleFrameEndpoint(0)) || WaitListening(c.ModuleFrameEndpoint(0)), receiver.Output);
        // What is checked is an absence over time: no stats line in five stats periods, so the
        // wait is a time span, watched for the line (it fails as soon as one comes).
        Assert.False(receiver.WaitForLine("stats ", TimeSpan.FromSeconds(1)), receiver.Output);
        Assert.True(receiver.Terminate(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, receiver.ExitCode);
        Assert.DoesNotContain(" info: ", receiver.Output);
        Assert.DoesNotContain("stats ", receiver.Output);
    }

    private static bool WaitListening(string endpoint)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (ZmqSocket.IsListening(endpoint))
                return true;
            Thread.Sleep(20);
        }
        return false;
    }
}
