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
}
