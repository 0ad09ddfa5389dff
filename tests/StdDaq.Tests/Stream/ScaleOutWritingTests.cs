using System.Text.Json;
using StdDaq.Agent.Broker;
using StdDaq.Shared.Config;
using StdDaq.Shared.Memory;
using StdDaq.Tests.Support;
using StdDaq.Tests.Writer;

namespace StdDaq.Tests.Stream;

/// <summary>
/// Scale-out writing on one host: the source writes share 0/2 of a request itself (lead), a
/// replica fed by StdStreamSend/StdStreamRecv with --images 1/2 writes share 1/2 with its own
/// WriterAgent and StdH5Writer; one request, one success, a master file whose virtual datasets
/// read as the whole run.
/// </summary>
[Collection("broker")]
public sealed class ScaleOutWritingTests(BrokerFixture broker)
{
    private const string MasterScript = """
        import json, os, sys
        os.environ["HDF5_PLUGIN_PATH"] = sys.argv[2]
        import h5py, numpy as np
        master = sys.argv[1]
        with h5py.File(master, "r") as f:
            d = f["/entry/data/data"]
            ids = f["/entry/data/image_id"][:]
            status = f["/entry/data/status"][:]
            names = f.attrs["share_files"]
            names = names.decode() if isinstance(names, bytes) else names
            shares = [h5py.File(os.path.join(os.path.dirname(master), n), "r") for n in names.split("\n")]
            n = len(shares)
            rows_equal = all(np.array_equal(d[j], shares[j % n]["/entry/data/data"][j // n]) for j in range(d.shape[0]))
            ids_equal = all(int(ids[j]) == int(shares[j % n]["/entry/data/image_id"][j // n]) for j in range(d.shape[0]))
            out = {
                "shape": list(d.shape), "virtual": d.is_virtual, "image_id": ids.tolist(), "status": status.tolist(),
                "n_images_written": int(f["/entry/data/n_images_written"][()]),
                "attrs": {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()},
                "rows_equal_shares": rows_equal, "ids_equal_shares": ids_equal,
                "share_rows": [s["/entry/data/data"].shape[0] for s in shares],
            }
        print(json.dumps(out))
        """;

    private void DeleteQueues(params string[] queues)
    {
        using var connection = BrokerProtocol.Factory(broker.Url, "test-cleanup").CreateConnectionAsync().GetAwaiter().GetResult();
        using var channel = connection.CreateChannelAsync().GetAwaiter().GetResult();
        foreach (var q in queues)
            channel.QueueDeleteAsync(q, ifUnused: false, ifEmpty: false).GetAwaiter().GetResult();
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void TwoShares_OneRequest_MasterFileReadsAsTheWholeRunInImageOrder()
    {
        using var env = new TestEnv();
        string replicaName = env.Name + "-r1";
        string source = Path.Combine(env.Dir, "source.json"), replica = Path.Combine(env.Dir, "replica.json");
        string json = env.ConfigJson("jungfrau-raw", 2, 16, 1024, 1024, TestEnv.JungfrauColumn(2), TestEnv.FreeUdpPorts(2), slots: 64, timeoutMs: 200);
        json = json[..^1] + ",\"image_buffer_slots\":128}";
        File.WriteAllText(source, json);
        File.WriteAllText(replica, json.Replace($"\"detector_name\":\"{env.Name}\"", $"\"detector_name\":\"{replicaName}\""));
        var replicaConfig = DetectorConfigLoader.Parse(File.ReadAllText(replica));
        string address = $"tcp://127.0.0.1:{StreamSource.FreeTcpPort()}";
        string master = Path.Combine(env.Dir, "run.h5");
        var processes = new List<ServiceProcess>();
        try
        {
            // The replica first: its agent must have its queue bound before the request is sent.
            var follower = new ServiceProcess("WriterAgent", replica, "--broker-url", broker.Url, "--images", "1/2");
            processes.Add(follower);
            processes.Add(new ServiceProcess("StdH5Writer", replica));
            processes.Add(new ServiceProcess("StdStreamSend", source, address, "--images", "1/2"));
            processes.Add(new ServiceProcess("StdStreamRecv", source, address, "--images", "1/2", "--detector-name", replicaName));
            Assert.True(follower.WaitForLine("connected, exchanges and queues declared", TimeSpan.FromSeconds(60)), follower.Output);
            Assert.Contains($"{replicaName}.writer_agent.1of2", follower.Output);

            // The lead: the whole source pipeline, its agent with share 0/2, and the request (checked
            // by `up` image by image against the simulator's pattern through libhdf5).
            using var lead = new ServiceProcess("std-daq", "up", source, "--simulate", "--rate", "100", "--seconds", "600", "--cleanup",
                "--broker-url", broker.Url, "--writer-share", "0/2", "--write", master, "--images", "41", "--timeout", "120");
            Assert.True(lead.WaitForExit(TimeSpan.FromSeconds(180)), "the lead's up did not end:\n" + lead.Output);
            string all = $"lead (exit {lead.ExitCode}):\n{lead.Output}\n" + string.Join("\n", processes.Select(p => $"{p.Program}:\n{p.Output}"));
            Assert.True(lead.ExitCode == 0, all);
            Assert.Contains("request_success", lead.Output);
            Assert.Contains("OK: the file holds the requested images, exactly as simulated", lead.Output);
            Assert.Contains("\"shares\":2", lead.Output);
            Assert.Contains("\"n_images_written\":41", lead.Output);

            // h5py, an independent reader, through the virtual datasets.
            var h5 = JsonDocument.Parse(Python.Run(env, MasterScript, master, H5py.PluginPath)).RootElement;
            Assert.Equal([41, 1024, 1024], h5.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()));
            Assert.True(h5.GetProperty("virtual").GetBoolean());
            var ids = h5.GetProperty("image_id").EnumerateArray().Select(x => x.GetUInt64()).ToArray();
            Assert.Equal(0UL, ids[0] % 2); // the lead's share starts the run
            Assert.Equal(Enumerable.Range(0, 41).Select(i => ids[0] + (ulong)i), ids);
            Assert.All(h5.GetProperty("status").EnumerateArray(), s => Assert.Equal(0, s.GetInt32()));
            Assert.Equal([21, 20], h5.GetProperty("share_rows").EnumerateArray().Select(x => x.GetInt32()));
            Assert.True(h5.GetProperty("rows_equal_shares").GetBoolean(), "a master row differs from its share file's row");
            Assert.True(h5.GetProperty("ids_equal_shares").GetBoolean(), "a master image id differs from its share file's");
            Assert.Equal(41, h5.GetProperty("n_images_written").GetInt32());
            var attrs = h5.GetProperty("attrs");
            Assert.Equal(2, attrs.GetProperty("shares").GetInt32());
            Assert.Equal(0, attrs.GetProperty("interrupted").GetInt32());
            Assert.Equal(env.Name, attrs.GetProperty("detector_name").GetString());
        }
        finally
        {
            foreach (var p in processes)
            {
                p.Terminate(TimeSpan.FromSeconds(10));
                p.Dispose();
            }
            ShmRing.Unlink(replicaConfig.ImageBufferName);
            // The two agents bound durable queues with the tag '#' in the shared broker: gone with
            // the test, so they take no other test's requests.
            DeleteQueues($"{env.Name}.writer_agent.0of2.requests", $"{replicaName}.writer_agent.1of2.requests");
        }
    }
}
