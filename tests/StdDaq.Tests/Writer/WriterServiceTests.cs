using StdDaq.Shared.Config;
using Microsoft.Extensions.Logging.Abstractions;
using StdDaq.Agent;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;
using StdDaq.Writer;

namespace StdDaq.Tests.Writer;

/// <summary>
/// StdH5Writer alone, driven with hand-made StoreStream messages (as a std-daq writer agent, or a
/// faulty stream, would send them) over its real ZMQ endpoints, images from a real ImageBuffer.
/// </summary>
public sealed class WriterServiceTests
{
    private sealed class Driver : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _task;
        private readonly StorePublisher _store;
        private readonly ZmqSocket _acks;
        private readonly byte[] _buffer = new byte[64 * 1024];

        public StdDaq.Shared.Config.DetectorConfig Config { get; }
        public ShmRing Ring { get; }
        public WriterService Writer { get; }

        public Driver(TestEnv env, Func<StdDaq.Shared.Config.DetectorConfig, StdDaq.Shared.Config.DetectorConfig>? tweak = null,
            TimeProvider? time = null)
        {
            env.Ring("image");
            var config = env.Config("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1));
            Config = tweak?.Invoke(config) ?? config;
            Ring = ShmRing.CreateOrAttach(Config.ImageBufferName, RingKind.ImageBuffer, 1024 * 512 * 2, 16);
            _store = new StorePublisher(Config.WriterAgentEndpoint);
            _acks = ZmqSocket.Puller(Config.WriterStatusEndpoint, receiveTimeoutMs: 100);
            Writer = new WriterService(Config, new WriterOptions { Time = time ?? TimeProvider.System }, NullLogger.Instance);
            _task = Writer.RunAsync(_stop.Token);
            Assert.True(_store.WaitForWriter(TimeSpan.FromSeconds(10), CancellationToken.None), "the writer did not subscribe");
        }

        /// <summary>Puts image <paramref name="id"/> (every pixel = id) into its slot.</summary>
        public void Image(ulong id)
        {
            int slot = Ring.SlotOf(id);
            Ring.BeginWrite(slot);
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(Ring.SlotSpan(slot)).Fill((ushort)id);
            Ring.Slot(slot).ImageId = id;
            Ring.Slot(slot).Status = 0;
            Ring.EndWrite(slot);
        }

        public void Send(StoreStreamMessage m) => Assert.True(_store.Send(m.ToJson()));

        public WriterAck NextAck(Func<WriterAck, bool> until) => TryNextAck(until, TimeSpan.FromSeconds(15))
            ?? throw new TimeoutException("no such acknowledgement from the writer");

        public WriterAck? TryNextAck(Func<WriterAck, bool> until, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (DateTime.UtcNow < deadline)
            {
                int n = _acks.Receive(_buffer);
                if (n > 0 && WriterAck.Parse(_buffer.AsSpan(0, n)) is { } ack && until(ack))
                    return ack;
            }
            return null;
        }

        public void Dispose()
        {
            _stop.Cancel();
            _task.Wait(TimeSpan.FromSeconds(10));
            Writer.Dispose();
            _store.Dispose();
            _acks.Dispose();
            Ring.Dispose();
        }
    }

    private static StoreStreamMessage Message(string file, long run, long n, long i, ulong? id) =>
        new() { OutputFile = file, RunId = run, NImages = n, IImage = i, ImageId = id };

    [Fact]
    public void Flush_WhenTheIntervalPassedOnTheWritersClock_NotBefore()
    {
        using var env = new TestEnv();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var d = new Driver(env, c => c with { WriterFlushIntervalS = 1 }, clock);
        string file = Path.Combine(env.Dir, "flush.h5");
        for (ulong id = 10; id < 13; id++)
        {
            d.Image(id);
            d.Send(Message(file, 9, 5, (long)id - 10, id));
        }
        d.NextAck(a => a.RunId == 9 && a.Event == WriterAck.Opened);

        // More than the interval passes in real time, none on the writer's clock: no flush.
        Assert.Null(d.TryNextAck(a => a.RunId == 9 && a.Event == WriterAck.Progress, TimeSpan.FromSeconds(1.5)));
        clock.Advance(TimeSpan.FromSeconds(1));
        var progress = d.NextAck(a => a.RunId == 9 && a.Event == WriterAck.Progress);

        Assert.Equal(3, progress.NImagesWritten);
        d.Send(Message(file, 9, 5, 5, null));
        var closed = d.NextAck(a => a.RunId == 9 && a.Event == WriterAck.Closed);
        Assert.Equal(3, closed.NImagesWritten);
    }

    [Fact]
    public void CloseMessage_ForARunTheWriterNeverSaw_ErrorAckAtOnce()
    {
        using var env = new TestEnv();
        using var d = new Driver(env);
        string file = Path.Combine(env.Dir, "never.h5");

        d.Send(Message(file, 5, 3, 3, null));

        var ack = d.NextAck(a => a.RunId == 5);
        Assert.Equal(WriterAck.Error, ack.Event);
        Assert.Equal("no image of run 5 reached the writer; no file was written", ack.Message);
        Assert.False(File.Exists(file));
    }

    [Fact]
    public void StoreStream_IImageJumps_FileClosedInterruptedWithTheImagesBefore()
    {
        using var env = new TestEnv();
        using var d = new Driver(env);
        string file = Path.Combine(env.Dir, "jump.h5");
        for (ulong id = 100; id < 104; id++)
            d.Image(id);

        d.Send(Message(file, 7, 4, 0, 100));
        d.Send(Message(file, 7, 4, 1, 101));
        d.Send(Message(file, 7, 4, 3, 103)); // i_image 2 lost
        var closed = d.NextAck(a => a.RunId == 7 && a.Event == WriterAck.Closed);
        d.Send(Message(file, 7, 4, 4, null)); // the agent's close afterwards is ignored quietly

        Assert.Equal("StoreStream messages lost: expected i_image 2, got 3", closed.Interrupted);
        Assert.Equal(2, closed.NImagesWritten);
        var h5 = H5py.Read(env, file);
        Assert.Equal(1, h5.GetProperty("attrs").GetProperty("interrupted").GetInt64());
        Assert.Equal("StoreStream messages lost: expected i_image 2, got 3", h5.GetProperty("attrs").GetProperty("interrupted_reason").GetString());
        Assert.Equal([100UL, 101], H5py.ULongs(h5.GetProperty("image_id")));
        Assert.Equal(1, d.Writer.Counters[WriterCounter.StreamGaps]);
        Assert.Equal(1, d.Writer.Counters[WriterCounter.FilesInterrupted]);
    }

    [Fact]
    public void NewRun_BeforeTheOldOneClosed_OldFileClosedInterruptedNewOneWritten()
    {
        using var env = new TestEnv();
        using var d = new Driver(env);
        string first = Path.Combine(env.Dir, "first.h5"), second = Path.Combine(env.Dir, "second.h5");
        for (ulong id = 1; id < 4; id++)
            d.Image(id);

        d.Send(Message(first, 1, 5, 0, 1));
        d.Send(Message(second, 2, 2, 0, 2));
        d.Send(Message(second, 2, 2, 1, 3));
        d.Send(Message(second, 2, 2, 2, null));

        var old = d.NextAck(a => a.RunId == 1 && a.Event == WriterAck.Closed);
        Assert.Equal("run 2 started before run 1 was closed", old.Interrupted);
        var done = d.NextAck(a => a.RunId == 2 && a.Event == WriterAck.Closed);
        Assert.Null(done.Interrupted);
        Assert.Equal(2, done.NImagesWritten);
        Assert.Equal([2UL, 3], H5py.ULongs(H5py.Read(env, second).GetProperty("image_id")));
        Assert.Equal([1UL], H5py.ULongs(H5py.Read(env, first).GetProperty("image_id")));
    }

    [Fact]
    public void Run_MessagesNamingNoCompression_WriterCompressionFromTheConfigApplies()
    {
        using var env = new TestEnv();
        using var d = new Driver(env, c => c with { WriterCompression = ImageCompression.BitshuffleLz4 });
        string file = Path.Combine(env.Dir, "default-compression.h5");
        d.Image(1);
        d.Image(2);
        // A std-daq writer agent's messages: no "compression" field.
        d.Send(Message(file, 3, 2, 0, 1));
        d.Send(Message(file, 3, 2, 1, 2));
        d.Send(Message(file, 3, 2, 2, null));

        var done = d.NextAck(a => a.RunId == 3 && a.Event == WriterAck.Closed);
        Assert.Equal(2, done.NImagesWritten);
        var h5 = H5py.Read(env, file);
        Assert.True(h5.GetProperty("filters_by_id").TryGetProperty("32008", out _), "not compressed: " + h5.GetProperty("filters_by_id"));
    }

    [Fact]
    public void Open_PathsTheRequestCheckWouldRefuse_ErrorAckNamingPathAndNothingWritten()
    {
        // The agent checks a request when it arrives; a link or device put in place after that
        // (or a StoreStream from another sender) meets the writer's own check when it creates the file.
        using var env = new TestEnv();
        string root = Path.Combine(env.Dir, "out"), outside = Path.Combine(env.Dir, "outside");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(outside);
        File.CreateSymbolicLink(Path.Combine(root, "link"), outside);
        string text = Path.Combine(root, "notes.h5"), fifo = Path.Combine(root, "fifo.h5");
        File.WriteAllText(text, "keep me");
        SpecialFiles.Fifo(fifo);
        using var d = new Driver(env, c => c with { WriterOutputRoots = [root] });
        d.Image(1);
        (string File, bool Overwrite, string Reason)[] cases =
        [
            (Path.Combine(root, "link", "escape.h5"), false, $"'{Path.Combine(root, "link")}' is a symbolic link; links below an output root are not followed"),
            (root + "/link/../escape.h5", false, "has a '..' component"),
            (Path.Combine(outside, "direct.h5"), false, "is outside the allowed output roots"),
            (text, true, "is not an HDF5 file"),
            (fifo, true, "is a fifo"),
        ];
        long run = 10;
        foreach (var (file, overwrite, reason) in cases)
        {
            run++;
            d.Send(Message(file, run, 1, 0, 1) with { Overwrite = overwrite });
            var ack = d.NextAck(a => a.RunId == run);
            Assert.Equal(WriterAck.Error, ack.Event);
            Assert.StartsWith($"cannot create '{file}': ", ack.Message);
            Assert.Contains(reason, ack.Message);
            d.Send(Message(file, run, 1, 1, null));
        }
        Assert.Empty(Directory.GetFileSystemEntries(outside));
        Assert.Equal("keep me", File.ReadAllText(text));
        Assert.Equal("fifo", SpecialFiles.Kind(fifo));
    }
}
