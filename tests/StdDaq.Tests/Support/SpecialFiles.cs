using System.Net.Sockets;
using StdDaq.Shared.Interop;
using StdDaq.Writer;

namespace StdDaq.Tests.Support;

/// <summary>The file-system objects an output path must not replace, made for real, and their kind read back with lstat.</summary>
public static class SpecialFiles
{
    /// <summary>A copy of /dev/null (character device 1:3) made with mknod: needs root.</summary>
    public static void DevNullCopy(string path)
    {
        Assert.True(Environment.UserName == "root", "this test makes a character device with mknod, which needs root (CI runs as root); it cannot run here");
        var r = Programs.RunProcess("mknod", [path, "c", "1", "3"]);
        Assert.True(r.ExitCode == 0, $"mknod {path}: {r.Stderr}");
    }

    public static void Fifo(string path)
    {
        var r = Programs.RunProcess("mkfifo", [path]);
        Assert.True(r.ExitCode == 0, $"mkfifo {path}: {r.Stderr}");
    }

    /// <summary>A bound Unix socket: its file lives as long as the socket (.NET removes it on close).</summary>
    public static Socket Socket(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(path));
        return s;
    }

    /// <summary>A small, complete HDF5 image file (1 image of 2 × 3).</summary>
    public static void Hdf5(string path)
    {
        using var f = NexusImageFile.Create(path, new NexusFileOptions(1, 2, 3, 2, false, []), overwrite: false);
        f.Close(false, null);
    }

    /// <summary>"character device", "fifo", "socket", "symbolic link", "folder", "regular file" or "missing", as lstat says.</summary>
    public static string Kind(string path)
    {
        if (Libc.fstatat(Libc.AT_FDCWD, path, out var st, Libc.AT_SYMLINK_NOFOLLOW) != 0)
            return "missing";
        return st.Type switch
        {
            Libc.S.IFCHR => "character device",
            Libc.S.IFIFO => "fifo",
            Libc.S.IFSOCK => "socket",
            Libc.S.IFLNK => "symbolic link",
            Libc.S.IFDIR => "folder",
            Libc.S.IFREG => "regular file",
            uint m => $"mode {m:x}",
        };
    }
}
