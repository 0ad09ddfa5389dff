using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>Page-aligned native memory that never moves, so iovecs may point into it.</summary>
public sealed unsafe class NativeBuffer : IDisposable
{
    private byte* _p;

    public int Length { get; }

    public NativeBuffer(int length)
    {
        Length = length;
        _p = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(length, 1), 4096);
        Span.Clear();
    }

    public Span<byte> Span => new(Pointer, Length);

    internal byte* Pointer => _p != null ? _p : throw new ObjectDisposedException(nameof(NativeBuffer));

    public void Dispose()
    {
        if (_p != null)
        {
            NativeMemory.AlignedFree(_p);
            _p = null;
        }
    }
}
