using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using StdDaq.Shared.Memory;

namespace StdDaq.Assembler.Conversions;

/// <summary>Pixels a conversion turned into sentinels, by cause.</summary>
public record struct PixelCounts(long InvalidGain, long Saturated, long LostPackets)
{
    public static PixelCounts operator +(PixelCounts a, PixelCounts b) =>
        new(a.InvalidGain + b.InvalidGain, a.Saturated + b.Saturated, a.LostPackets + b.LostPackets);
}

/// <summary>The six calibration planes of one module, each at the same pixel index.</summary>
public readonly unsafe struct GainPlanes(float* p0, float* p1, float* p2, float* g0, float* g1, float* g2)
{
    public readonly float* P0 = p0, P1 = p1, P2 = p2, G0 = g0, G1 = g1, G2 = g2;

    public static GainPlanes Of(JungfrauCalibration c, int module) => new(
        c.Pedestal(module, 0), c.Pedestal(module, 1), c.Pedestal(module, 2), c.Gain(module, 0), c.Gain(module, 1), c.Gain(module, 2));

    public GainPlanes Offset(long i) => new(P0 + i, P1 + i, P2 + i, G0 + i, G1 + i, G2 + i);
}

/// <summary>
/// JUNGFRAU converted: each raw pixel (bits 15–14 gain code, 13–0 ADC) becomes float32 energy in
/// keV, <c>(ADC − pedestal[g]) / gain[g]</c> with g from the code (00 → G0, 01 → G1, 11 → G2),
/// written straight into its image row. Sentinels (README "JUNGFRAU converted"):
/// gain code 10 (invalid) → NaN; 0xC000 (saturated, G2 with ADC 0) → +∞; pixels of lost packets,
/// masked pixels and missing modules → NaN. Invalid, saturated and lost-packet pixels are counted.
/// </summary>
public sealed unsafe class JungfrauConverter(ImageLayout layout, JungfrauCalibration calibration, bool ownsCalibration = false)
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

    public override void Convert(byte* frame, byte* image, in ModulePlacement p) =>
        Convert(frame, default, image, p, allPackets: true);

    public override PixelCounts Convert(byte* frame, in SlotHeader header, byte* image, in ModulePlacement p) =>
        Convert(frame, header, image, p, allPackets: header.NMissingPackets == 0);

    private PixelCounts Convert(byte* frame, in SlotHeader header, byte* image, in ModulePlacement p, bool allPackets)
    {
        var g = Layout.Module;
        int width = g.FrameWidth;
        var planes = GainPlanes.Of(Calibration, p.Module);
        var counts = new PixelCounts();
        for (int k = 0; k < g.PacketsPerFrame; k++)
        {
            bool lost = !allPackets && !header.HasPacket(k);
            for (int r = k * RowsPerPacket; r < (k + 1) * RowsPerPacket; r++)
            {
                var dst = (float*)(image + p.ImageRow(r) * Layout.RowBytes) + p.X0;
                if (lost)
                {
                    new Span<float>(dst, width).Fill(float.NaN);
                    counts.LostPackets += width;
                    continue;
                }
                long i = (long)r * width;
                ConvertPixels((ushort*)frame + i, planes.Offset(i), dst, width, ref counts);
            }
        }
        return counts;
    }

    public override void Fill(byte* image, in ModulePlacement p)
    {
        for (int r = 0; r < p.Height; r++)
            new Span<float>((float*)(image + p.ImageRow(r) * Layout.RowBytes) + p.X0, p.Width).Fill(float.NaN);
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
    public static void ConvertPixelsScalar(ushort* raw, in GainPlanes c, float* dst, int n, ref PixelCounts counts)
    {
        for (int i = 0; i < n; i++)
            dst[i] = ConvertPixel(raw[i], c.P0[i], c.P1[i], c.P2[i], c.G0[i], c.G1[i], c.G2[i], ref counts);
    }

    /// <summary>
    /// Converts <paramref name="n"/> pixels, 16 per step with 256-bit vectors. A step whose pixels
    /// are all G0 (the common case) reads only the G0 planes; any other step selects per lane from
    /// all three levels. Results equal <see cref="ConvertPixelsScalar"/> bit for bit (same float32
    /// operations in the same order; NaNs may differ only in payload). Compiled fully optimized at
    /// once: unoptimized vector code is many times slower, and the first images must not wait for tiering.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ConvertPixels(ushort* raw, in GainPlanes c, float* dst, int n, ref PixelCounts counts)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var codeMask = Vector256.Create((ushort)0xC000);
            var adcMask = Vector256.Create((ushort)0x3FFF);
            long invalid = 0, saturated = 0;
            for (; i <= n - 16; i += 16)
            {
                var v = Vector256.Load(raw + i);
                if ((v & codeMask) == Vector256<ushort>.Zero)
                {
                    var (lo, hi) = Vector256.Widen(v);
                    Store0(Vector256.ConvertToSingle(lo.AsInt32()), c, dst, i);
                    Store0(Vector256.ConvertToSingle(hi.AsInt32()), c, dst, i + 8);
                    continue;
                }
                var (adcLo, adcHi) = Vector256.Widen(v & adcMask);
                var (rawLo, rawHi) = Vector256.Widen(v);
                MixedStep(rawLo, Vector256.ConvertToSingle(adcLo.AsInt32()), c, dst, i, ref invalid, ref saturated);
                MixedStep(rawHi, Vector256.ConvertToSingle(adcHi.AsInt32()), c, dst, i + 8, ref invalid, ref saturated);
            }
            counts.InvalidGain += invalid;
            counts.Saturated += saturated;
        }
        for (; i < n; i++)
            dst[i] = ConvertPixel(raw[i], c.P0[i], c.P1[i], c.P2[i], c.G0[i], c.G1[i], c.G2[i], ref counts);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store0(Vector256<float> adc, in GainPlanes c, float* dst, int i) =>
        ((adc - Vector256.Load(c.P0 + i)) / Vector256.Load(c.G0 + i)).Store(dst + i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MixedStep(Vector256<uint> raw, Vector256<float> adc, in GainPlanes c, float* dst, int i,
        ref long invalid, ref long saturated)
    {
        var code = Vector256.ShiftRightLogical(raw, 14);
        var isG1 = Vector256.Equals(code, Vector256.Create(1u)).AsSingle();
        var isG2 = Vector256.Equals(code, Vector256.Create(3u)).AsSingle();
        var bad = Vector256.Equals(code, Vector256.Create(2u));
        var sat = Vector256.Equals(raw, Vector256.Create((uint)Saturated));
        var p2 = Vector256.Load(c.P2 + i);
        var ped = Vector256.ConditionalSelect(isG1, Vector256.Load(c.P1 + i), Vector256.ConditionalSelect(isG2, p2, Vector256.Load(c.P0 + i)));
        var gain = Vector256.ConditionalSelect(isG1, Vector256.Load(c.G1 + i), Vector256.ConditionalSelect(isG2, Vector256.Load(c.G2 + i), Vector256.Load(c.G0 + i)));
        var result = (adc - ped) / gain;
        // +∞ for saturated pixels; p2 − p2 is 0, or NaN for a masked pixel, so the mask wins.
        result = Vector256.ConditionalSelect(sat.AsSingle(), Vector256.Create(float.PositiveInfinity) + (p2 - p2), result);
        result = Vector256.ConditionalSelect(bad.AsSingle(), Vector256.Create(float.NaN), result);
        result.Store(dst + i);
        invalid += BitOperations.PopCount(bad.ExtractMostSignificantBits());
        saturated += BitOperations.PopCount(sat.ExtractMostSignificantBits());
    }
}
