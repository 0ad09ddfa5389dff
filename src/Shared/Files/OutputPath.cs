using System.Runtime.InteropServices;
using StdDaq.Shared.Interop;

namespace StdDaq.Shared.Files;

/// <summary>
/// Where a requested output file may be written, and its exclusive creation.
/// <para>
/// Roots (writer_output_roots): the path must lie beneath one of them, written as configured or as
/// the root resolves; the root itself is opened following its links (the admin's choice), every
/// folder beneath it is opened with openat(O_DIRECTORY | O_NOFOLLOW) from its parent's descriptor,
/// so no symbolic link below a root is followed and no folder can be swapped for one mid-walk.
/// '..' components are refused outright (the kernel resolves them after the links before them).
/// Without roots, the folder is opened as the path says and only the file's own name is guarded.
/// </para>
/// <para>
/// The file name itself is never followed: overwrite replaces only a regular file holding the HDF5
/// signature (at offset 0, 512, 1024, 2048, ...); a link, folder, device, fifo or socket is refused.
/// </para>
/// </summary>
public static class OutputPath
{
    private static readonly byte[] s_signature = [0x89, (byte)'H', (byte)'D', (byte)'F', (byte)'\r', (byte)'\n', 0x1a, (byte)'\n'];

    /// <summary>Throws <see cref="OutputPathException"/> unless <paramref name="path"/> may be created (or replaced).</summary>
    public static void Check(string path, IReadOnlyList<string> roots, bool overwrite)
    {
        using var folder = OpenFolder(path, roots, out string name);
        CheckTarget(folder, path, name, overwrite);
    }

    /// <summary>
    /// Checks as <see cref="Check"/>, removes the HDF5 file it may replace (its name only: unlinkat
    /// never follows a link) and creates an empty file with O_CREAT | O_EXCL | O_NOFOLLOW in the
    /// folder's descriptor. If the name was re-created meanwhile, creation fails (EEXIST).
    /// </summary>
    public static CreatedFile Create(string path, IReadOnlyList<string> roots, bool overwrite)
    {
        var folder = OpenFolder(path, roots, out string name);
        try
        {
            if (CheckTarget(folder, path, name, overwrite) && Libc.unlinkat(folder.Fd, name, 0) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.Errno.ENOENT)
                    throw Fail(path, "cannot remove the file it replaces", errno);
            }
            int fd = Libc.openat(folder.Fd, name, Libc.O.RDWR | Libc.O.CREAT | Libc.O.EXCL | Libc.O.NOFOLLOW | Libc.O.CLOEXEC, 0x1B6 /* 0666 & ~umask */);
            if (fd < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw errno == Libc.Errno.EEXIST
                    ? new OutputPathException($"'{path}' was created by someone else while it was being created")
                    : Fail(path, "open(O_CREAT | O_EXCL | O_NOFOLLOW)", errno);
            }
            var file = new SafeFd(fd);
            if (Libc.fstat(fd, out var st) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                file.Dispose();
                throw Fail(path, "fstat", errno);
            }
            return new CreatedFile(path, folder, name, file, st);
        }
        catch
        {
            folder.Dispose();
            throw;
        }
    }

    /// <summary>Whether the open file holds the HDF5 signature at 0 or at 512 · 2^k (the user block sizes).</summary>
    internal static bool HasHdf5Signature(int fd, long size)
    {
        Span<byte> buffer = stackalloc byte[8];
        for (long offset = 0; offset + 8 <= size; offset = offset == 0 ? 512 : offset * 2)
        {
            if (Libc.pread(fd, buffer, offset) != 8)
                return false;
            if (buffer.SequenceEqual(s_signature))
                return true;
        }
        return false;
    }

    /// <summary>Opens the folder the file goes in (see the class remarks); <paramref name="name"/> is the file's own name.</summary>
    private static SafeFd OpenFolder(string path, IReadOnlyList<string> roots, out string name)
    {
        if (!Path.IsPathFullyQualified(path))
            throw new OutputPathException($"'{path}' is not an absolute path");
        var parts = Components(path);
        if (parts.Contains(".."))
            throw new OutputPathException($"'{path}' has a '..' component; write the path without it");
        if (parts.Count == 0 || path.EndsWith('/'))
            throw new OutputPathException($"'{path}' names a folder, not a file");
        name = parts[^1];
        if (roots.Count == 0)
        {
            string folder = "/" + string.Join('/', parts[..^1]);
            int fd = Libc.open(folder, Libc.O.RDONLY | Libc.O.DIRECTORY | Libc.O.CLOEXEC, 0);
            if (fd < 0)
                throw FolderError(path, folder, Marshal.GetLastPInvokeError(), null);
            return new SafeFd(fd);
        }

        foreach (string root in roots)
        {
            var rootParts = Components(root);
            var real = RealPath(root) is { } r ? Components(r) : null;
            int depth = IsBeneath(parts, rootParts) ? rootParts.Count : real != null && IsBeneath(parts, real) ? real.Count : -1;
            if (depth < 0)
                continue;
            int fd = Libc.open(root, Libc.O.RDONLY | Libc.O.DIRECTORY | Libc.O.CLOEXEC, 0);
            if (fd < 0)
                throw FolderError(path, root, Marshal.GetLastPInvokeError(), null);
            var folder = new SafeFd(fd);
            for (int i = depth; i < parts.Count - 1; i++)
            {
                int next = Libc.openat(folder.Fd, parts[i], Libc.O.RDONLY | Libc.O.DIRECTORY | Libc.O.NOFOLLOW | Libc.O.CLOEXEC, 0);
                if (next < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    var e = FolderError(path, "/" + string.Join('/', parts[..(i + 1)]), errno, (folder, parts[i]));
                    folder.Dispose();
                    throw e;
                }
                folder.Dispose();
                folder = new SafeFd(next);
            }
            return folder;
        }
        throw new OutputPathException($"'{path}' is outside the allowed output roots ({string.Join(", ", roots)})");
    }

    /// <summary>
    /// Whether the target exists (false: it is free to create); throws if it exists and may not be
    /// replaced: without overwrite, or when it is not a regular file with the HDF5 signature.
    /// </summary>
    private static bool CheckTarget(SafeFd folder, string path, string name, bool overwrite)
    {
        if (Libc.fstatat(folder.Fd, name, out var st, Libc.AT_SYMLINK_NOFOLLOW) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.Errno.ENOENT)
                return false;
            throw Fail(path, "fstatat", errno);
        }
        if (!overwrite)
            throw new OutputPathException($"'{path}' already exists (send \"overwrite\": true to replace it)");
        uint type = st.Type;
        if (type != Libc.S.IFREG)
            throw new OutputPathException($"'{path}' is {KindOf(type)}; overwrite replaces only a regular HDF5 file");
        // Read the signature from the file itself: O_NOFOLLOW and O_NONBLOCK (a fifo swapped in
        // meanwhile neither blocks nor is read as the file), then the same inode as checked.
        int fd = Libc.openat(folder.Fd, name, Libc.O.RDONLY | Libc.O.NOFOLLOW | Libc.O.NONBLOCK | Libc.O.CLOEXEC, 0);
        if (fd < 0)
            throw Fail(path, "open to check it is an HDF5 file", Marshal.GetLastPInvokeError());
        using var file = new SafeFd(fd);
        if (Libc.fstat(fd, out var opened) != 0 || opened.Type != Libc.S.IFREG || !opened.SameFile(st))
            throw new OutputPathException($"'{path}' changed while it was checked");
        if (!HasHdf5Signature(fd, opened.st_size))
            throw new OutputPathException($"'{path}' is not an HDF5 file (no HDF5 signature); overwrite replaces only a regular HDF5 file");
        return true;
    }

    private static OutputPathException FolderError(string path, string folder, int errno, (SafeFd Parent, string Name)? beneathRoot)
    {
        if (beneathRoot is { } b && errno is Libc.Errno.ELOOP or Libc.Errno.ENOTDIR)
        {
            if (Libc.fstatat(b.Parent.Fd, b.Name, out var st, Libc.AT_SYMLINK_NOFOLLOW) == 0 && st.Type == Libc.S.IFLNK)
                return new OutputPathException($"'{path}': '{folder}' is a symbolic link; links below an output root are not followed");
        }
        return errno switch
        {
            Libc.Errno.ENOENT => new OutputPathException($"'{path}': folder '{folder}' does not exist"),
            Libc.Errno.ENOTDIR => new OutputPathException($"'{path}': '{folder}' is not a folder"),
            _ => Fail(path, $"open folder '{folder}'", errno),
        };
    }

    private static string KindOf(uint type) => type switch
    {
        Libc.S.IFLNK => "a symbolic link (links are not followed)",
        Libc.S.IFDIR => "a folder",
        Libc.S.IFCHR => "a character device",
        Libc.S.IFBLK => "a block device",
        Libc.S.IFIFO => "a fifo",
        Libc.S.IFSOCK => "a socket",
        _ => $"not a regular file (mode {type:x})",
    };

    private static OutputPathException Fail(string path, string call, int errno) =>
        new($"'{path}': {call} failed: {Libc.strerror(errno)} (errno {errno})");

    /// <summary>The path's names, without empty ones ('//') and '.'.</summary>
    private static List<string> Components(string path) =>
        path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(c => c != ".").ToList();

    private static bool IsBeneath(List<string> parts, List<string> root) =>
        parts.Count > root.Count && parts.Take(root.Count).SequenceEqual(root, StringComparer.Ordinal);

    private static string? RealPath(string path) => Libc.realpath(path);
}

/// <summary>
/// A file <see cref="OutputPath.Create"/> made: its descriptor, and its folder's, so it can be
/// removed by name only while the name is still this file.
/// </summary>
public sealed class CreatedFile : IDisposable
{
    private readonly SafeFd _folder;
    private readonly string _name;
    private readonly Libc.Stat _identity;

    internal CreatedFile(string path, SafeFd folder, string name, SafeFd file, Libc.Stat identity)
    {
        Path = path;
        _folder = folder;
        _name = name;
        File = file;
        _identity = identity;
    }

    /// <summary>The path as requested (for messages; opening it again is not safe, see <see cref="ProcPath"/>).</summary>
    public string Path { get; }
    /// <summary>The new file, open read-write, empty at creation.</summary>
    public SafeFd File { get; }

    /// <summary>
    /// A name that opens this very file (the kernel's link to the open descriptor): for a library
    /// that opens by name (libhdf5), no change to the path's folders or links meanwhile redirects it.
    /// </summary>
    public string ProcPath => $"/proc/self/fd/{File.Fd}";

    /// <summary>Whether the open descriptor <paramref name="fd"/> is this file.</summary>
    public bool IsSameFile(int fd)
    {
        return Libc.fstat(fd, out var st) == 0 && st.SameFile(_identity);
    }

    /// <summary>Removes the file's name, if it still names this file.</summary>
    public void Remove()
    {
        if (Libc.fstatat(_folder.Fd, _name, out var st, Libc.AT_SYMLINK_NOFOLLOW) == 0 && st.SameFile(_identity))
            Libc.unlinkat(_folder.Fd, _name, 0);
    }

    /// <summary>Closes the file's and its folder's descriptors; the file stays (see <see cref="Remove"/>).</summary>
    public void Dispose()
    {
        File.Dispose();
        _folder.Dispose();
    }
}

/// <summary>An output path refused or a creation that failed; the message names the path and why.</summary>
public sealed class OutputPathException(string message) : IOException(message);
