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
    public void Attach_ForeignFile_IsRejected()
    {
        using var env = new TestEnv();
        string name = env.Ring("foreign");
        File.WriteAllBytes(ShmRing.PathOf(name), new byte[8192]);
        var e = Assert.Throws<RingBufferException>(() => ShmRing.Attach(name));
        Assert.Contains("bad magic", e.Message);
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
}
