using System.Runtime.InteropServices;
using StdDaq.Shared.Interop;

namespace StdDaq.Tests.Support;

/// <summary>Read-write pages with an inaccessible page on either side.</summary>
public sealed unsafe class GuardedPages : IDisposable
{
    private const int PROT_NONE = 0, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20;
    private readonly byte* _base;
    private readonly nuint _length;

    public GuardedPages(int bytes)
    {
        int page = Environment.SystemPageSize;
        nuint data = (nuint)Math.Max(1, (bytes + page - 1) / page) * (nuint)page;
        _length = data + 2 * (nuint)page;
        // Reserve everything inaccessible, then map the middle read-write over it.
        _base = (byte*)Libc.mmap(null, _length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        Assert.True(_base != (byte*)-1, $"mmap: errno {Marshal.GetLastPInvokeError()}");
        Start = _base + page;
        End = Start + data;
        void* rw = Libc.mmap(Start, data, Libc.Prot.READ | Libc.Prot.WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        Assert.True(rw == Start, $"mmap fixed: errno {Marshal.GetLastPInvokeError()}");
    }

    public byte* Start { get; }

    public byte* End { get; }

    public void Dispose() => Libc.munmap(_base, _length);
}
