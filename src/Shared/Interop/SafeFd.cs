using Microsoft.Win32.SafeHandles;

namespace StdDaq.Shared.Interop;

/// <summary>A POSIX file descriptor (socket, shm object) closed with close(2).</summary>
public sealed class SafeFd : SafeHandleMinusOneIsInvalid
{
    public SafeFd(int fd) : base(ownsHandle: true) => SetHandle(fd);

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
