using System.Diagnostics;
using StdDaq.Shared.Memory;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Shared;

// Serial with the UDP tests: the sequence-lock check keeps both cores busy for 2 s.
[Collection("serial")]
public class ShmRingTests
{
    [Fact]
    public void CreateOrAttach_New_WritesASelfDescribingAlignedLayout()
    {
        using var env = new TestEnv();
        string name = env.Ring("ring");
        using var ring = ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 10_000, 5);
        Assert.True(ring.Created);
        Assert.Equal(RingHeader.MagicValue, ring.Header.Magic);
        Assert.Equal(12288, ring.SlotStride);
        Assert.Equal(0UL, ring.Header.DataOffset % 4096);
        Assert.Equal(Environment.ProcessId, ring.Header.CreatorPid);
        Assert.Equal((long)ring.Header.TotalBytes, new FileInfo(ShmRing.PathOf(name)).Length);
        Assert.Equal(2, ring.SlotOf(7));
    }

    [Fact]
    public void Attach_SameLayout_SeesTheCreatorsData()
    {
        using var env = new TestEnv();
        string name = env.Ring("ring");
        using var writer = ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 4096, 4);
        writer.BeginWrite(3);
        writer.SlotSpan(3).Fill(0x5A);
        writer.Slot(3).ImageId = 77;
        ulong seq = writer.EndWrite(3);
        using var reader = ShmRing.Attach(name, RingKind.FrameBuffer, 4096, 4);
        Assert.False(reader.Created);
        Assert.Equal(77UL, reader.Slot(3).ImageId);
        Assert.Equal(seq, reader.ReadSequence(3));
        Assert.Equal(2UL, seq);
        Assert.True(reader.SlotSpan(3).IndexOfAnyExcept((byte)0x5A) < 0);
        using var again = ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 4096, 4);
        Assert.False(again.Created);
    }

    [Fact]
    public void CreateOrAttach_DifferentGeometry_FailsClearlyAndKeepsTheSegment()
    {
        using var env = new TestEnv();
        string name = env.Ring("ring");
        using var first = ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 4096, 4);
        long size = new FileInfo(ShmRing.PathOf(name)).Length;
        var e = Assert.Throws<RingBufferException>(() => ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 8192, 4));
        Assert.Contains("has 4 slots x 4096 bytes, expected 4 slots x 8192 bytes", e.Message);
        Assert.Contains(ShmRing.PathOf(name), e.Message);
        Assert.Equal(size, new FileInfo(ShmRing.PathOf(name)).Length);
        var k = Assert.Throws<RingBufferException>(() => ShmRing.Attach(name, RingKind.ImageBuffer));
        Assert.Contains("is a FrameBuffer, expected a ImageBuffer", k.Message);
    }

    [Fact]
    public void Attach_SegmentOfAnotherLayoutVersion_RefusedNamingBothVersions()
    {
        using var env = new TestEnv();
        string name = env.Ring("old");
        ShmRing.CreateOrAttach(name, RingKind.ImageBuffer, 4096, 2).Dispose();
        // As a process of layout version 1 (a 64-bit missing-module mask @64) would have made it:
        // RingHeader.LayoutVersion is the u32 @8.
        using (var f = new FileStream(ShmRing.PathOf(name), FileMode.Open, FileAccess.Write))
        {
            f.Position = 8;
            f.Write(BitConverter.GetBytes(1u));
        }
        var e = Assert.Throws<RingBufferException>(() => ShmRing.Attach(name, RingKind.ImageBuffer));
        Assert.Contains("has layout version 1, this program knows 2", e.Message);
        Assert.Throws<RingBufferException>(() => ShmRing.CreateOrAttach(name, RingKind.ImageBuffer, 4096, 2));
    }

    [Fact]
    public void Attach_Missing_SaysItDoesNotExist()
    {
        var e = Assert.Throws<RingBufferException>(() => ShmRing.Attach($"no-such-ring-{Environment.ProcessId}"));
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void Attach_ForeignFile_IsRejectedNamingTheRemoveCommand()
    {
        using var env = new TestEnv();
        string name = env.Ring("foreign");
        File.WriteAllBytes(ShmRing.PathOf(name), Enumerable.Repeat((byte)0xAB, 8192).ToArray());
        var e = Assert.Throws<RingBufferException>(() => ShmRing.Attach(name));
        Assert.Contains("bad magic", e.Message);
        var c = Assert.Throws<RingBufferException>(() => ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 4096, 4, TimeSpan.FromSeconds(1)));
        Assert.Contains($"std-daq shm rm --force {name}", c.Message);
        Assert.Equal(8192, new FileInfo(ShmRing.PathOf(name)).Length); // never replaced
    }

    [Theory]
    [InlineData(0)]     // created, killed before ftruncate
    [InlineData(8192)]  // killed after ftruncate, before the header
    public void CreateOrAttach_HalfMadeSegmentNobodyUses_IsReplaced(int size)
    {
        using var env = new TestEnv();
        string name = env.Ring("halfmade");
        File.WriteAllBytes(ShmRing.PathOf(name), new byte[size]);
        var log = new List<string>();
        using var ring = ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 4096, 4, TimeSpan.FromSeconds(5), log.Add);
        Assert.True(ring.Created);
        Assert.Equal(1u, ring.Header.Ready);
        Assert.Contains(log, l => l.StartsWith($"replacing {ShmRing.PathOf(name)}", StringComparison.Ordinal));
    }

    [Fact]
    public void CreateOrAttach_HalfMadeSegmentAnotherProcessHolds_WaitsThenNamesIt()
    {
        using var env = new TestEnv();
        string name = env.Ring("busy");
        string path = ShmRing.PathOf(name);
        File.WriteAllBytes(path, []);
        // A live process with the segment open: its creator, still at work (as far as anyone can tell).
        using var holder = Process.Start(new ProcessStartInfo("sh", ["-c", $"exec 3<{path}; echo open; sleep 30"]) { RedirectStandardOutput = true })!;
        try
        {
            Assert.Equal("open", holder.StandardOutput.ReadLine());
            var sw = Stopwatch.StartNew();
            var e = Assert.Throws<RingBufferException>(() => ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 4096, 4, TimeSpan.FromMilliseconds(300)));
            Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(250), $"gave up after {sw.Elapsed}");
            Assert.Contains($"pid {holder.Id}", e.Message);
            Assert.Contains($"std-daq shm rm {name}", e.Message);
            Assert.Equal(0, new FileInfo(path).Length); // left alone
        }
        finally
        {
            holder.Kill();
        }
    }

    [Fact]
    public void CreateOrAttach_TemporaryOfADeadCreator_IsRemoved()
    {
        using var env = new TestEnv();
        string name = env.Ring("tmp");
        using var gone = Process.Start("true")!;
        gone.WaitForExit();
        string deadTemp = ShmRing.PathOf(ShmRing.TemporaryPrefix(name, gone.Id) + "1");
        string liveTemp = ShmRing.PathOf(ShmRing.TemporaryPrefix(name, 1) + "1"); // init: alive
        File.WriteAllBytes(deadTemp, new byte[4096]);
        File.WriteAllBytes(liveTemp, new byte[4096]);
        try
        {
            using var ring = ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 4096, 4);
            Assert.True(ring.Created);
            Assert.False(File.Exists(deadTemp));
            Assert.True(File.Exists(liveTemp));
            Assert.Empty(Directory.EnumerateFiles("/dev/shm", ShmRing.TemporaryPrefix(name, Environment.ProcessId) + "*"));
        }
        finally
        {
            File.Delete(liveTemp);
            File.Delete(deadTemp);
        }
    }

    [Fact]
    public async Task WaitAttach_SegmentMadeLater_AttachesAndSaysOnceWhatItWaitedFor()
    {
        using var env = new TestEnv();
        string name = env.Ring("later");
        var log = new List<string>();
        var said = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var waiting = Task.Factory.StartNew(() => ShmRing.WaitAttach(name, RingKind.ImageBuffer, 4096, 4, writable: false, TimeSpan.FromSeconds(20),
            "the test's creator", l =>
            {
                lock (log)
                    log.Add(l);
                said.TrySetResult();
            }, CancellationToken.None), TaskCreationOptions.LongRunning);
        await said.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // It looked once and said so. Checked over a time span: in the next few of its checks
        // (one per 50 ms) the wait must neither end nor say it again.
        await Assert.ThrowsAsync<TimeoutException>(() => waiting.WaitAsync(TimeSpan.FromMilliseconds(200)));
        using var made = ShmRing.CreateOrAttach(name, RingKind.ImageBuffer, 4096, 4);
        using var attached = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(attached.Created);
        Assert.Equal(made.Header.CreationTimeNs, attached.Header.CreationTimeNs);
        Assert.Single(log, l => l.StartsWith("waiting up to 20 s for", StringComparison.Ordinal) && l.Contains("the test's creator"));
    }

    [Fact]
    public void WaitAttach_NeverMade_FailsAtTheTimeoutNamingTheCreator()
    {
        using var env = new TestEnv();
        string name = env.Ring("never");
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<RingBufferException>(() => ShmRing.WaitAttach(name, RingKind.ImageBuffer, null, null, false,
            TimeSpan.FromMilliseconds(200), "StdAssembler of detector 'x'", null, CancellationToken.None));
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(190));
        Assert.Contains("does not exist after waiting 0.2 s: is StdAssembler of detector 'x' running?", e.Message);
    }

    [Fact]
    public void WaitAttach_OtherGeometry_FailsAtOnce()
    {
        using var env = new TestEnv();
        string name = env.Ring("geom");
        using var made = ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 4096, 4);
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<RingBufferException>(() => ShmRing.WaitAttach(name, RingKind.FrameBuffer, 4096, 8, false,
            TimeSpan.FromSeconds(30), "x", null, CancellationToken.None));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Contains($"std-daq shm rm {name}", e.Message);
    }

    [Fact]
    public async Task CreateOrAttach_ManyCreatorsAtOnce_OneCreatesAllSeeTheSameWholeRing()
    {
        using var env = new TestEnv();
        string name = env.Ring("race");
        using var go = new ManualResetEventSlim();
        var tasks = Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(() =>
        {
            go.Wait();
            return ShmRing.CreateOrAttach(name, RingKind.FrameBuffer, 1 << 20, 32);
        }, TaskCreationOptions.LongRunning)).ToList();
        go.Set();
        var rings = await Task.WhenAll(tasks);
        try
        {
            Assert.Single(rings, r => r.Created);
            Assert.All(rings, r => Assert.Equal(rings[0].Header.CreationTimeNs, r.Header.CreationTimeNs));
            Assert.Empty(Directory.EnumerateFiles("/dev/shm", name + ".new-*"));
        }
        finally
        {
            foreach (var r in rings)
                r.Dispose();
        }
    }

    [Fact]
    public async Task SequenceLock_WriterInThisProcess_ReaderInAnotherNeverAcceptsATornSlot()
    {
        using var env = new TestEnv();
        string name = env.Ring("seqlock");
        using var ring = ShmRing.CreateOrAttach(name, RingKind.ImageBuffer, 1 << 20, 1);
        using var stop = new CancellationTokenSource();
        long versions = 0;
        var writer = Task.Run(() =>
        {
            byte v = 0;
            while (!stop.IsCancellationRequested)
            {
                ring.BeginWrite(0);
                // Two halves, so a reader racing the write sees mixed bytes.
                var span = ring.SlotSpan(0);
                span[..(span.Length / 2)].Fill(++v);
                Thread.SpinWait(20);
                span[(span.Length / 2)..].Fill(v);
                ring.EndWrite(0);
                versions++;
                Thread.SpinWait((int)(versions % 7) * 1000);
            }
        });
        var r = Programs.Run("std-daq", ["shm", "seqlock-check", name, "--seconds", "2"]);
        stop.Cancel();
        await writer;
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        var fields = r.Stdout.Trim().Split(' ').Select(f => f.Split('=')).ToDictionary(f => f[0], f => long.Parse(f[1]));
        Assert.Equal(0, fields["bad_accepted"]);
        Assert.True(fields["accepted"] > 0, r.Stdout);
        Assert.True(fields["torn"] > 0, "no copy was ever overwritten mid-way, the check proved nothing: " + r.Stdout);
        Assert.True(versions > 10);
    }

    [Fact]
    public void Lease_RingDisposedWhileLeased_StaysMappedUntilTheLeaseEnds()
    {
        using var env = new TestEnv();
        string name = env.Ring("leased");
        var ring = ShmRing.CreateOrAttach(name, RingKind.ImageBuffer, 4096, 2);
        var lease = ring.Lease();
        ring.Dispose();
        Assert.True(IsMapped(name), "the mapping went while a lease held it");
        ring.SlotSpan(1).Fill(7);
        Assert.Equal(7, ring.SlotSpan(1)[4095]);
        lease.Dispose();
        Assert.False(IsMapped(name), "the mapping stayed after the last lease ended");
        Assert.Throws<ObjectDisposedException>(() => ring.Lease());
        ring.Dispose();
    }

    [Fact]
    public void Dispose_WithoutLease_UnmapsAtOnce()
    {
        using var env = new TestEnv();
        string name = env.Ring("unleased");
        var ring = ShmRing.CreateOrAttach(name, RingKind.ImageBuffer, 4096, 2);
        Assert.True(IsMapped(name));
        ring.Dispose();
        Assert.False(IsMapped(name));
    }

    private static bool IsMapped(string name) =>
        File.ReadLines("/proc/self/maps").Any(l => l.EndsWith(ShmRing.PathOf(name), StringComparison.Ordinal)
            || l.EndsWith(ShmRing.PathOf(name) + " (deleted)", StringComparison.Ordinal));
}
