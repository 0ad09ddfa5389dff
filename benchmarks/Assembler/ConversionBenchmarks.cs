using BenchmarkDotNet.Attributes;
using StdDaq.Assembler.Conversions;
using StdDaq.Shared.Memory;

namespace StdDaq.Benchmarks.Assembler;

/// <summary>
/// One JUNGFRAU module frame (512 × 1024 raw uint16) converted to keV on one core: the SIMD
/// conversion next to its scalar reference and a plain memcpy of the same 1 MiB raw frame (what
/// the raw path costs). "dark": every pixel in G0 (the usual case); "mixed": a quarter of the
/// pixels in G1/G2 or invalid, scattered, so most 16-pixel steps take the mixed path.
/// </summary>
[MemoryDiagnoser]
public class JungfrauConversionBenchmarks
{
    private const int Pixels = JungfrauCalibration.ModulePixels;
    private JungfrauCalibration _calibration = null!;
    // 64-byte aligned like the calibration planes, so no vector load splits a cache line.
    private AlignedBuffer<ushort> _raw = null!;
    private AlignedBuffer<float> _out = null!;
    private AlignedBuffer<ushort> _copy = null!;

    [Params("dark", "mixed")]
    public string Data { get; set; } = "dark";

    [GlobalSetup]
    public void Setup()
    {
        var rnd = new Random(1);
        var gains = new float[3 * Pixels];
        var pedestals = new float[3 * Pixels];
        for (int i = 0; i < Pixels; i++)
        {
            gains[i] = 30 + 20 * rnd.NextSingle();
            gains[Pixels + i] = -1 - rnd.NextSingle();
            gains[2 * Pixels + i] = -0.1f;
            pedestals[i] = 1000 + 2000 * rnd.NextSingle();
            pedestals[Pixels + i] = pedestals[2 * Pixels + i] = 14000;
        }
        _calibration = new JungfrauCalibration(1, gains, pedestals);
        _raw = new AlignedBuffer<ushort>(Pixels);
        _copy = new AlignedBuffer<ushort>(Pixels);
        _out = new AlignedBuffer<float>(Pixels);
        var raw = _raw.Span;
        for (int i = 0; i < Pixels; i++)
            raw[i] = Data == "dark" || rnd.Next(4) != 0 ? (ushort)rnd.Next(500, 4000) : (ushort)rnd.Next(0x4000, 0x10000);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _calibration.Dispose();
        _raw.Dispose();
        _copy.Dispose();
        _out.Dispose();
    }

    [Benchmark(Baseline = true)]
    public long Scalar()
    {
        var counts = new PixelCounts();
        JungfrauConverter.ConvertPixelsScalar(_raw.Span, GainPlanes.Of(_calibration, 0), _out.Span, ref counts);
        return counts.InvalidGain;
    }

    [Benchmark]
    public long Simd()
    {
        var counts = new PixelCounts();
        JungfrauConverter.ConvertPixels(_raw.Span, GainPlanes.Of(_calibration, 0), _out.Span, ref counts);
        return counts.InvalidGain;
    }

    [Benchmark]
    public void Memcpy() => _raw.Span.CopyTo(_copy.Span);
}

/// <summary>GigaFRoST 12-bit unpack of one 2016 × 2016 detector's worth of rows, SIMD vs its scalar reference.</summary>
[MemoryDiagnoser]
public class GigafrostUnpackBenchmarks
{
    private const int Pixels = 2016 * 2016;
    private AlignedBuffer<byte> _src = null!;
    private AlignedBuffer<ushort> _dst = null!;

    [GlobalSetup]
    public void Setup()
    {
        _src = new AlignedBuffer<byte>(Pixels * 3 / 2);
        _dst = new AlignedBuffer<ushort>(Pixels);
        new Random(1).NextBytes(_src.Span);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _src.Dispose();
        _dst.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Scalar() => GigafrostConverter.Unpack12Scalar(_src.Span, _dst.Span, Pixels);

    [Benchmark]
    public void Simd() => GigafrostConverter.Unpack12(_src.Span, _dst.Span, Pixels);
}
