using System.Runtime.Intrinsics.X86;

namespace StdDaq.Shared.Memory;

/// <summary>
/// A copy into memory that nothing reads soon (a ring slot the next stage reads an image later),
/// with non-temporal (streaming) stores: the target's cache lines are written without being read
/// first (a plain store into a line not in cache reads it from memory to change part of it) and
/// without evicting what is in cache, here the source that was just received. The reference is
/// <see cref="Span{T}.CopyTo"/>; sizes under <see cref="MinBytes"/> and CPUs without AVX take it.
/// </summary>
public static unsafe class StreamingCopy
{
    /// <summary>Below this a plain copy: streaming stores pay off for bytes far larger than the cache lines they skip reading.</summary>
    public const int MinBytes = 4096;

    private const int Vector = 32;

    /// <summary>
    /// Copies <paramref name="source"/> into the start of <paramref name="target"/> (they must not
    /// overlap). Ends with a store fence, so the bytes are visible before any store after the call
    /// (the slot's sequence lock): streaming stores are not ordered with later stores otherwise.
    /// </summary>
    public static void Copy(ReadOnlySpan<byte> source, Span<byte> target)
    {
        if (target.Length < source.Length)
            throw new ArgumentException($"target of {target.Length} bytes is shorter than the source's {source.Length}", nameof(target));
        if (source.Length < MinBytes || !Avx.IsSupported)
        {
            source.CopyTo(target);
            return;
        }
        fixed (byte* s = source)
        fixed (byte* t = target)
        {
            nuint n = (nuint)source.Length;
            // Up to the target's first 32-byte boundary plainly: streaming stores must be aligned.
            nuint i = (nuint)((Vector - ((nint)t & (Vector - 1))) & (Vector - 1));
            new ReadOnlySpan<byte>(s, (int)i).CopyTo(new Span<byte>(t, (int)i));
            for (; i + 4 * Vector <= n; i += 4 * Vector)
            {
                var a = Avx.LoadVector256(s + i);
                var b = Avx.LoadVector256(s + i + Vector);
                var c = Avx.LoadVector256(s + i + 2 * Vector);
                var d = Avx.LoadVector256(s + i + 3 * Vector);
                Avx.StoreAlignedNonTemporal(t + i, a);
                Avx.StoreAlignedNonTemporal(t + i + Vector, b);
                Avx.StoreAlignedNonTemporal(t + i + 2 * Vector, c);
                Avx.StoreAlignedNonTemporal(t + i + 3 * Vector, d);
            }
            for (; i + Vector <= n; i += Vector)
                Avx.StoreAlignedNonTemporal(t + i, Avx.LoadVector256(s + i));
            new ReadOnlySpan<byte>(s + i, (int)(n - i)).CopyTo(new Span<byte>(t + i, (int)(n - i)));
            Sse.StoreFence();
        }
    }
}
