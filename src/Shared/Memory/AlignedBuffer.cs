using System.Numerics;
using System.Runtime.InteropServices;

namespace StdDaq.Shared.Memory;

/// <summary>
/// Zeroed native memory for <see cref="Length"/> values of <typeparamref name="T"/>, its start at
/// a chosen power-of-two byte boundary, that never moves: for data that vector loads read, where a
/// load that crosses a cache line costs more.
/// </summary>
/// <remarks>
/// No finalizer: the GC may find the owner unreachable while a span of its memory is still in use
/// on some stack, so only <see cref="Dispose"/> frees it. Spans taken before
/// <see cref="Dispose"/> must not be used after it, nor may <see cref="Dispose"/> race with users.
/// </remarks>
/// <typeparam name="T">The element type; any unmanaged type.</typeparam>
public sealed unsafe class AlignedBuffer<T> : IDisposable where T : unmanaged
{
    private T* _p;

    /// <summary>Elements in the buffer.</summary>
    public int Length { get; }

    /// <summary>The byte boundary the first element is at.</summary>
    public int Alignment { get; }

    /// <summary><paramref name="length"/> zeroed elements at an <paramref name="alignment"/>-byte boundary.</summary>
    /// <param name="length">Elements; 0 is allowed (an empty span).</param>
    /// <param name="alignment">Bytes, a power of two; 64 is a cache line and a 512-bit vector.</param>
    /// <exception cref="ArgumentOutOfRangeException">A negative length, or an alignment that is not a power of two.</exception>
    /// <exception cref="OutOfMemoryException">The memory could not be allocated.</exception>
    public AlignedBuffer(int length, int alignment = 64)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (alignment <= 0 || !BitOperations.IsPow2(alignment))
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "the alignment must be a power of two");
        Length = length;
        Alignment = alignment;
        nuint bytes = checked((nuint)Math.Max(1, (long)length * sizeof(T)));
        _p = (T*)NativeMemory.AlignedAlloc(bytes, (nuint)alignment);
        NativeMemory.Clear(_p, bytes);
    }

    /// <summary>The whole buffer.</summary>
    /// <exception cref="ObjectDisposedException">After <see cref="Dispose"/>.</exception>
    public Span<T> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(_p == null, this);
            return new Span<T>(_p, Length);
        }
    }

    /// <summary>Frees the memory (once; later calls do nothing).</summary>
    public void Dispose()
    {
        if (_p != null)
        {
            NativeMemory.AlignedFree(_p);
            _p = null;
        }
    }
}
