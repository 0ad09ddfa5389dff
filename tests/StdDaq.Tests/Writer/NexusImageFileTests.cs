using System.Text.Json;
using StdDaq.Shared.Files;
using StdDaq.Shared.Interop;
using StdDaq.Tests.Support;
using StdDaq.Writer;
using StdDaq.WriterChild;

namespace StdDaq.Tests.Writer;

/// <summary>NeXus image files written through libhdf5, read back by h5py and h5dump.</summary>
public class NexusImageFileTests
{
    private const ushort UInt16Code = 2;

    /// <summary>Prints the file as h5py sees it (JSON) and writes data[:] as raw bytes to argv[2].</summary>
    private sealed record View(JsonElement Info, byte[] Pixels)
    {
        public JsonElement Root => Info.GetProperty("root");
        public long[] Shape => Info.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        public ulong[] ImageIds => Info.GetProperty("image_id").EnumerateArray().Select(e => e.GetUInt64()).ToArray();
        public int[] Status => Info.GetProperty("status").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        public string RootString(string name) => Root.GetProperty(name).GetString()!;
        public long RootNumber(string name) => Root.GetProperty(name).GetInt64();
    }

    private static View ReadBack(TestEnv env, string path, bool swmr = false)
    {
        string raw = Path.Combine(env.Dir, $"pixels{Guid.NewGuid():N}.bin");
        return new View(H5py.Read(env, path, raw, swmr), File.ReadAllBytes(raw));
    }

    /// <summary>
    /// A file whose writer was killed: h5py's default open refuses it (SWMR writing flags it as open
    /// for write), a SWMR reader reads it at once; after <see cref="NexusImageFile.Recover"/> every
    /// reader does, and both see the same file. Returns the plain reader's view.
    /// </summary>
    private static View ReadKilled(TestEnv env, string path)
    {
        var plain = Programs.RunProcess("/usr/bin/python3", ["-c", "import h5py, sys; h5py.File(sys.argv[1], 'r')", path]);
        Assert.True(plain.ExitCode != 0 && plain.Stderr.Contains("already open for write"),
            $"a plain reader opened the killed writer's file before its recovery (exit {plain.ExitCode}): {plain.Stderr}");
        var live = ReadBack(env, path, swmr: true);
        Assert.True(NexusImageFile.Recover(path), "Recover found nothing to clear");
        Assert.False(NexusImageFile.Recover(path), "Recover cleared the file twice");
        var v = ReadBack(env, path);
        Assert.Equal(live.Pixels, v.Pixels);
        Assert.Equal(live.ImageIds, v.ImageIds);
        Assert.Equal(live.Status, v.Status);
        return v;
    }

    private static NexusFileOptions Options(long n, int h, int w, ushort dtype = UInt16Code, bool bitshuffle = false,
        params KeyValuePair<string, string>[] attributes) => new(n, h, w, dtype, bitshuffle, attributes);

    [Fact]
    public void WriteImage_RawUInt16WithGapAndMissing_H5pySeesImagesIdsStatusAndAttributes()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "run.h5");
        const int h = 6, w = 10;
        string config = """{"detector_name":"JF-Ä","n_modules":2}""";
        using (var file = NexusImageFile.Create(path, Options(10, h, w, attributes: [new("detector_name", "jf2m"), new("run_id", "42"), new("config", config)]), overwrite: false))
        {
            file.WriteImage(0, TestImages.UInt16(0, h, w), 1000, 0);
            file.WriteImage(1, TestImages.UInt16(1, h, w), 1003, 1);
            file.Flush();
            file.MarkMissing(2, 1006);
            file.WriteImage(3, TestImages.UInt16(3, h, w), 1009, 2);
            // index 4 never handled
            file.WriteImage(5, TestImages.UInt16(5, h, w), 1015, 0);
            Assert.Equal(4, file.ImagesWritten);
            file.Close(interrupted: false, null);
        }

        var v = ReadBack(env, path);
        Assert.Equal([6, h, w], v.Shape);
        Assert.Equal("<u2", v.Info.GetProperty("dtype").GetString());
        Assert.Equal([1, h, w], v.Info.GetProperty("chunks").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([10, h, w], v.Info.GetProperty("maxshape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Empty(v.Info.GetProperty("filters").EnumerateArray());
        var zeros = new byte[h * w * 2];
        byte[][] expected = [TestImages.UInt16(0, h, w), TestImages.UInt16(1, h, w), zeros, TestImages.UInt16(3, h, w), zeros, TestImages.UInt16(5, h, w)];
        Assert.Equal(expected.SelectMany(b => b).ToArray(), v.Pixels);
        Assert.Equal([1000UL, 1003, 1006, 1009, 0, 1015], v.ImageIds);
        Assert.Equal([0, 1, 0xFFFF, 2, 0xFFFF, 0], v.Status);
        Assert.Equal("NXentry", v.Info.GetProperty("entry").GetProperty("NX_class").GetString());
        Assert.Equal("NXdata", v.Info.GetProperty("group").GetProperty("NX_class").GetString());
        Assert.Equal("data", v.Info.GetProperty("group").GetProperty("signal").GetString());
        Assert.Equal("jf2m", v.RootString("detector_name"));
        Assert.Equal("42", v.RootString("run_id"));
        Assert.Equal(config, v.RootString("config"));
        Assert.Equal(10, v.RootNumber("n_images_requested"));
        Assert.Equal(4, v.RootNumber("n_images_written"));
        Assert.Equal(0, v.RootNumber("interrupted"));
        Assert.Equal("", v.RootString("interrupted_reason")); // kept empty: SWMR writing cannot delete it
        Assert.Equal(4, v.Info.GetProperty("n_images_written").GetInt64()); // the dataset a live reader follows
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", v.Info.GetProperty("end_time").GetString());
        var types = v.Info.GetProperty("root_types");
        Assert.Equal("<i8", types.GetProperty("n_images_written").GetString());
        Assert.Equal("|u1", types.GetProperty("interrupted").GetString());
        Assert.StartsWith("|S", types.GetProperty("config").GetString());
    }

    [Fact]
    public void WriteImage_FrameIndexAndReceiveTime_PerImageAndZeroForImagesNotWritten()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "times.h5");
        const int h = 4, w = 8;
        using (var file = NexusImageFile.Create(path, Options(6, h, w), overwrite: false))
        {
            file.WriteImage(0, TestImages.UInt16(0, h, w), 10, 0, frameIndex: 500, receiveTimeNs: 1_700_000_000_000_000_001);
            file.WriteImage(1, TestImages.UInt16(1, h, w), 11, 0, frameIndex: 501, receiveTimeNs: 1_700_000_000_000_000_002);
            file.Flush();
            file.MarkMissing(2, 12);
            // index 3 never handled
            file.WriteImage(4, TestImages.UInt16(4, h, w), 14, 1, frameIndex: 504, receiveTimeNs: 1_700_000_000_000_000_004);
            file.WriteImage(5, TestImages.UInt16(5, h, w), 15, 0, frameIndex: 505, receiveTimeNs: 1_700_000_000_000_000_005);
            file.Unwrite(5, new byte[h * w * 2]);
            file.Close(interrupted: false, null);
        }

        var v = ReadBack(env, path);
        Assert.Equal([500UL, 501, 0, 0, 504, 0], H5py.ULongs(v.Info.GetProperty("frame_index")));
        Assert.Equal([1_700_000_000_000_000_001L, 1_700_000_000_000_000_002, 0, 0, 1_700_000_000_000_000_004, 0],
            H5py.Longs(v.Info.GetProperty("receive_time")));
        Assert.Equal("ns", v.Info.GetProperty("receive_time_units").GetString());
        Assert.Equal([0, 0, 0xFFFF, 0xFFFF, 1, 0xFFFF], v.Status);
    }

    [Fact]
    public void Unwrite_TheLastImage_ReadsAsZerosNotWrittenAndOnlyTheLastCanBeTakenBack()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "torn.h5");
        const int h = 4, w = 8;
        using (var file = NexusImageFile.Create(path, Options(3, h, w), overwrite: false))
        {
            file.WriteImage(0, TestImages.UInt16(0, h, w), 70, 0);
            file.WriteImage(1, TestImages.UInt16(1, h, w), 71, 0);
            Assert.Throws<ArgumentOutOfRangeException>(() => file.Unwrite(0, new byte[h * w * 2]));
            file.Unwrite(1, new byte[h * w * 2]);
            file.WriteImage(2, TestImages.UInt16(2, h, w), 72, 0);
            Assert.Equal(2, file.ImagesWritten);
            file.Close(interrupted: false, null);
        }

        var v = ReadBack(env, path);
        Assert.Equal([70UL, 71, 72], v.ImageIds);
        Assert.Equal([0, 0xFFFF, 0], v.Status);
        Assert.Equal(2, v.RootNumber("n_images_written"));
        int bytes = h * w * 2;
        Assert.Equal(TestImages.UInt16(0, h, w), v.Pixels[..bytes]);
        Assert.All(v.Pixels[bytes..(2 * bytes)], b => Assert.Equal(0, b));
        Assert.Equal(TestImages.UInt16(2, h, w), v.Pixels[(2 * bytes)..]);
    }

    [Fact]
    public void Create_AttributesLargerThan64KiBAndEmpty_H5pyReadsThemWhole()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "attrs.h5");
        string big = "{\"user\":\"" + string.Concat(Enumerable.Range(0, 20000).Select(i => $"µ{i % 10}x")) + "\"}";
        using (var file = NexusImageFile.Create(path, Options(1, 2, 3, attributes: [new("user_metadata", big), new("request_id", "")]), overwrite: false))
            file.Close(false, null);

        var v = ReadBack(env, path);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(big) > 65536);
        Assert.Equal(big, v.RootString("user_metadata"));
        Assert.Equal("", v.RootString("request_id"));
    }

    [Theory]
    [InlineData((ushort)1, "|u1")]
    [InlineData((ushort)4, "<u4")]
    [InlineData((ushort)8, "<u8")]
    [InlineData((ushort)14, "<f4")]
    [InlineData((ushort)18, "<f8")]
    public void WriteImage_EachDtypeCode_H5pyReadsThatDtypeAndTheBytes(ushort dtype, string numpy)
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "dtype.h5");
        const int h = 3, w = 5;
        int elem = dtype switch { 1 => 1, 4 or 14 => 4, _ => 8 };
        var rnd = new Random(dtype);
        var images = Enumerable.Range(0, 3).Select(_ =>
        {
            var b = new byte[h * w * elem];
            if (dtype == 14)
                for (int k = 0; k < h * w; k++) BitConverter.TryWriteBytes(b.AsSpan(k * 4), (float)(rnd.NextDouble() * 1e4 - 5e3));
            else if (dtype == 18)
                for (int k = 0; k < h * w; k++) BitConverter.TryWriteBytes(b.AsSpan(k * 8), rnd.NextDouble() * 1e9 - 5e8);
            else
                rnd.NextBytes(b);
            return b;
        }).ToArray();
        using (var file = NexusImageFile.Create(path, Options(3, h, w, dtype), overwrite: false))
        {
            for (int i = 0; i < 3; i++)
                file.WriteImage(i, images[i], (ulong)i + 1, 0);
            file.Close(false, null);
        }

        var v = ReadBack(env, path);
        Assert.Equal(numpy, v.Info.GetProperty("dtype").GetString());
        Assert.Equal(images.SelectMany(b => b).ToArray(), v.Pixels);
    }

    [Fact]
    public void WriteImage_BitshuffleLz4Chunks_H5pyWithThePluginReadsTheImagesExactly()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "bslz4.h5");
        const int h = 64, w = 96;
        using (var file = NexusImageFile.Create(path, Options(4, h, w, bitshuffle: true), overwrite: false))
        {
            for (int i = 0; i < 4; i++)
                file.WriteImage(i, BitshuffleReference.Compress(TestImages.UInt16(i, h, w), 2), TestImages.ImageId(i), 0);
            file.Close(false, null);
        }

        var v = ReadBack(env, path);
        Assert.Equal(Enumerable.Range(0, 4).SelectMany(i => TestImages.UInt16(i, h, w)).ToArray(), v.Pixels);
        // (filter id, flags = H5Z_FLAG_OPTIONAL, cd_values {major 0, minor 3, elem size, block 0 = default, 2 = LZ4}), as h5py writes it.
        Assert.Equal("[[32008,1,[0,3,2,0,2]]]", v.Info.GetProperty("filters").GetRawText().Replace(" ", ""));
        var dump = Programs.RunProcess("h5dump", ["-p", "-H", "-d", "/entry/data/data", path]);
        Assert.Equal(0, dump.ExitCode);
        Assert.Contains("FILTER_ID 32008", dump.Stdout);
        Assert.Contains("PARAMS { 0 3 2 0 2 }", dump.Stdout);
        Assert.Contains("CHUNKED ( 1, 64, 96 )", dump.Stdout);
    }

    [Fact]
    public void Create_BitshufflePluginNotLoadableByTheWriter_StoresTheSameFilterValues()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "noplugin.h5");
        var r = Programs.Run("StdDaq.WriterChild", [path, "32", "48", "20", "", "20", "--bitshuffle", "--end", "close"],
            env: new Dictionary<string, string> { ["HDF5_PLUGIN_PATH"] = Path.Combine(env.Dir, "no-plugins-here") });
        Assert.True(r.ExitCode == 0, r.Stderr);

        var v = ReadBack(env, path);
        Assert.Equal("[[32008,1,[0,3,2,0,2]]]", v.Info.GetProperty("filters").GetRawText().Replace(" ", ""));
        var zeros = new byte[32 * 48 * 2];
        Assert.Equal(Enumerable.Range(0, 20).SelectMany(i => i % 7 == 6 ? zeros : TestImages.UInt16(i, 32, 48)).ToArray(), v.Pixels);
    }

    [Fact]
    public void Flush_WriterKilledAfterMoreImages_FileReadsAsAtTheLastFlush()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "killed.h5");
        const int h = 4, w = 8, flushed = 30000;
        // 150 000 more images after the last flush change far more metadata than the cache holds.
        var r = Programs.Run("StdDaq.WriterChild", [path, $"{h}", $"{w}", "200000", $"10000,{flushed}", "180000", "--end", "kill"]);
        Assert.True(r.ExitCode == 137, $"the writer was to die of SIGKILL, exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains($"flushed {flushed}", r.Stdout);

        var v = ReadKilled(env, path);
        Assert.Equal([flushed, h, w], v.Shape);
        Assert.Equal(flushed, v.Info.GetProperty("n_omega").GetInt64()); // DIALS counts the images by omega
        var zeros = new byte[h * w * 2];
        Assert.Equal(Enumerable.Range(0, flushed).SelectMany(i => i % 7 == 6 ? zeros : TestImages.UInt16(i, h, w)).ToArray(), v.Pixels);
        Assert.Equal(Enumerable.Range(0, flushed).Select(i => TestImages.ImageId(i)), v.ImageIds);
        Assert.Equal(Enumerable.Range(0, flushed).Select(i => i % 7 == 6 ? 0xFFFF : TestImages.Status(i)), v.Status);
        Assert.Equal(flushed - flushed / 7, v.RootNumber("n_images_written"));
        Assert.Equal(1, v.RootNumber("interrupted"));
        Assert.Equal(NexusImageFile.NotClosedReason, v.RootString("interrupted_reason"));
        Assert.Equal("child", v.RootString("detector_name"));
        Assert.Equal(flushed - flushed / 7, v.Info.GetProperty("n_images_written").GetInt64());
        Assert.Equal("", v.Info.GetProperty("end_time").GetString()); // never closed
    }

    [Fact]
    public void Create_WriterKilledBeforeAnyFlush_EmptyReadableFile()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "killed0.h5");
        var r = Programs.Run("StdDaq.WriterChild", [path, "4", "8", "1000", "", "500", "--end", "kill"]);
        Assert.True(r.ExitCode == 137, $"the writer was to die of SIGKILL, exit {r.ExitCode}: {r.Stderr}");

        var v = ReadKilled(env, path);
        Assert.Equal([0, 4, 8], v.Shape);
        Assert.Equal(0, v.Info.GetProperty("n_omega").GetInt64());
        Assert.Empty(v.ImageIds);
        Assert.Equal(0, v.RootNumber("n_images_written"));
        Assert.Equal(1, v.RootNumber("interrupted"));
    }

    [Fact]
    public void Close_Interrupted_AttributesSayItAndWhy()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "stopped.h5");
        using (var file = NexusImageFile.Create(path, Options(100, 2, 3), overwrite: false))
        {
            for (int i = 0; i < 5; i++)
                file.WriteImage(i, TestImages.UInt16(i, 2, 3), TestImages.ImageId(i), 0);
            file.Close(interrupted: true, "stop requested by user");
            file.Close(interrupted: false, null); // idempotent: the first Close stands
        }

        var v = ReadBack(env, path);
        Assert.Equal([5, 2, 3], v.Shape);
        Assert.Equal(1, v.RootNumber("interrupted"));
        Assert.Equal("stop requested by user", v.RootString("interrupted_reason"));
        Assert.Equal(5, v.RootNumber("n_images_written"));
        Assert.Equal(100, v.RootNumber("n_images_requested"));
    }

    [Fact]
    public void Close_ReasonLongerThanItsRoom_CutAtACharacterBoundary()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "long.h5");
        string reason = new('é', NexusImageFile.ReasonCapacity); // 2 bytes each: twice the room
        using (var file = NexusImageFile.Create(path, Options(10, 2, 3), overwrite: false))
            file.Close(interrupted: true, "x" + reason); // odd: the last 'é' that fits is cut whole

        var v = ReadBack(env, path);
        Assert.Equal("x" + new string('é', (NexusImageFile.ReasonCapacity - 1) / 2), v.RootString("interrupted_reason"));
    }

    [Fact]
    public void Dispose_WithoutClose_FileSaysInterruptedNotClosed()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "disposed.h5");
        using (var file = NexusImageFile.Create(path, Options(10, 2, 3), overwrite: false))
            file.WriteImage(0, TestImages.UInt16(0, 2, 3), 7, 0);

        var v = ReadBack(env, path);
        Assert.Equal([1, 2, 3], v.Shape);
        Assert.Equal(1, v.RootNumber("interrupted"));
        Assert.Contains("not closed", v.RootString("interrupted_reason"));
    }

    [Fact]
    public void Create_ExistingTextFile_RefusedWithOrWithoutOverwriteAndKept()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "exists.h5");
        File.WriteAllText(path, "keep me");

        var e = Assert.Throws<OutputPathException>(() => NexusImageFile.Create(path, Options(10, 2, 3), overwrite: false));
        Assert.StartsWith($"'{path}' already exists", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal("keep me", File.ReadAllText(path));

        // Overwrite replaces only an HDF5 file: not this text.
        e = Assert.Throws<OutputPathException>(() => NexusImageFile.Create(path, Options(10, 2, 3), overwrite: true));
        Assert.Contains("is not an HDF5 file", e.Message);
        Assert.Equal("keep me", File.ReadAllText(path));
    }

    [Fact]
    public void Create_UnwritableFolder_ThrowsNamingFileAndNextCreateWorks()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "no-such-folder", "x.h5");

        var e = Assert.Throws<OutputPathException>(() => NexusImageFile.Create(path, Options(10, 2, 3), overwrite: true));
        Assert.Equal($"'{path}': folder '{Path.GetDirectoryName(path)}' does not exist", e.Message);

        string next = Path.Combine(env.Dir, "next.h5");
        using (var file = NexusImageFile.Create(next, Options(10, 2, 3), overwrite: false))
        {
            file.WriteImage(0, TestImages.UInt16(0, 2, 3), 1, 0);
            file.Close(false, null);
        }
        Assert.Equal(TestImages.UInt16(0, 2, 3), ReadBack(env, next).Pixels);
    }

    [Fact]
    public void WriteImageOrFlush_DiskFull_ThrowsNamingFileDisposeQuietNextFileWorks()
    {
        Assert.True(Environment.UserName == "root", "this test needs root, to mount a 2 MiB tmpfs (CI runs as root)");
        using var env = new TestEnv();
        string mnt = Path.Combine(env.Dir, "small");
        Directory.CreateDirectory(mnt);
        var m = Programs.RunProcess("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]);
        Assert.True(m.ExitCode == 0, $"mount: {m.Stderr}");
        try
        {
            string path = Path.Combine(mnt, "full.h5");
            const int h = 256, w = 256; // 128 KiB per image: the 16th cannot fit
            var file = NexusImageFile.Create(path, Options(100, h, w), overwrite: false);
            Exception? error = null;
            int i = 0;
            try
            {
                for (; i < 100 && error == null; i++)
                {
                    file.WriteImage(i, TestImages.UInt16(i, h, w), (ulong)i, 0);
                    if (i % 4 == 3)
                        file.Flush();
                }
            }
            catch (Exception ex)
            {
                error = ex;
            }
            var e = Assert.IsType<Hdf5Exception>(error);
            Assert.StartsWith($"{path}: ", e.Message);
            Assert.Contains("No space left on device", e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.InRange(i, 8, 16);
            var after = Assert.Throws<InvalidOperationException>(() => file.WriteImage(50, TestImages.UInt16(50, h, w), 50, 0));
            Assert.Contains("earlier error", after.Message);
            file.Dispose();
            file.Dispose();
        }
        finally
        {
            var u = Programs.RunProcess("umount", [mnt]);
            Assert.True(u.ExitCode == 0, $"umount (is the file still open?): {u.Stderr}");
        }

        string next = Path.Combine(env.Dir, "next.h5");
        using (var file = NexusImageFile.Create(next, Options(2, 2, 3), overwrite: false))
        {
            file.WriteImage(0, TestImages.UInt16(0, 2, 3), 1, 0);
            file.Close(false, null);
        }
        Assert.Equal(TestImages.UInt16(0, 2, 3), ReadBack(env, next).Pixels);
    }

    [Fact]
    public void WriteImage_IndexNotAboveThePrevious_ThrowsAndFileStaysUsable()
    {
        using var env = new TestEnv();
        using var file = NexusImageFile.Create(Path.Combine(env.Dir, "order.h5"), Options(10, 2, 3), overwrite: false);
        file.WriteImage(3, TestImages.UInt16(3, 2, 3), 1, 0);

        Assert.Throws<ArgumentOutOfRangeException>(() => file.WriteImage(3, TestImages.UInt16(3, 2, 3), 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => file.MarkMissing(2, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => file.WriteImage(10, TestImages.UInt16(10, 2, 3), 1, 0));
        Assert.Throws<ArgumentException>(() => file.WriteImage(4, new byte[5], 1, 0));
        file.WriteImage(4, TestImages.UInt16(4, 2, 3), 2, 0);
        Assert.Equal(2, file.ImagesWritten);
    }
}
