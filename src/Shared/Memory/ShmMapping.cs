using System.Runtime.InteropServices;
using StdDaq.Shared.Interop;

namespace StdDaq.Shared.Memory;

/// <summary>
/// One mmap(2) of a shared-memory segment, unmapped with munmap when released: when it is disposed
/// and no <see cref="ShmRing.Lease"/> holds it any more, or by the finalizer of a ring nobody disposed.
/// </summary>
internal sealed unsafe class ShmMapping : SafeBuffer
{
    public ShmMapping(void* address, nuint length) : base(ownsHandle: true)
    {
        SetHandle((nint)address);
        Initialize(length);
    }

    /// <summary>The first byte of the mapping; valid while the handle is open or a lease holds it.</summary>
    public byte* Base => (byte*)handle;

    protected override bool ReleaseHandle() => Libc.munmap((void*)handle, (nuint)ByteLength) == 0;
}
