using System.Text;
using StdDaq.Agent;
using StdDaq.Shared.Config;
using StdDaq.Shared.Files;
using StdDaq.Tests.Support;
using StdDaq.Writer;

namespace StdDaq.Tests.Writer;

/// <summary>
/// Nothing written where it must not be: the request check (WriterAgent) and the file creation
/// (StdH5Writer) against real devices, fifos, sockets, links and folders.
/// </summary>
public sealed class OutputPathTests
{
    private static DetectorConfig Config(TestEnv env, params string[] roots) =>
        env.Config("jungfrau-raw", 1, 16, 1024, 512, TestEnv.JungfrauColumn(1)) with { WriterOutputRoots = roots };

    private static WriteRequest Parse(DetectorConfig config, string file, bool overwrite) =>
        WriteRequest.Parse(Encoding.UTF8.GetBytes(WriterPipeline.Body(file, 5, overwrite ? "\"overwrite\": true" : null)), config);

    private static string Refused(DetectorConfig config, string file, bool overwrite = true) =>
        Assert.Throws<BadRequestException>(() => Parse(config, file, overwrite)).Message;

    private static NexusFileOptions Options => new(3, 2, 3, 2, false, []);

    // --- The request check ---

    [Fact]
    public void Parse_OverwriteCharDevice_RefusedNamingPathAndKind()
    {
        using var env = new TestEnv();
        string dev = Path.Combine(env.Dir, "null");
        SpecialFiles.DevNullCopy(dev);

        Assert.Equal($"output_file: '{dev}' is a character device; overwrite replaces only a regular HDF5 file", Refused(Config(env), dev));
        // The real one too, when no roots confine the requests (only checked here, never created).
        Assert.Equal("output_file: '/dev/null' is a character device; overwrite replaces only a regular HDF5 file", Refused(Config(env), "/dev/null"));
    }

    [Fact]
    public void Parse_OverwriteFifoSocketOrFolder_Refused()
    {
        using var env = new TestEnv();
        string fifo = Path.Combine(env.Dir, "fifo"), socket = Path.Combine(env.Dir, "socket"), folder = Path.Combine(env.Dir, "folder");
        SpecialFiles.Fifo(fifo);
        using var bound = SpecialFiles.Socket(socket);
        Directory.CreateDirectory(folder);
        var config = Config(env, env.Dir);

        Assert.Contains($"'{fifo}' is a fifo", Refused(config, fifo));
        Assert.Contains($"'{socket}' is a socket", Refused(config, socket));
        Assert.Contains($"'{folder}' is a folder", Refused(config, folder));
        Assert.Contains($"'{folder}/' names a folder, not a file", Refused(config, folder + "/"));
    }

    [Fact]
    public void Parse_OverwriteSymlinkToHdf5File_RefusedNotFollowed()
    {
        using var env = new TestEnv();
        string target = Path.Combine(env.Dir, "real.h5"), link = Path.Combine(env.Dir, "link.h5");
        SpecialFiles.Hdf5(target);
        File.CreateSymbolicLink(link, target);

        Assert.Contains($"'{link}' is a symbolic link (links are not followed)", Refused(Config(env), link));
    }

    [Fact]
    public void Parse_OverwriteTextFile_RefusedAsNotHdf5()
    {
        using var env = new TestEnv();
        string text = Path.Combine(env.Dir, "notes.h5");
        File.WriteAllText(text, "beamtime notes, not an image file");

        Assert.Equal($"output_file: '{text}' is not an HDF5 file (no HDF5 signature); overwrite replaces only a regular HDF5 file",
            Refused(Config(env, env.Dir), text));
    }

    [Fact]
    public void Parse_OverwriteHdf5File_AcceptedAlsoWithAUserBlock()
    {
        using var env = new TestEnv();
        string h5 = Path.Combine(env.Dir, "old.h5"), userBlock = Path.Combine(env.Dir, "userblock.h5");
        SpecialFiles.Hdf5(h5);
        // The signature at 512 (a 512-byte user block before the superblock).
        File.WriteAllBytes(userBlock, [.. new byte[512], 0x89, (byte)'H', (byte)'D', (byte)'F', (byte)'\r', (byte)'\n', 0x1a, (byte)'\n', .. new byte[100]]);

        Assert.True(Parse(Config(env, env.Dir), h5, overwrite: true).Overwrite);
        Assert.True(Parse(Config(env), userBlock, overwrite: true).Overwrite);
        Assert.Contains("already exists", Refused(Config(env), h5, overwrite: false));
    }

    [Fact]
    public void Parse_SymlinkBelowRootPointingOutside_Refused()
    {
        using var env = new TestEnv();
        string root = Path.Combine(env.Dir, "out"), outside = Path.Combine(env.Dir, "outside");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(outside);
        File.CreateSymbolicLink(Path.Combine(root, "link"), outside);
        string escape = Path.Combine(root, "link", "escape.h5");

        Assert.Equal($"output_file: '{escape}': '{Path.Combine(root, "link")}' is a symbolic link; links below an output root are not followed",
            Refused(Config(env, root), escape, overwrite: false));
    }

    [Fact]
    public void Parse_DotDotComponent_Refused()
    {
        using var env = new TestEnv();
        // root/deep -> outside/a/b: the kernel reads root/deep/../x.h5 as outside/a/x.h5, though
        // the text reads as root/x.h5.
        string root = Path.Combine(env.Dir, "out"), deepOutside = Path.Combine(env.Dir, "outside", "a", "b");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(deepOutside);
        File.CreateSymbolicLink(Path.Combine(root, "deep"), deepOutside);
        string dotdot = root + "/deep/../x.h5";

        Assert.Equal($"output_file: '{dotdot}' has a '..' component; write the path without it", Refused(Config(env, root), dotdot, overwrite: false));
    }

    [Fact]
    public void Parse_PathOfAFolderWhoseNameStartsWithTheRoot_Refused()
    {
        using var env = new TestEnv();
        string root = Path.Combine(env.Dir, "data"), sibling = Path.Combine(env.Dir, "data2");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(sibling);

        Assert.Contains("is outside the allowed output roots", Refused(Config(env, root), Path.Combine(sibling, "x.h5"), overwrite: false));
        Assert.Contains("is outside the allowed output roots", Refused(Config(env, root + "/"), root + "2/x.h5", overwrite: false));
    }

    [Fact]
    public void Parse_RootThatIsASymlink_AcceptedByEitherNameButNoLinkBelowIt()
    {
        using var env = new TestEnv();
        string real = Path.Combine(env.Dir, "gpfs", "data"), root = Path.Combine(env.Dir, "data");
        Directory.CreateDirectory(Path.Combine(real, "sub"));
        Directory.CreateDirectory(Path.Combine(env.Dir, "outside"));
        File.CreateSymbolicLink(root, real);
        File.CreateSymbolicLink(Path.Combine(real, "escape"), Path.Combine(env.Dir, "outside"));
        var config = Config(env, root);

        Assert.Equal(Path.Combine(root, "sub", "x.h5"), Parse(config, Path.Combine(root, "sub", "x.h5"), false).OutputFile);
        Assert.Equal(Path.Combine(real, "sub", "x.h5"), Parse(config, Path.Combine(real, "sub", "x.h5"), false).OutputFile);
        Assert.Contains("is a symbolic link; links below an output root are not followed", Refused(config, Path.Combine(root, "escape", "x.h5"), false));
    }

    // --- The writer's creation (it checks again: the request check can be raced) ---

    [Fact]
    public void Create_OverwriteCharDevice_RefusedAndTheDeviceStays()
    {
        using var env = new TestEnv();
        string dev = Path.Combine(env.Dir, "null");
        SpecialFiles.DevNullCopy(dev);

        var e = Assert.Throws<OutputPathException>(() => NexusImageFile.Create(dev, Options, overwrite: true));
        Assert.Contains("is a character device", e.Message);
        Assert.Equal("character device", SpecialFiles.Kind(dev));
    }

    [Fact]
    public void Create_OverwriteFifoOrSocket_RefusedAndTheyStay()
    {
        using var env = new TestEnv();
        string fifo = Path.Combine(env.Dir, "fifo"), socket = Path.Combine(env.Dir, "socket");
        SpecialFiles.Fifo(fifo);
        using var bound = SpecialFiles.Socket(socket);

        Assert.Contains("is a fifo", Assert.Throws<OutputPathException>(() => NexusImageFile.Create(fifo, Options, overwrite: true)).Message);
        Assert.Contains("is a socket", Assert.Throws<OutputPathException>(() => NexusImageFile.Create(socket, Options, overwrite: true)).Message);
        Assert.Equal("fifo", SpecialFiles.Kind(fifo));
        Assert.Equal("socket", SpecialFiles.Kind(socket));
    }

    [Fact]
    public void Create_OverwriteFolder_RefusedAndItStays()
    {
        using var env = new TestEnv();
        string folder = Path.Combine(env.Dir, "folder.h5");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "inside"), "x");

        Assert.Contains("is a folder", Assert.Throws<OutputPathException>(() => NexusImageFile.Create(folder, Options, overwrite: true)).Message);
        Assert.Equal("x", File.ReadAllText(Path.Combine(folder, "inside")));
    }

    [Fact]
    public void Create_OverwriteSymlinkToHdf5File_RefusedAndTheTargetIsUntouched()
    {
        using var env = new TestEnv();
        string target = Path.Combine(env.Dir, "real.h5"), link = Path.Combine(env.Dir, "link.h5");
        SpecialFiles.Hdf5(target);
        byte[] before = File.ReadAllBytes(target);
        File.CreateSymbolicLink(link, target);

        Assert.Contains("is a symbolic link", Assert.Throws<OutputPathException>(() => NexusImageFile.Create(link, Options, overwrite: true)).Message);
        Assert.Equal("symbolic link", SpecialFiles.Kind(link));
        Assert.Equal(before, File.ReadAllBytes(target));
    }

    [Fact]
    public void Create_OverwriteTextFile_RefusedAndTheTextStays()
    {
        using var env = new TestEnv();
        string text = Path.Combine(env.Dir, "notes.h5");
        File.WriteAllText(text, "keep me");

        Assert.Contains("is not an HDF5 file", Assert.Throws<OutputPathException>(() => NexusImageFile.Create(text, Options, overwrite: true)).Message);
        Assert.Equal("keep me", File.ReadAllText(text));
    }

    [Fact]
    public void Create_OverwriteHdf5File_ReplacesIt()
    {
        using var env = new TestEnv();
        string h5 = Path.Combine(env.Dir, "old.h5");
        SpecialFiles.Hdf5(h5);

        using (var f = NexusImageFile.Create(h5, Options, overwrite: true))
            f.Close(false, null);
        using var read = StdDaq.Shared.Interop.Hdf5File.OpenRead(h5);
        Assert.Equal([0, 2, 3], read.Shape("/entry/data/data"));
    }

    [Fact]
    public void Create_SymlinkBelowRootPointingOutside_RefusedAndNothingWrittenOutside()
    {
        using var env = new TestEnv();
        string root = Path.Combine(env.Dir, "out"), outside = Path.Combine(env.Dir, "outside");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(outside);
        File.CreateSymbolicLink(Path.Combine(root, "link"), outside);

        var e = Assert.Throws<OutputPathException>(() => NexusImageFile.Create(Path.Combine(root, "link", "escape.h5"), Options, false, [root]));
        Assert.Contains("is a symbolic link; links below an output root are not followed", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(outside));
    }
}
