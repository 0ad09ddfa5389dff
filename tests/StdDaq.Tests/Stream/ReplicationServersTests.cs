using System.Text.RegularExpressions;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Config;
using StdDaq.Shared.Interop;
using StdDaq.Tests.Support;
using StdDaq.Tests.Writer;

namespace StdDaq.Tests.Stream;

/// <summary>
/// Replication between two servers (network + mount namespaces, <see cref="ServerPair"/>): the
/// source runs the pipeline and StdStreamSend, the replica StdStreamRecv and a writer under the
/// very same names; a write request on the replica gets the source's images.
/// </summary>
[Collection("serial")] // a whole pipeline, a broker and a writer on two servers: alone, so it starves no timing-bound test
public sealed class ReplicationServersTests
{
    [Fact]
    [Trait("Category", "Slow")]
    public void ReplicaOnAnotherServer_WriterThereWritesTheSourcesImages() => Replicate(parts: 1);

    /// <summary>Four part senders on the source, four part receivers on the replica: the writer there gets whole images.</summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void ReplicaInFourParts_WriterThereWritesTheSourcesImages() => Replicate(parts: 4);

    /// <summary>
    /// The source's pipeline (simulated detector) with <paramref name="parts"/> senders (one stream
    /// each; 1: whole images), as many receivers on the replica, and a write of 50 images there,
    /// which the writer's run checks pixel by pixel against the simulator's pattern.
    /// </summary>
    private static void Replicate(int parts)
    {
        using var env = new TestEnv();
        using var servers = new ServerPair();
        string config = Path.Combine(servers.Dir, "detector.json");
        File.WriteAllText(config, env.ConfigJson("jungfrau-raw", 2, 16, 1024, 1024, TestEnv.JungfrauColumn(2), 50000, slots: 64, timeoutMs: 200));
        string[] streams = Enumerable.Range(0, parts).Select(i => $"tcp://{servers.AddressA}:{5700 + i}").ToArray();
        string[] Part(int i) => parts == 1 ? [] : ["--part", $"{i}/{parts}"];

        using var source = servers.StartOurs(servers.A, "std-daq", "up", config, "--simulate", "--rate", "100", "--seconds", "600", "--cleanup");
        var services = new List<ServiceProcess>();
        try
        {
            for (int i = 0; i < parts; i++)
                services.Add(servers.StartOurs(servers.A, "StdStreamSend", [config, streams[i], .. Part(i)]));
            for (int i = 0; i < parts; i++)
                services.Add(servers.StartOurs(servers.B, "StdStreamRecv", [config, streams[i], .. Part(i)]));
            string file = Path.Combine(servers.Dir, "replica.h5");
            var write = servers.Exec(servers.B, "dotnet", [Programs.Dll("std-daq"), "up", config, "--writer-only", "--private-broker",
                "--write", file, "--images", "50", "--timeout", "120", "--cleanup"], TimeSpan.FromMinutes(4));
            string all = $"writer on B (exit {write.ExitCode}):\n{write.Stdout}\n{write.Stderr}\nsource:\n{source.Output}\n"
                + string.Join("\n", services.Select(s => s.Output));
            Assert.True(write.ExitCode == 0, all);
            // The writer checks every pixel of every image against the simulator's pattern for its id.
            Assert.Contains("OK: the file holds the requested images, exactly as simulated", write.Stdout);

            var h5 = H5py.Read(env, file);
            Assert.Equal(50, h5.GetProperty("shape")[0].GetInt64());
            Assert.All(H5py.Longs(h5.GetProperty("status")), s => Assert.Equal(0, s));
            var ids = H5py.ULongs(h5.GetProperty("image_id"));
            Assert.Equal(Enumerable.Range(0, 50).Select(i => ids[0] + (ulong)i), ids);
        }
        finally
        {
            foreach (var s in Enumerable.Reverse(services))
                s.Dispose();
        }
    }

    /// <summary>
    /// Scale-out writing over two replicas on server B (each its own StdStreamRecv, writer and
    /// agent, --images 0/2 and 1/2) fed by two StdStreamSend on server A: one request, one success,
    /// and the master file read through its virtual datasets holds every image in id order with
    /// the simulator's pixels, as one server's file would.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void RoundRobinOverTwoReplicas_MasterFileEqualsWhatOneServerWrites()
    {
        using var env = new TestEnv();
        using var servers = new ServerPair();
        string json = env.ConfigJson("jungfrau-raw", 2, 16, 1024, 1024, TestEnv.JungfrauColumn(2), 50000, slots: 64, timeoutMs: 200);
        json = json[..^1] + ",\"image_buffer_slots\":128}";
        string source = Path.Combine(servers.Dir, "source.json");
        File.WriteAllText(source, json);
        var replicas = new string[2];
        for (int i = 0; i < 2; i++)
        {
            replicas[i] = Path.Combine(servers.Dir, $"replica{i}.json");
            File.WriteAllText(replicas[i], json.Replace($"\"detector_name\":\"{env.Name}\"", $"\"detector_name\":\"{env.Name}-r{i}\""));
        }
        var processes = new List<ServiceProcess>();
        try
        {
            processes.Add(servers.StartOurs(servers.A, "std-daq", "up", source, "--simulate", "--rate", "100", "--seconds", "600", "--cleanup"));
            var broker = servers.StartOurs(servers.B, "std-daq", "up", replicas[0], "--writer-only", "--private-broker", "--writer-share", "0/2");
            processes.Add(broker);
            for (int i = 0; i < 2; i++)
            {
                string stream = $"tcp://{servers.AddressA}:{5710 + i}";
                processes.Add(servers.StartOurs(servers.A, "StdStreamSend", source, stream, "--images", $"{i}/2"));
                processes.Add(servers.StartOurs(servers.B, "StdStreamRecv", source, stream, "--images", $"{i}/2", "--detector-name", $"{env.Name}-r{i}"));
            }
            Assert.True(broker.WaitForLine("WriterAgent on broker", TimeSpan.FromSeconds(120)), broker.Output);
            string url = Regex.Match(broker.Output, @"RabbitMQ \S+ on (\S+)").Groups[1].Value;
            Assert.NotEmpty(url);
            processes.Add(servers.StartOurs(servers.B, "StdH5Writer", replicas[1]));
            var follower = servers.StartOurs(servers.B, "WriterAgent", replicas[1], "--broker-url", url, "--images", "1/2");
            processes.Add(follower);
            Assert.True(follower.WaitForLine("connected, exchanges and queues declared", TimeSpan.FromSeconds(60)), follower.Output);

            string master = Path.Combine(servers.Dir, "run.h5");
            var write = servers.Exec(servers.B, "dotnet", [Programs.Dll("std-daq"), "write", master, "40", "--wait", "--broker-url", url,
                "--timeout", "120"], TimeSpan.FromMinutes(3));
            string all = $"write (exit {write.ExitCode}):\n{write.Stdout}\n{write.Stderr}\n" +
                string.Join("\n", processes.Select(p => $"{p.Program}:\n{p.Output}"));
            Assert.True(write.ExitCode == 0, all);
            Assert.Contains("\"n_images_written\":40", write.Stdout);

            // Our libhdf5 reader, through the virtual datasets: every image as the simulator made it, in id order.
            var config = DetectorConfigLoader.Parse(json);
            using (var h5 = Hdf5File.OpenRead(master))
            {
                Assert.Equal([40L, 1024, 1024], h5.Shape("/entry/data/data"));
                var ids = new ulong[40];
                h5.ReadUInt64("/entry/data/image_id", ids);
                var status = new ushort[40];
                h5.ReadUInt16("/entry/data/status", status);
                Assert.Equal(Enumerable.Range(0, 40).Select(i => ids[0] + (ulong)i), ids);
                Assert.All(status, s => Assert.Equal(0, s));
                var image = new byte[1024 * 1024 * 2];
                for (int i = 0; i < 40; i++)
                {
                    h5.ReadImage("/entry/data/data", i, image);
                    Assert.True(SimulatedImage.Expected(config, ids[i], _ => true).AsSpan().SequenceEqual(image), $"image {ids[i]} differs");
                }
            }
            // h5py too: one dataset of 40 images, each share's rows where they belong.
            var py = Python.Run(env, """
                import sys, h5py, numpy as np
                with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "r") as s0, h5py.File(sys.argv[3], "r") as s1:
                    d = f["/entry/data/data"]
                    ok = d.is_virtual and d.shape == (40, 1024, 1024) and all(
                        np.array_equal(d[j], (s0 if j % 2 == 0 else s1)["/entry/data/data"][j // 2]) for j in range(40))
                    print("equal" if ok else "DIFFERENT")
                """, master, Path.Combine(servers.Dir, "run_share0of2.h5"), Path.Combine(servers.Dir, "run_share1of2.h5"));
            Assert.Equal("equal", py.Trim());
        }
        finally
        {
            foreach (var p in processes)
            {
                p.Terminate(TimeSpan.FromSeconds(10));
                p.Dispose();
            }
        }
    }
}
