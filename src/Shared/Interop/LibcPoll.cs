using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

public static unsafe partial class Libc
{
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
    public static partial int poll(PollFd* fds, nuint nfds, int timeout);
}
