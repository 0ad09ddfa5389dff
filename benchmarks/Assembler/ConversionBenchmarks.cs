using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using StdDaq.Assembler.Conversions;

namespace StdDaq.Benchmarks.Assembler;

/// <summary>
/// One JUNGFRAU module frame (512 × 1024 raw uint16) converted to keV on one core: the SIMD
/// conversion next to its scalar reference and a plain memcpy of the same 1 MiB raw frame (what
/// the raw path costs). "dark": every pixel in G0 (the usual case); "mixed": a quarter of the
/// pixels in G1/G2 or invalid, scattered, so most 16-pixel steps take the mixed path.
/// </summary>
[MemoryDiagnoser]
public unsafe class JungfrauConversionBenchmarks
{
    private const int Pixels = JungfrauCalibration.ModulePixels;
    private JungfrauCalibration _calibration = null!;
    private GainPlanes _planes;
    private ushort* _raw;
    private float* _out;
    private ushort* _copy;

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
        _planes = GainPlanes.Of(_calibration, 0);
        _raw = (ushort*)NativeMemory.AlignedAlloc(Pixels * 2, 64);
        _copy = (ushort*)NativeMemory.AlignedAlloc(Pixels * 2, 64);
        _out = (float*)NativeMemory.AlignedAlloc(Pixels * 4, 64);
        for (int i = 0; i < Pixels; i++)
            _raw[i] = Data == "dark" || rnd.Next(4) != 0 ? (ushort)rnd.Next(500, 4000) : (ushort)rnd.Next(0x4000, 0x10000);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _calibration.Dispose();
        NativeMemory.AlignedFree(_raw);
        NativeMemory.AlignedFree(_copy);
        NativeMemory.AlignedFree(_out);
    }

    [Benchmark(Baseline = true)]
    public long Scalar()
    {
        var counts = new PixelCounts();
        JungfrauConverter.ConvertPixelsScalar(_raw, _planes, _out, Pixels, ref counts);
        return counts.InvalidGain;
    }

    [Benchmark]
    public long Simd()
    {
        var counts = new PixelCounts();
        JungfrauConverter.ConvertPixels(_raw, _planes, _out, Pixels, ref counts);
        return counts.InvalidGain;
    }

    [Benchmark]
    public void Memcpy() => Buffer.MemoryCopy(_raw, _copy, Pixels * 2, Pixels * 2);
}

/// <summary>GigaFRoST 12-bit unpack of one 2016 × 2016 detector's worth of rows, SIMD vs its scalar reference.</summary>
[MemoryDiagnoser]
public unsafe class GigafrostUnpackBenchmarks
{
    private const int Pixels = 2016 * 2016;
    private byte* _src;
    private ushort* _dst;

    [GlobalSetup]
    public void Setup()
    {
        _src = (byte*)NativeMemory.AlignedAlloc(Pixels * 3 / 2, 64);
        _dst = (ushort*)NativeMemory.AlignedAlloc(Pixels * 2, 64);
        new Random(1).NextBytes(new Span<byte>(_src, Pixels * 3 / 2));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_src);
        NativeMemory.AlignedFree(_dst);
    }

    [Benchmark(Baseline = true)]
    public void Scalar() => GigafrostConverter.Unpack12Scalar(_src, _dst, Pixels);

    [Benchmark]
    public void Simd() => GigafrostConverter.Unpack12(_src, _dst, Pixels);
}
