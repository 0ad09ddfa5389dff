using Microsoft.Win32.SafeHandles;

namespace StdDaq.Shared.Interop;

/// <summary>A POSIX file descriptor (socket, shm object) closed with close(2).</summary>
public sealed class SafeFd : SafeHandleMinusOneIsInvalid
{
    /// <summary>Takes ownership of <paramref name="fd"/>: it is closed with the handle. -1 is an invalid handle.</summary>
    public SafeFd(int fd) : base(ownsHandle: true) => SetHandle(fd);

    /// <summary>The descriptor; it is closed (and may be reused by the kernel) once the handle is disposed.</summary>
    public int Fd => (int)handle;

    /// <summary>close(2); false if it failed.</summary>
    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
