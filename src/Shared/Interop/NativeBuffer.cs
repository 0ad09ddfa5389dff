using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>Page-aligned native memory that never moves, so iovecs may point into it.</summary>
public sealed unsafe class NativeBuffer : IDisposable
{
    private byte* _p;

    /// <summary>Size in bytes.</summary>
    public int Length { get; }

    /// <summary><paramref name="length"/> zeroed bytes at a 4096-byte boundary.</summary>
    public NativeBuffer(int length)
    {
        Length = length;
        _p = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(length, 1), 4096);
        Span.Clear();
    }

    /// <summary>The whole buffer; <see cref="ObjectDisposedException"/> after <see cref="Dispose"/>.</summary>
    public Span<byte> Span => new(Pointer, Length);

    internal byte* Pointer => _p != null ? _p : throw new ObjectDisposedException(nameof(NativeBuffer));

    /// <summary>Frees the memory (once); iovecs still pointing into it must not be used after this.</summary>
    public void Dispose()
    {
        if (_p != null)
        {
            NativeMemory.AlignedFree(_p);
            _p = null;
        }
    }
}
