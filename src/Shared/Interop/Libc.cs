using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

// Declarations and constants keep libc's C names and are documented by its man pages; our own wrappers (after the restore) are documented here.
#pragma warning disable CS1591

/// <summary>
/// The libc calls the data path needs, with their C names so the man pages apply.
/// Structs are the x86_64 Linux LP64 layouts; all but <see cref="Stat"/> are aarch64's too
/// (aarch64's struct stat is the generic one: st_mode @16, 128 bytes).
/// </summary>
public static unsafe partial class Libc
{
    private const string Lib = "libc";

    public static class O
    {
        public const int RDONLY = 0x0;
        public const int RDWR = 0x2;
        public const int CREAT = 0x40;
        public const int EXCL = 0x80;
        public const int CLOEXEC = 0x80000;
        public const int WRONLY = 0x1;
        public const int NONBLOCK = 0x800;
        public const int DIRECTORY = 0x10000;
        public const int NOFOLLOW = 0x20000;
    }

    /// <summary>st_mode file types (S_IFMT and its values).</summary>
    public static class S
    {
        public const uint IFMT = 0xF000;
        public const uint IFSOCK = 0xC000;
        public const uint IFLNK = 0xA000;
        public const uint IFREG = 0x8000;
        public const uint IFBLK = 0x6000;
        public const uint IFDIR = 0x4000;
        public const uint IFCHR = 0x2000;
        public const uint IFIFO = 0x1000;
    }

    /// <summary>fstatat flag: stat the link itself, not its target.</summary>
    public const int AT_SYMLINK_NOFOLLOW = 0x100;

    /// <summary>flock operations.</summary>
    public static class Lock
    {
        public const int SH = 1;
        public const int EX = 2;
        public const int NB = 4;
        public const int UN = 8;
    }

    /// <summary>renameat2 flags.</summary>
    public const uint RENAME_NOREPLACE = 1;
    public const int AT_FDCWD = -100;

    public static class Prot
    {
        public const int READ = 0x1;
        public const int WRITE = 0x2;
    }

    public static class Map
    {
        public const int SHARED = 0x01;
        public const int POPULATE = 0x8000;
    }

    public static class Af
    {
        public const int INET = 2;
    }

    public static class Sock
    {
        public const int DGRAM = 2;
        public const int NONBLOCK = 0x800;
        public const int CLOEXEC = 0x80000;
    }

    public static class Sol
    {
        public const int SOCKET = 1;
    }

    public static class So
    {
        public const int REUSEADDR = 2;
        public const int SNDBUF = 7;
        public const int RCVBUF = 8;
        public const int RCVTIMEO = 20;
        public const int RCVBUFFORCE = 33;
        public const int SNDBUFFORCE = 32;
        public const int RXQ_OVFL = 40;
    }

    public static class Msg
    {
        public const int DONTWAIT = 0x40;
        public const int TRUNC = 0x20;
        public const int WAITFORONE = 0x10000;
    }

    public static class Errno
    {
        public const int EINTR = 4;
        public const int EAGAIN = 11;
        public const int ENOENT = 2;
        public const int EPERM = 1;
        public const int EWOULDBLOCK = 11;
        public const int EINVAL = 22;
        public const int EEXIST = 17;
        public const int ENOSPC = 28;
        public const int ENOTDIR = 20;
        public const int ELOOP = 40;
        public const int ECONNREFUSED = 111;
    }

    public const int CLOCK_REALTIME = 0;
    public const int CLOCK_MONOTONIC = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct Iovec
    {
        public void* iov_base;
        public nuint iov_len;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Msghdr
    {
        public void* msg_name;
        public uint msg_namelen;
        public Iovec* msg_iov;
        public nuint msg_iovlen;
        public void* msg_control;
        public nuint msg_controllen;
        public int msg_flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Mmsghdr
    {
        public Msghdr msg_hdr;
        public uint msg_len;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Cmsghdr
    {
        public nuint cmsg_len;
        public int cmsg_level;
        public int cmsg_type;
    }

    /// <summary>struct sockaddr_in; port and address in network byte order.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockaddrIn
    {
        public ushort sin_family;
        public ushort sin_port;
        public uint sin_addr;
        public ulong sin_zero;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Timeval
    {
        public long tv_sec;
        public long tv_usec;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long tv_sec;
        public long tv_nsec;
    }

    [LibraryImport(Lib, EntryPoint = "shm_open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int shm_open(string name, int oflag, uint mode);

    [LibraryImport(Lib, EntryPoint = "shm_unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int shm_unlink(string name);

    /// <summary>fcntl(fd, cmd, int arg): F_SETFD = 2 with FD_CLOEXEC = 1.</summary>
    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int fcntl(int fd, int cmd, int arg);

    public const int F_SETFD = 2, FD_CLOEXEC = 1;

    [LibraryImport(Lib, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int ftruncate(int fd, long length);

    [LibraryImport(Lib, EntryPoint = "posix_fallocate")]
    public static partial int posix_fallocate(int fd, long offset, long len);

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    public static partial int munmap(void* addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int bind(int sockfd, SockaddrIn* addr, uint addrlen);

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int setsockopt(int sockfd, int level, int optname, void* optval, uint optlen);

    [LibraryImport(Lib, EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int getsockopt(int sockfd, int level, int optname, void* optval, uint* optlen);

    [LibraryImport(Lib, EntryPoint = "recvmmsg", SetLastError = true)]
    public static partial int recvmmsg(int sockfd, Mmsghdr* msgvec, uint vlen, int flags, Timespec* timeout);

    [LibraryImport(Lib, EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int sendmmsg(int sockfd, Mmsghdr* msgvec, uint vlen, int flags);

    [LibraryImport(Lib, EntryPoint = "clock_gettime")]
    public static partial int clock_gettime(int clockid, Timespec* tp);

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string pathname, int flags, uint mode);

    [LibraryImport(Lib, EntryPoint = "flock", SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    private static partial nint read(int fd, void* buf, nuint count);

    /// <summary>read(2) into <paramref name="buffer"/>: the bytes read, -1 on error (errno set).</summary>
    public static nint read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
            return read(fd, p, (nuint)buffer.Length);
    }

    [LibraryImport(Lib, EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint pwrite(int fd, void* buf, nuint count, long offset);

    /// <summary>pwrite(2) of <paramref name="bytes"/>: the bytes written, -1 on error (errno set).</summary>
    public static nint pwrite(int fd, ReadOnlySpan<byte> bytes, long offset)
    {
        fixed (byte* p = bytes)
            return pwrite(fd, p, (nuint)bytes.Length, offset);
    }

    [LibraryImport(Lib, EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int unlink(string pathname);

    [LibraryImport(Lib, EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int link(string oldpath, string newpath);

    [LibraryImport(Lib, EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    /// <summary>struct stat of x86_64 Linux (144 bytes); only the identity fields are named.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 144)]
    public struct Stat
    {
        public ulong st_dev;   // @0
        public ulong st_ino;   // @8
        public ulong st_nlink; // @16
        public uint st_mode;   // @24
        public uint st_uid;    // @28
        public uint st_gid;    // @32
        private uint _pad0;    // @36
        public ulong st_rdev;  // @40
        public long st_size;   // @48

        /// <summary>The file type bits (S_IFMT) of st_mode: one of the <see cref="S"/> values.</summary>
        public readonly uint Type => st_mode & S.IFMT;

        /// <summary>Both describe the same file (device and inode).</summary>
        public readonly bool SameFile(in Stat other) => st_dev == other.st_dev && st_ino == other.st_ino;
    }

    [LibraryImport(Lib, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int stat(string pathname, out Stat statbuf);

    [LibraryImport(Lib, EntryPoint = "fstat", SetLastError = true)]
    public static partial int fstat(int fd, out Stat statbuf);

    [LibraryImport(Lib, EntryPoint = "fstatat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int fstatat(int dirfd, string pathname, out Stat statbuf, int flags);

    [LibraryImport(Lib, EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int openat(int dirfd, string pathname, int flags, uint mode);

    [LibraryImport(Lib, EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int unlinkat(int dirfd, string pathname, int flags);

    [LibraryImport(Lib, EntryPoint = "pread", SetLastError = true)]
    private static partial nint pread(int fd, void* buf, nuint count, long offset);

    /// <summary>pread(2) into <paramref name="buffer"/>: the bytes read, -1 on error (errno set).</summary>
    public static nint pread(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
            return pread(fd, p, (nuint)buffer.Length, offset);
    }

    [LibraryImport(Lib, EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial byte* realpath(string path, byte* resolvedPath);

    /// <summary>realpath(3): the canonical absolute path; null when it fails (errno set).</summary>
    public static string? realpath(string path)
    {
        byte* buffer = stackalloc byte[PATH_MAX];
        return realpath(path, buffer) == null ? null : Marshal.PtrToStringUTF8((nint)buffer);
    }

    public const int PATH_MAX = 4096;

    /// <summary>True if a process with this pid exists (kill(pid, 0) succeeds or is refused for permissions).</summary>
    public static bool ProcessAlive(int pid) =>
        pid > 0 && (kill(pid, 0) == 0 || Marshal.GetLastPInvokeError() == Errno.EPERM);

    public const short POLLIN = 0x1;

    /// <summary>struct pollfd (8 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int fd;
        public short events;
        public short revents;
    }

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint nfds, int timeout);

    /// <summary>poll(2) on every descriptor of <paramref name="fds"/>: how many have events, -1 on error (errno set).</summary>
    public static int poll(Span<PollFd> fds, int timeout)
    {
        fixed (PollFd* p = fds)
            return poll(p, (nuint)fds.Length, timeout);
    }

    [LibraryImport(Lib, EntryPoint = "strerror")]
    private static partial nint strerror_native(int errnum);

    /// <summary>mallopt(3) parameters.</summary>
    public static class M
    {
        public const int TRIM_THRESHOLD = -1;
        public const int MMAP_THRESHOLD = -3;
    }

    /// <summary>glibc's malloc tuning; returns 1 on success, 0 on error.</summary>
    [LibraryImport(Lib, EntryPoint = "mallopt")]
    public static partial int mallopt(int param, int value);

    [LibraryImport(Lib, EntryPoint = "getpid")]
    public static partial int getpid();

    [LibraryImport(Lib, EntryPoint = "kill", SetLastError = true)]
    public static partial int kill(int pid, int sig);

#pragma warning restore CS1591

    /// <summary>strerror(3)'s text for <paramref name="errnum"/> ("errno N" if there is none).</summary>
    public static string strerror(int errnum) =>
        Marshal.PtrToStringUTF8(strerror_native(errnum)) ?? $"errno {errnum}";

    /// <summary>An <see cref="IOException"/> naming the call, its arguments and errno text.</summary>
    public static IOException Error(string call, int errno) =>
        new($"{call} failed: {strerror(errno)} (errno {errno})");

    /// <summary>CLOCK_REALTIME in ns since the epoch, the clock of the slot headers' and notices' times.</summary>
    public static long RealtimeNs()
    {
        Timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return ts.tv_sec * 1_000_000_000L + ts.tv_nsec;
    }

    /// <summary>htons(3): the port in network byte order, on a little-endian host.</summary>
    public static ushort Htons(ushort v) => (ushort)((v << 8) | (v >> 8));
}
