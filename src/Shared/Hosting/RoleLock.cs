using System.Runtime.InteropServices;
using System.Text;
using StdDaq.Shared.Interop;

namespace StdDaq.Shared.Hosting;

/// <summary>A second instance of a role (same module's receiver, same detector's assembler, ...).</summary>
public sealed class RoleBusyException(string message, int holderPid) : IOException(message)
{
    /// <summary>The pid that holds the role (0 if it could not be read).</summary>
    public int HolderPid { get; } = holderPid;
}

/// <summary>
/// The exclusive right of one process to a role, e.g. "the receiver of module 3 of detector X":
/// an flock(LOCK_EX) on <c>/dev/shm/&lt;key&gt;.lock</c>, next to the role's ring. The kernel releases it
/// when the holder dies, however it dies, so a crashed service never blocks its restart. The file
/// holds the holder's pid and role, so a second instance can say who runs. A holder that stops
/// normally removes the file while it still holds the lock; a process that locked the file just
/// before its removal sees that the path no longer names its file, and tries again.
/// </summary>
public sealed class RoleLock : IDisposable
{
    private readonly SafeFd _fd;

    /// <summary>The lock file (<see cref="PathFor"/> of the role's key).</summary>
    public string Path { get; }
    /// <summary>The role as people read it, also written into the lock file.</summary>
    public string Role { get; }

    private RoleLock(string path, string role, SafeFd fd)
    {
        Path = path;
        Role = role;
        _fd = fd;
    }

    /// <summary>The lock file of a role key: next to the ring the role makes, in /dev/shm.</summary>
    public static string PathFor(string key) => $"/dev/shm/{key}.lock";

    /// <summary>
    /// Takes the role or throws <see cref="RoleBusyException"/> naming the pid that has it.
    /// <paramref name="role"/> describes it for people ("StdUdpRecv for module 3 of detector 'x'").
    /// </summary>
    public static RoleLock Acquire(string key, string role)
    {
        string path = PathFor(key);
        for (int attempt = 0; attempt < 100; attempt++)
        {
            int fd = Libc.open(path, Libc.O.RDWR | Libc.O.CREAT | Libc.O.CLOEXEC, 438 /* 0666 */);
            if (fd < 0)
                throw Libc.Error($"open({path})", Marshal.GetLastPInvokeError());
            var handle = new SafeFd(fd);
            if (Libc.flock(fd, Libc.Lock.EX | Libc.Lock.NB) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                handle.Dispose();
                if (errno != Libc.Errno.EWOULDBLOCK)
                    throw Libc.Error($"flock({path})", errno);
                var (pid, holderRole) = ReadHolder(path);
                throw new RoleBusyException(
                    $"{role} is already running" + (pid > 0 ? $" as pid {pid}" : "") +
                    (holderRole != null && holderRole != role ? $" ({holderRole})" : "") +
                    $"; it holds {path}. Stop it first (one instance per role)", pid);
            }
            if (!SameFile(fd, path))
            {
                // The previous holder removed the file between our open and our lock.
                handle.Dispose();
                continue;
            }
            // What a holder that died left noted (it never removed the file): its unfinished business.
            string? left = ReadNote(fd);
            var taken = new RoleLock(path, role, handle) { PreviousNote = left };
            taken.SetNote(null);
            return taken;
        }
        throw new IOException($"cannot take {path}: it keeps being replaced");
    }

    /// <summary>
    /// The note the previous holder left in the lock file (<see cref="SetNote"/>) when it died holding
    /// the role, e.g. the file it had open; null when it stopped normally or noted nothing.
    /// </summary>
    public string? PreviousNote { get; private init; }

    /// <summary>
    /// Writes <paramref name="note"/> (one line; null: none) into the lock file after the pid and
    /// role, for the next holder to find if this one dies (<see cref="PreviousNote"/>). A stop
    /// through <see cref="Dispose"/> removes the file and the note with it.
    /// </summary>
    public void SetNote(string? note)
    {
        if (note != null && note.Contains('\n'))
            throw new ArgumentException("a role note is one line", nameof(note));
        byte[] text = Encoding.UTF8.GetBytes($"{Libc.getpid()}\n{Role}\n" + (note != null ? note + "\n" : ""));
        int fd = (int)_fd.DangerousGetHandle();
        Libc.pwrite(fd, text, 0);
        Libc.ftruncate(fd, text.Length);
    }

    private static string? ReadNote(int fd)
    {
        var buf = new byte[8192];
        nint n = Libc.pread(fd, buf, 0);
        if (n <= 0)
            return null;
        var lines = Encoding.UTF8.GetString(buf, 0, (int)n).Split('\n');
        return lines.Length >= 4 && lines[2].Length > 0 ? lines[2] : null;
    }

    /// <summary>The pid (0 if unknown) and role written in a lock file; reads without locking.</summary>
    public static (int Pid, string? Role) ReadHolder(string path)
    {
        // The holder writes its pid right after locking; a reader that comes in between waits a moment.
        for (int i = 0; i < 50; i++)
        {
            string text;
            int fd = Libc.open(path, Libc.O.RDONLY | Libc.O.CLOEXEC, 0);
            if (fd < 0)
                return (0, null);
            using (new SafeFd(fd))
            {
                var buf = new byte[512];
                nint n = Libc.read(fd, buf);
                text = n > 0 ? Encoding.UTF8.GetString(buf, 0, (int)n) : "";
            }
            var lines = text.Split('\n');
            if (lines.Length >= 2 && int.TryParse(lines[0], out int pid))
                return (pid, lines[1]);
            Thread.Sleep(10);
        }
        return (0, null);
    }

    /// <summary>True if some process holds the lock at <paramref name="path"/> now.</summary>
    public static bool IsHeld(string path)
    {
        int fd = Libc.open(path, Libc.O.RDONLY | Libc.O.CLOEXEC, 0);
        if (fd < 0)
            return false;
        using var handle = new SafeFd(fd);
        if (Libc.flock(fd, Libc.Lock.SH | Libc.Lock.NB) != 0)
            return true;
        Libc.flock(fd, Libc.Lock.UN);
        return false;
    }

    private static bool SameFile(int fd, string path)
    {
        return Libc.fstat(fd, out var a) == 0 && Libc.stat(path, out var b) == 0 && a.SameFile(b);
    }

    /// <summary>Removes the lock file (still holding the lock, so nobody else holds a removed file), then releases it.</summary>
    public void Dispose()
    {
        if (_fd.IsClosed)
            return;
        if (SameFile((int)_fd.DangerousGetHandle(), Path))
            Libc.unlink(Path);
        _fd.Dispose();
    }
}
