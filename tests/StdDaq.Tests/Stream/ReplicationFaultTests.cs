using System.Text.Json;
using Xunit.Abstractions;
using System.Text.RegularExpressions;
using StdDaq.Shared.Interop;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Stream;

/// <summary>
/// Replication faults between two servers (<see cref="ServerPair"/>): sender restart, receiver
/// restart, the link down and back, a stalled receiver, a byte flipped on the wire. Server A runs a
/// source in the assembler's place (StdDaq.StreamChild source: ids 1..N at a fixed rate, every
/// pixel a function of the id) and StdStreamSend; server B StdStreamRecv. Each test counts: the
/// images in B's ImageBuffer (a ring of more slots than N, so nothing published is overwritten;
/// every one checked pixel by pixel against the source's pattern by StdDaq.StreamChild verify)
/// plus each loss the services report by cause in their totals (printed at SIGTERM) equals N, the
/// images the source made; nothing wrong is in B's ring as an image; both sides go on by themselves.
/// </summary>
[Collection("serial")] // two servers streaming 100 MB/s: alone, so their timing is theirs
public sealed class ReplicationFaultTests(ITestOutputHelper output)
{
    private const double Rate = 50;
    private static readonly TimeSpan Up = TimeSpan.FromSeconds(30);

    /// <summary>The counts of a run, in the test's output (shown with --logger "console;verbosity=detailed").</summary>
    private void Report(Outcome o)
    {
        output.WriteLine($"B's ring: {o.Replica.Json}");
        Report("receiver", o.Recv);
        Report("sender", o.Send);
    }

    private void Report(string who, Dictionary<string, long> totals) =>
        output.WriteLine($"{who}: " + string.Join(' ', totals.Where(kv => kv.Value != 0).Select(kv => $"{kv.Key}={kv.Value}")));

    [Theory]
    [InlineData(15)]
    [InlineData(9)]
    public void SenderRestart_ReceiverCountsTheRestartAndEveryIdNoSessionDelivered(int signal)
    {
        const int n = 300;
        using var rig = Rig.Running(n);
        var first = rig.Sender;
        rig.Stop(first, signal);
        rig.WaitPublished(125); // about a second of ids no sender sees
        rig.WaitConnected(rig.StartSender());
        var (replica, recv, s2, all) = rig.End();
        Report(rig.Outcome!);

        Assert.True(1 == recv["sender_restarts"], all);
        // Every id of 1..N is in B's ring or counted lost under one cause.
        Assert.True(n == replica.Images + recv["messages_lost"] + recv["images_lost_sender_restart"], all);
        Assert.True(replica.Images == recv["images_published"], all);
        // The new session's first images went while no receiver was connected yet: dropped and numbered, so counted by the gap.
        Assert.True(s2["images_dropped_hwm"] == recv["messages_lost"], all);
        Assert.True(s2["images_sent"] + s2["images_dropped_hwm"] == s2["images_received"], all);
        Assert.True(recv["images_lost_sender_restart"] >= 25, all); // at least the ids published while no sender ran
        if (signal == 15)
        {
            // A stopped sender hands its queue to TCP before it exits: only the ids no sender saw are lost across the restart.
            var s1 = Rig.Totals(first);
            Report("first sender", s1);
            Assert.Contains("queue flushed at stop", first.Output);
            Assert.True(n - s1["images_received"] - s2["images_received"] == recv["images_lost_sender_restart"], all);
            Assert.True(s1["images_sent"] + s2["images_sent"] == recv["images_published"], all);
        }
    }

    [Fact]
    public void SenderStoppedWithAQueue_HandsItToTcpBeforeExiting()
    {
        const int n = 200;
        using var rig = Rig.Running(n, faultAt: 50);
        var sender = rig.Sender;
        Assert.Equal(0, Libc.kill(rig.Receiver.Pid, 19)); // SIGSTOP: the sender's queue grows (about 50 images, below its high-water mark)
        rig.WaitPublished(100);
        Assert.Equal(0, Libc.kill(sender.Pid, 15));
        Thread.Sleep(500); // the receiver still takes nothing for the first half second of the sender's stop
        Assert.Equal(0, Libc.kill(rig.Receiver.Pid, 18));
        Assert.True(sender.WaitForExit(Up) && sender.ExitCode == 0, sender.Output);
        var (replica, recv, send, all) = rig.End(lastId: (ulong)Rig.Totals(sender)["images_sent"]);
        Report(rig.Outcome!);

        Assert.Contains("queue flushed at stop", sender.Output);
        Assert.True(send["images_sent"] >= 100 && send["images_dropped_hwm"] == 0, all);
        // Every image the sender counted as sent arrived, the queue at its stop included.
        Assert.True($"1-{send["images_sent"]}" == replica.Ids && replica.Bad.Length == 0, all);
        Assert.True(send["images_sent"] == recv["images_published"] && 0 == recv["messages_lost"], all);
    }

    [Theory]
    [InlineData(15)]
    [InlineData(9)]
    public void ReceiverRestart_NewReceiverResumesTheSessionAndCountsWhatNeitherRunGot(int signal)
    {
        const int n = 300;
        using var rig = Rig.Running(n);
        var firstRun = rig.Receiver;
        rig.Stop(firstRun, signal);
        rig.WaitPublished(125);
        rig.StartReceiver();
        rig.WaitConnected(rig.Sender, connections: 2);
        var (replica, recv, send, all) = rig.End();
        Report(rig.Outcome!);

        Assert.Contains("resumed sender session", rig.Receiver.Output);
        Assert.True(n == replica.Images + recv["messages_lost_receiver_restart"] + recv["messages_lost"], all);
        Assert.True(send["images_sent"] + send["images_dropped_hwm"] == n, all);
        // With no receiver the sender drops (numbered); what it had sent towards the stopped one is lost there too.
        Assert.True(send["images_dropped_hwm"] >= 1, all);
        Assert.True(recv["messages_lost_receiver_restart"] + recv["messages_lost"] >= send["images_dropped_hwm"], all);
        if (signal == 15)
        {
            var r1 = Rig.Totals(firstRun);
            Report("first receiver run", r1);
            Assert.True(r1["images_published"] + recv["images_published"] == replica.Images, all);
            Assert.True(0 == replica.Odd, all);
        }
        else
            Assert.True(replica.Odd <= 1, all); // a slot the killed receiver was writing stays odd: never published
    }

    [Fact]
    public void LinkDownFourSeconds_SenderDropsAtTheHighWaterMarkAndReceiverCountsTheSameGap()
    {
        const int n = 500;
        using var rig = Rig.Running(n);
        rig.Servers.Exec(rig.Servers.A, "ip", ["link", "set", $"v{rig.Servers.A}", "down"]);
        Thread.Sleep(TimeSpan.FromSeconds(4)); // the fault itself: four seconds without a link
        var up = rig.Servers.Exec(rig.Servers.A, "ip", ["link", "set", $"v{rig.Servers.A}", "up"]);
        Assert.True(up.ExitCode == 0, up.Stderr);
        var (replica, recv, send, all) = rig.End();
        Report(rig.Outcome!);

        Assert.True(n == replica.Images + recv["messages_lost"], all);
        Assert.True(replica.Images == recv["images_published"], all);
        Assert.True(send["images_dropped_hwm"] >= 1, all); // 200 images of 2 MiB against a high-water mark of 128
        Assert.True(send["images_sent"] + send["images_dropped_hwm"] == n, all);
        // TCP rode the outage out (one connection): what did not arrive is exactly what the sender dropped.
        // Had libzmq reconnected, what was in the old connection would be lost too and counted by the gap.
        if (recv["sender_connections"] == 1)
            Assert.True(send["images_dropped_hwm"] == recv["messages_lost"], all);
        else
            Assert.True(recv["messages_lost"] >= send["images_dropped_hwm"], all);
    }

    [Fact]
    public void ReceiverStalledFourSeconds_SenderDropsWithoutHoldingUpAndReceiverCountsTheGap()
    {
        const int n = 400;
        using var rig = Rig.Running(n);
        Assert.Equal(0, Libc.kill(rig.Receiver.Pid, 19)); // SIGSTOP: a receiver that takes nothing
        Thread.Sleep(TimeSpan.FromSeconds(4));
        Assert.Equal(0, Libc.kill(rig.Receiver.Pid, 18)); // SIGCONT
        var (replica, recv, send, all) = rig.End();
        Report(rig.Outcome!);

        Assert.True(n == replica.Images + recv["messages_lost"], all);
        Assert.True(replica.Images == recv["images_published"], all);
        Assert.True(send["images_dropped_hwm"] >= 1, all);
        Assert.True(send["images_dropped_hwm"] == recv["messages_lost"], all);
        // The sender kept up with the source: every image's metadata taken, none overwritten before it was read.
        Assert.True(n == send["images_received"] && 0 == send["images_overrun"] && 0 == send["metadata_gaps"], all);
        Assert.True(send["images_sent"] + send["images_dropped_hwm"] == n, all);
        // Each stall costs one timed-out send, not one per image.
        Assert.True(send["send_blocked"] < send["images_dropped_hwm"], all);
        var time = Regex.Match(rig.Source.Output, @"published all \d+ in ([\d.]+) s");
        // The source never waited (a wait for the stalled receiver would add its 4 s; 2 s of slack for a loaded machine).
        Assert.True(double.Parse(time.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < n / Rate + 2, all);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ByteFlippedOnTheWire_WithChecksumNeverPublished_WithoutPublishedWrong(bool checksum)
    {
        const int n = 100;
        // Messages 10, 20, 30 of the connection = ids 11, 21, 31.
        using var rig = Rig.Running(n, faultAt: 0, throughProxy: "10,20,30", senderOptions: checksum ? [] : ["--no-checksum"]);
        var (replica, recv, send, all) = rig.End();
        Report(rig.Outcome!);

        Assert.Equal(3, Regex.Matches(rig.Proxy!.Output, "corrupted message").Count);
        Assert.True(n == send["images_sent"], all);
        if (checksum)
        {
            Assert.True(3 == recv["images_corrupt"], all);
            Assert.True(n - 3 == recv["images_published"], all);
            Assert.True("1-10,12-20,22-30,32-100" == replica.Ids, all);
            Assert.True(replica.Bad.Length == 0, all);
        }
        else
        {
            // Honestly: without the checksum nothing can tell, and the flipped images are published as good.
            Assert.True(0 == recv["images_corrupt"], all);
            Assert.True(n == recv["images_published"], all);
            Assert.True("1-100" == replica.Ids, all);
            Assert.Equal([11UL, 21UL, 31UL], replica.Bad);
        }
    }

    /// <summary>What StdDaq.StreamChild verify found in B's ring.</summary>
    private sealed record Replica(int Images, string Ids, ulong[] Bad, string[] Problems, int Odd, string Json);

    /// <summary>The end of a run: B's ring, the receiver's and the (last) sender's totals, and everything a failed assertion needs.</summary>
    private sealed record Outcome(Replica Replica, Dictionary<string, long> Recv, Dictionary<string, long> Send, string All);

    /// <summary>Two servers, a config of 2 MiB images with a ring of more than N slots, the source on A and the receiver on B.</summary>
    private sealed class Rig : IDisposable
    {
        private const int Port = 5700, ProxyPort = 5800;
        private readonly TestEnv _env = new();
        private readonly int _n;
        private readonly string _config, _go, _address;
        private readonly List<ServiceProcess> _processes = [];

        public ServerPair Servers { get; }
        public ServiceProcess Source { get; }
        public ServiceProcess Receiver { get; private set; } = null!;
        /// <summary>The sender started last.</summary>
        public ServiceProcess Sender { get; private set; } = null!;
        public Outcome? Outcome { get; private set; }
        public ServiceProcess? Proxy { get; }

        public Rig(int n, string? throughProxy = null)
        {
            _n = n;
            Servers = new ServerPair();
            try
            {
                _config = Path.Combine(Servers.Dir, "detector.json");
                string json = _env.ConfigJson("jungfrau-raw", 2, 16, 1024, 1024, TestEnv.JungfrauColumn(2), 50000);
                File.WriteAllText(_config, json[..^1] + $",\"image_buffer_slots\":{n + 8},\"stats_collection_period\":1}}");
                _go = Path.Combine(Servers.Dir, "go");
                _address = $"tcp://{Servers.AddressA}:{Port}";
                Source = Start(Servers.StartOurs(Servers.A, "StdDaq.StreamChild", "source", _config, $"{n}", $"{Rate}", _go));
                Assert.True(Source.WaitForLine("ready", Up), Source.Output);
                if (throughProxy != null)
                {
                    Proxy = Start(Servers.StartOurs(Servers.B, "StdDaq.StreamChild", "proxy", $"{ProxyPort}", Servers.AddressA, $"{Port}", throughProxy));
                    Assert.True(Proxy.WaitForLine("listening", Up), Proxy.Output);
                }
                StartReceiver();
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        private ServiceProcess Start(ServiceProcess p)
        {
            _processes.Add(p);
            return p;
        }

        /// <summary>A rig whose source has begun and published <paramref name="faultAt"/> images (0: not waited for), the time for a fault.</summary>
        public static Rig Running(int n, int faultAt = 75, string? throughProxy = null, string[]? senderOptions = null)
        {
            var rig = new Rig(n, throughProxy);
            try
            {
                rig.Go(rig.StartSender(senderOptions ?? []));
                if (faultAt > 0)
                    rig.WaitPublished(faultAt);
                return rig;
            }
            catch
            {
                rig.Dispose();
                throw;
            }
        }

        public ServiceProcess StartSender(params string[] options) =>
            Sender = Start(Servers.StartOurs(Servers.A, "StdStreamSend", [_config, _address, .. options]));

        /// <summary>
        /// After the source's last image: checks B's ring (<see cref="Finish"/>), stops the
        /// receiver and the sender (SIGTERM) and takes their totals.
        /// </summary>
        public Outcome End(ulong? lastId = null)
        {
            var replica = Finish(lastId);
            var recv = Totals(Receiver, terminate: true);
            var send = Totals(Sender, terminate: true);
            return Outcome = new Outcome(replica, recv, send, Describe(replica));
        }

        public void StartReceiver() =>
            Receiver = Start(Servers.StartOurs(Servers.B, "StdStreamRecv", _config, Proxy != null ? $"tcp://127.0.0.1:{ProxyPort}" : _address));

        /// <summary>Waits until the sender's <paramref name="connections"/>-th receiver connected (handshake).</summary>
        public void WaitConnected(ServiceProcess sender, int connections = 1)
        {
            var deadline = DateTime.UtcNow + Up;
            while (Regex.Matches(sender.Output, "a receiver connected").Count < connections)
            {
                Assert.True(DateTime.UtcNow < deadline && !sender.HasExited, $"no receiver connected:\n{sender.Output}\n{Receiver.Output}");
                sender.WaitForLine("a receiver connected", TimeSpan.FromMilliseconds(200));
            }
        }

        /// <summary>Waits for the sender's receiver and its subscription to the source, then lets the source begin.</summary>
        public void Go(ServiceProcess sender)
        {
            WaitConnected(sender);
            Assert.True(Source.WaitForLine("subscribed", Up), Source.Output + "\n" + sender.Output);
            File.WriteAllText(_go, "");
        }

        public void WaitPublished(int id) => Assert.True(Source.WaitForLine($"published {id}", Up), Source.Output);

        /// <summary>SIGTERM (it must stop by itself, exit 0) or SIGKILL.</summary>
        public void Stop(ServiceProcess p, int signal)
        {
            if (signal == 15)
            {
                Assert.True(p.Terminate(Up), p.Output);
                Assert.True(p.ExitCode == 0, p.Output);
            }
            else
            {
                Assert.Equal(0, Libc.kill(p.Pid, signal));
                Assert.True(p.WaitForExit(Up), p.Output);
            }
        }

        /// <summary>Waits for the source's last image, then for B to hold <paramref name="lastId"/> (default: the source's last; at most 20 s), and checks B's ring.</summary>
        private Replica Finish(ulong? lastId = null)
        {
            Assert.True(Source.WaitForLine("published all", TimeSpan.FromSeconds(_n / Rate + 30)), Source.Output);
            var r = Servers.Exec(Servers.B, "dotnet", [Programs.Dll("StdDaq.StreamChild"), "verify", _config, $"{lastId ?? (ulong)_n}", "20000"]);
            Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var e = doc.RootElement;
            return new Replica(e.GetProperty("images").GetInt32(), e.GetProperty("ids").GetString()!,
                e.GetProperty("bad").EnumerateArray().Select(x => x.GetUInt64()).ToArray(),
                e.GetProperty("problems").EnumerateArray().Select(x => x.GetString()!).ToArray(), e.GetProperty("odd").GetInt32(), r.Stdout.Trim());
        }

        /// <summary>The totals a service printed when it stopped (SIGTERM first if <paramref name="terminate"/>), key by key.</summary>
        public static Dictionary<string, long> Totals(ServiceProcess p, bool terminate = false)
        {
            if (terminate)
                Assert.True(p.Terminate(Up) && p.ExitCode == 0, p.Output);
            var line = p.Output.Split('\n').LastOrDefault(l => l.Contains("stopped; totals:"));
            Assert.True(line != null, $"{p.Program} printed no totals:\n{p.Output}");
            return Regex.Matches(line[line.IndexOf("totals:", StringComparison.Ordinal)..], @"(\w+)=(\d+)")
                .ToDictionary(m => m.Groups[1].Value, m => long.Parse(m.Groups[2].Value));
        }

        /// <summary>Everything a failed assertion needs: B's ring and every process's output.</summary>
        private string Describe(Replica replica) =>
            $"replica: {replica.Json}\n" + string.Join("\n", _processes
                .Select(p => $"--- {p.Program}:\n{string.Join('\n', p.Output.Split('\n').Where(l => !l.Contains("stats ") || l.Contains("stopped")))}"));

        public void Dispose()
        {
            foreach (var p in _processes)
                p.Dispose();
            Servers.Dispose();
            _env.Dispose();
        }
    }
}
