using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using StdDaq.Shared.Memory;

namespace StdDaq.Assembler.Conversions;

/// <summary>Pixels a conversion turned into sentinels, by cause.</summary>
public record struct PixelCounts(long InvalidGain, long Saturated, long LostPackets)
{
    public static PixelCounts operator +(PixelCounts a, PixelCounts b) =>
        new(a.InvalidGain + b.InvalidGain, a.Saturated + b.Saturated, a.LostPackets + b.LostPackets);
}

/// <summary>
/// The six calibration planes of one module (or of a run of its pixels), each at the same pixel
/// index as the raw frame.
/// </summary>
public readonly ref struct GainPlanes(ReadOnlySpan<float> p0, ReadOnlySpan<float> p1, ReadOnlySpan<float> p2,
    ReadOnlySpan<float> g0, ReadOnlySpan<float> g1, ReadOnlySpan<float> g2)
{
    /// <summary>Pedestals (ADU) of G0, G1, G2.</summary>
    public readonly ReadOnlySpan<float> P0 = p0, P1 = p1, P2 = p2;
    /// <summary>Gains (ADU per keV) of G0, G1, G2.</summary>
    public readonly ReadOnlySpan<float> G0 = g0, G1 = g1, G2 = g2;

    public static GainPlanes Of(JungfrauCalibration c, int module) => new(
        c.Pedestal(module, 0), c.Pedestal(module, 1), c.Pedestal(module, 2), c.Gain(module, 0), c.Gain(module, 1), c.Gain(module, 2));

    /// <summary>Pixels every plane has (the shortest plane's length).</summary>
    public int Length => Math.Min(Math.Min(Math.Min(P0.Length, P1.Length), Math.Min(P2.Length, G0.Length)), Math.Min(G1.Length, G2.Length));

    /// <summary>Pixels <paramref name="start"/> to <paramref name="start"/> + <paramref name="length"/> of every plane.</summary>
    public GainPlanes Slice(int start, int length) => new(P0.Slice(start, length), P1.Slice(start, length), P2.Slice(start, length),
        G0.Slice(start, length), G1.Slice(start, length), G2.Slice(start, length));
}

/// <summary>
/// JUNGFRAU converted: each raw pixel (bits 15–14 gain code, 13–0 ADC) becomes float32 energy in
/// keV, <c>(ADC − pedestal[g]) / gain[g]</c> with g from the code (00 → G0, 01 → G1, 11 → G2),
/// written straight into its image row. Sentinels (README "JUNGFRAU converted"):
/// gain code 10 (invalid) → NaN; 0xC000 (saturated, G2 with ADC 0) → +∞; pixels of lost packets,
/// masked pixels and missing modules → NaN. Invalid, saturated and lost-packet pixels are counted.
/// </summary>
public sealed class JungfrauConverter(ImageLayout layout, JungfrauCalibration calibration, bool ownsCalibration = false)
    : FrameConverter(layout)
{
    public const ushort Saturated = 0xC000;
    private const int RowsPerPacket = 4;

    public JungfrauCalibration Calibration { get; } = calibration.Modules >= layout.Placements.Count ? calibration
        : throw new ArgumentException($"the calibration has {calibration.Modules} modules, the detector {layout.Placements.Count}");

    public override void Dispose()
    {
        if (ownsCalibration)
            Calibration.Dispose();
    }

    public override void Convert(ReadOnlySpan<byte> frame, Span<byte> image, in ModulePlacement p) =>
        Convert(frame, default, image, p, allPackets: true);

    public override PixelCounts Convert(ReadOnlySpan<byte> frame, in SlotHeader header, Span<byte> image, in ModulePlacement p) =>
        Convert(frame, header, image, p, allPackets: header.NMissingPackets == 0);

    private PixelCounts Convert(ReadOnlySpan<byte> frame, in SlotHeader header, Span<byte> image, in ModulePlacement p, bool allPackets)
    {
        var g = Layout.Module;
        int width = g.FrameWidth;
        var raw = MemoryMarshal.Cast<byte, ushort>(frame);
        var planes = GainPlanes.Of(Calibration, p.Module);
        var counts = new PixelCounts();
        for (int k = 0; k < g.PacketsPerFrame; k++)
        {
            bool lost = !allPackets && !header.HasPacket(k);
            for (int r = k * RowsPerPacket; r < (k + 1) * RowsPerPacket; r++)
            {
                var dst = MemoryMarshal.Cast<byte, float>(image.Slice(RowStart(p, r), width * sizeof(float)));
                if (lost)
                {
                    dst.Fill(float.NaN);
                    counts.LostPackets += width;
                    continue;
                }
                int i = r * width;
                ConvertPixels(raw.Slice(i, width), planes.Slice(i, width), dst, ref counts);
            }
        }
        return counts;
    }

    public override void Fill(Span<byte> image, in ModulePlacement p)
    {
        for (int r = 0; r < p.Height; r++)
            MemoryMarshal.Cast<byte, float>(image.Slice(RowStart(p, r), p.Width * sizeof(float))).Fill(float.NaN);
    }

    /// <summary>The reference conversion of one pixel (the tests' oracle for <see cref="ConvertPixels"/>).</summary>
    public static float ConvertPixel(ushort raw, float p0, float p1, float p2, float g0, float g1, float g2, ref PixelCounts counts)
    {
        int code = raw >> 14;
        if (code == 2)
        {
            counts.InvalidGain++;
            return float.NaN;
        }
        if (raw == Saturated)
        {
            counts.Saturated++;
            return float.IsNaN(p2) ? float.NaN : float.PositiveInfinity; // masked wins
        }
        float adc = raw & 0x3FFF;
        return code switch
        {
            0 => (adc - p0) / g0,
            1 => (adc - p1) / g1,
            _ => (adc - p2) / g2,
        };
    }

    /// <summary>Scalar reference of <see cref="ConvertPixels"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="dst"/> or a plane of <paramref name="c"/> is shorter than <paramref name="raw"/>.</exception>
    public static void ConvertPixelsScalar(ReadOnlySpan<ushort> raw, in GainPlanes c, Span<float> dst, ref PixelCounts counts)
    {
        int n = raw.Length;
        CheckLengths(c, dst, n);
        // Lengths checked once above; indexing seven spans would cost seven bounds checks per pixel.
        ref ushort r = ref MemoryMarshal.GetReference(raw);
        ref float p0 = ref MemoryMarshal.GetReference(c.P0);
        ref float p1 = ref MemoryMarshal.GetReference(c.P1);
        ref float p2 = ref MemoryMarshal.GetReference(c.P2);
        ref float g0 = ref MemoryMarshal.GetReference(c.G0);
        ref float g1 = ref MemoryMarshal.GetReference(c.G1);
        ref float g2 = ref MemoryMarshal.GetReference(c.G2);
        ref float d = ref MemoryMarshal.GetReference(dst);
        for (nint i = 0; i < n; i++)
            Unsafe.Add(ref d, i) = ConvertPixel(Unsafe.Add(ref r, i), Unsafe.Add(ref p0, i), Unsafe.Add(ref p1, i), Unsafe.Add(ref p2, i),
                Unsafe.Add(ref g0, i), Unsafe.Add(ref g1, i), Unsafe.Add(ref g2, i), ref counts);
    }

    /// <summary>
    /// Converts the <paramref name="raw"/> pixels into <paramref name="dst"/>, 16 per step with
    /// 256-bit vectors. A step whose pixels are all G0 (the common case) reads only the G0 planes;
    /// any other step selects per lane from all three levels. Results equal
    /// <see cref="ConvertPixelsScalar"/> bit for bit (same float32 operations in the same order;
    /// NaNs may differ only in payload). Compiled fully optimized at once: unoptimized vector code
    /// is many times slower, and the first images must not wait for tiering.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="dst"/> or a plane of <paramref name="c"/> is shorter than <paramref name="raw"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ConvertPixels(ReadOnlySpan<ushort> raw, in GainPlanes c, Span<float> dst, ref PixelCounts counts)
    {
        int n = raw.Length;
        CheckLengths(c, dst, n);
        // Lengths checked once above, then loads and stores through refs at offsets below n: the
        // JIT cannot drop the bounds checks of eight spans indexed in one loop.
        ref ushort r = ref MemoryMarshal.GetReference(raw);
        ref float p0 = ref MemoryMarshal.GetReference(c.P0);
        ref float p1 = ref MemoryMarshal.GetReference(c.P1);
        ref float p2 = ref MemoryMarshal.GetReference(c.P2);
        ref float g0 = ref MemoryMarshal.GetReference(c.G0);
        ref float g1 = ref MemoryMarshal.GetReference(c.G1);
        ref float g2 = ref MemoryMarshal.GetReference(c.G2);
        ref float d = ref MemoryMarshal.GetReference(dst);
        nint i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var codeMask = Vector256.Create((ushort)0xC000);
            var adcMask = Vector256.Create((ushort)0x3FFF);
            long invalid = 0, saturated = 0;
            nint lastStep = n - 16;
            for (; i <= lastStep; i += 16)
            {
                var v = Vector256.LoadUnsafe(ref r, (nuint)i);
                if ((v & codeMask) == Vector256<ushort>.Zero)
                {
                    var (lo, hi) = Vector256.Widen(v);
                    Store0(Vector256.ConvertToSingle(lo.AsInt32()), ref p0, ref g0, ref d, (nuint)i);
                    Store0(Vector256.ConvertToSingle(hi.AsInt32()), ref p0, ref g0, ref d, (nuint)(i + 8));
                    continue;
                }
                var (adcLo, adcHi) = Vector256.Widen(v & adcMask);
                var (rawLo, rawHi) = Vector256.Widen(v);
                MixedStep(rawLo, Vector256.ConvertToSingle(adcLo.AsInt32()), ref p0, ref p1, ref p2, ref g0, ref g1, ref g2,
                    ref d, (nuint)i, ref invalid, ref saturated);
                MixedStep(rawHi, Vector256.ConvertToSingle(adcHi.AsInt32()), ref p0, ref p1, ref p2, ref g0, ref g1, ref g2,
                    ref d, (nuint)(i + 8), ref invalid, ref saturated);
            }
            counts.InvalidGain += invalid;
            counts.Saturated += saturated;
        }
        // The last n % 16 pixels in a call of its own: a call inside this method's loops would make
        // the JIT keep loop values on the stack around it.
        if (i < n)
            ConvertPixelsScalar(raw[(int)i..], c.Slice((int)i, n - (int)i), dst[(int)i..], ref counts);
    }

    private static void CheckLengths(in GainPlanes c, Span<float> dst, int n)
    {
        if (dst.Length < n || c.Length < n)
            ThrowTooShort(n, dst.Length, c.Length);
    }

    [DoesNotReturn]
    private static void ThrowTooShort(int n, int dst, int planes) =>
        throw new ArgumentException($"{n} raw pixels need as many in dst and in every gain plane; dst has {dst}, the shortest plane {planes}");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store0(Vector256<float> adc, ref float p0, ref float g0, ref float dst, nuint i) =>
        ((adc - Vector256.LoadUnsafe(ref p0, i)) / Vector256.LoadUnsafe(ref g0, i)).StoreUnsafe(ref dst, i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MixedStep(Vector256<uint> raw, Vector256<float> adc, ref float p0, ref float p1, ref float p2,
        ref float g0, ref float g1, ref float g2, ref float dst, nuint i, ref long invalid, ref long saturated)
    {
        var code = Vector256.ShiftRightLogical(raw, 14);
        var isG1 = Vector256.Equals(code, Vector256.Create(1u)).AsSingle();
        var isG2 = Vector256.Equals(code, Vector256.Create(3u)).AsSingle();
        var bad = Vector256.Equals(code, Vector256.Create(2u));
        var sat = Vector256.Equals(raw, Vector256.Create((uint)Saturated));
        var p2v = Vector256.LoadUnsafe(ref p2, i);
        var ped = Vector256.ConditionalSelect(isG1, Vector256.LoadUnsafe(ref p1, i),
            Vector256.ConditionalSelect(isG2, p2v, Vector256.LoadUnsafe(ref p0, i)));
        var gain = Vector256.ConditionalSelect(isG1, Vector256.LoadUnsafe(ref g1, i),
            Vector256.ConditionalSelect(isG2, Vector256.LoadUnsafe(ref g2, i), Vector256.LoadUnsafe(ref g0, i)));
        var result = (adc - ped) / gain;
        // +∞ for saturated pixels; p2 − p2 is 0, or NaN for a masked pixel, so the mask wins.
        result = Vector256.ConditionalSelect(sat.AsSingle(), Vector256.Create(float.PositiveInfinity) + (p2v - p2v), result);
        result = Vector256.ConditionalSelect(bad.AsSingle(), Vector256.Create(float.NaN), result);
        result.StoreUnsafe(ref dst, i);
        invalid += BitOperations.PopCount(bad.ExtractMostSignificantBits());
        saturated += BitOperations.PopCount(sat.ExtractMostSignificantBits());
    }
}
