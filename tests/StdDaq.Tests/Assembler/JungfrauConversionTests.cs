using System.Runtime.InteropServices;
using StdDaq.Assembler;
using StdDaq.Assembler.Conversions;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Assembler;

/// <summary>Calibration arrays for tests: [3, modules × 512, 1024] gains and pedestals, and a mask.</summary>
public sealed class TestCalibration
{
    public const int Pixels = JungfrauCalibration.ModulePixels;
    public float[] Gains { get; }
    public float[] Pedestals { get; }
    public uint[] Mask { get; }
    public int Modules { get; }

    /// <summary>Realistic ranges: G0 30–50 ADU/keV around 1000–3000 ADU, G1 and G2 negative gains near the top of the ADC range.</summary>
    public TestCalibration(int modules, int seed, double maskedFraction = 0.001)
    {
        Modules = modules;
        var rnd = new Random(seed);
        long n = (long)modules * Pixels;
        Gains = new float[3 * n];
        Pedestals = new float[3 * n];
        Mask = new uint[n];
        for (long i = 0; i < n; i++)
        {
            Gains[i] = 30 + 20 * rnd.NextSingle();
            Gains[n + i] = -1 - rnd.NextSingle();
            Gains[2 * n + i] = -0.05f - 0.1f * rnd.NextSingle();
            Pedestals[i] = 1000 + 2000 * rnd.NextSingle();
            Pedestals[n + i] = 14000 + 1000 * rnd.NextSingle();
            Pedestals[2 * n + i] = 14000 + 1000 * rnd.NextSingle();
            Mask[i] = rnd.NextDouble() < maskedFraction ? 1u : 0u;
        }
    }

    public JungfrauCalibration Build() => new(Modules, Gains, Pedestals, Mask);

    /// <summary>
    /// The expected value of one pixel, straight from the README's rules (independent of the
    /// converter): masked → NaN, code 10 → NaN, 0xC000 → +∞, else (ADC − pedestal[g]) / gain[g].
    /// </summary>
    public float Expected(int module, long pixel, ushort raw)
    {
        long n = (long)Modules * Pixels, at = (long)module * Pixels + pixel;
        if (Mask[at] != 0 || (raw >> 14) == 2)
            return float.NaN;
        if (raw == 0xC000)
            return float.PositiveInfinity;
        int g = (raw >> 14) switch { 0 => 0, 1 => 1, _ => 2 };
        return ((raw & 0x3FFF) - Pedestals[g * n + at]) / Gains[g * n + at];
    }
}

public class JungfrauConversionTests
{
    private static bool Same(float a, float b) => (float.IsNaN(a) && float.IsNaN(b)) || BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b);

    [Fact]
    public void ConvertPixel_EveryGainCodeAndSentinel_FollowsTheFormula()
    {
        var counts = new PixelCounts();
        float Px(ushort raw, float p2 = 14500) => JungfrauConverter.ConvertPixel(raw, 100, 15000, p2, 40, -1.5f, -0.125f, ref counts);
        Assert.Equal((1000f - 100) / 40, Px(0x0000 | 1000));       // G0
        Assert.Equal((2000f - 15000) / -1.5f, Px(0x4000 | 2000));  // G1
        Assert.Equal((3000f - 14500) / -0.125f, Px(0xC000 | 3000)); // G2
        Assert.True(float.IsNaN(Px(0x8000 | 123)));                // 10: invalid
        Assert.Equal(float.PositiveInfinity, Px(0xC000));          // saturated
        Assert.True(float.IsNaN(Px(0xC000, p2: float.NaN)));       // saturated but masked
        Assert.Equal(new PixelCounts(InvalidGain: 1, Saturated: 2, LostPackets: 0), counts);
    }

    [Theory]
    [InlineData(1024, 0.0)]    // all G0: the fast path only
    [InlineData(1024, 0.3)]
    [InlineData(4096, 1.0)]    // every step mixed
    [InlineData(1000, 0.5)]    // a tail of 8 pixels
    [InlineData(15, 0.5)]      // shorter than one step
    [InlineData(0, 0.5)]
    public void ConvertPixels_RandomData_SimdEqualsScalar(int n, double nonG0)
    {
        var rnd = new Random(n * 7 + (int)(nonG0 * 10));
        int planeLength = Math.Max(n, 1);
        var raw = new ushort[planeLength];
        var planes = new float[6][];
        for (int k = 0; k < 6; k++)
        {
            planes[k] = new float[planeLength];
            for (int i = 0; i < planeLength; i++)
                planes[k][i] = k < 3 ? 1000 + 14000 * rnd.NextSingle() : (rnd.NextSingle() - 0.3f) * 50;
        }
        for (int i = 0; i < n; i++)
        {
            // Whole 16-pixel steps stay G0 with probability 1 - nonG0, so both paths run.
            bool mixed = rnd.NextDouble() < nonG0 || (i / 16 % 3 == 0 && nonG0 > 0);
            raw[i] = (ushort)(mixed ? rnd.Next(0, 65536) : rnd.Next(0, 16384));
            if (mixed && rnd.Next(20) == 0)
                raw[i] = JungfrauConverter.Saturated;
            if (rnd.Next(100) == 0)
                for (int k = 0; k < 6; k++)
                    planes[k][i] = float.NaN; // masked
        }
        var scalarOut = new float[planeLength];
        var simdOut = new float[planeLength];
        PixelCounts scalar = default, simd = default;
        var c = new GainPlanes(planes[0], planes[1], planes[2], planes[3], planes[4], planes[5]);
        JungfrauConverter.ConvertPixelsScalar(raw.AsSpan(0, n), c, scalarOut, ref scalar);
        JungfrauConverter.ConvertPixels(raw.AsSpan(0, n), c, simdOut, ref simd);
        for (int i = 0; i < n; i++)
            Assert.True(Same(scalarOut[i], simdOut[i]), $"pixel {i} raw 0x{raw[i]:X4}: scalar {scalarOut[i]} simd {simdOut[i]}");
        Assert.Equal(scalar, simd);
        if (nonG0 > 0 && n >= 1000)
            Assert.True(scalar.InvalidGain > 0 && scalar.Saturated > 0, $"the data must contain every sentinel: {scalar}");
    }

    [Theory]
    [InlineData(63, -1)] // dst one pixel short
    [InlineData(64, 0)]  // G0 pedestals one pixel short
    [InlineData(64, 5)]  // G2 gains one pixel short
    public void ConvertPixels_SpanShorterThanRaw_ThrowsArgumentException(int dstLength, int shortPlane)
    {
        const int n = 64;
        var raw = new ushort[n];
        var planes = new float[6][];
        for (int k = 0; k < 6; k++)
            planes[k] = new float[k == shortPlane ? n - 1 : n];
        var dst = new float[dstLength];
        var counts = new PixelCounts();
        Assert.Throws<ArgumentException>(() => JungfrauConverter.ConvertPixels(raw, new GainPlanes(planes[0], planes[1], planes[2], planes[3], planes[4], planes[5]), dst, ref counts));
        Assert.Throws<ArgumentException>(() => JungfrauConverter.ConvertPixelsScalar(raw, new GainPlanes(planes[0], planes[1], planes[2], planes[3], planes[4], planes[5]), dst, ref counts));
    }

    [Fact]
    public unsafe void Calibration_Planes_Are64ByteAlignedAndThrowAfterDispose()
    {
        var cal = new TestCalibration(2, seed: 9).Build();
        for (int m = 0; m < 2; m++)
            for (int g = 0; g < 3; g++)
            {
                Assert.Equal(TestCalibration.Pixels, cal.Pedestal(m, g).Length);
                Assert.Equal(TestCalibration.Pixels, cal.Gain(m, g).Length);
                fixed (float* p = cal.Pedestal(m, g), q = cal.Gain(m, g))
                {
                    Assert.Equal(0, (long)p % 64);
                    Assert.Equal(0, (long)q % 64);
                }
            }
        Assert.Throws<ArgumentOutOfRangeException>(() => cal.Gain(2, 0).Length);
        cal.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cal.Pedestal(0, 0).Length);
    }

    [Fact]
    public void Convert_FlippedModuleWithLostPacketsAndMixedGains_EveryPixelAsTheRulesSay()
    {
        using var env = new TestEnv();
        var config = env.Config("jungfrau-converted", 2, 16, 1024, 1024, new() { [0] = [0, 0, 1023, 511], [1] = [0, 1023, 1023, 512] });
        var layout = new ImageLayout(config);
        var cal = new TestCalibration(2, seed: 5);
        using var calibration = cal.Build();
        using var converter = new JungfrauConverter(layout, calibration);
        var rnd = new Random(3);
        var frame = new ushort[TestCalibration.Pixels];
        for (int i = 0; i < frame.Length; i++)
            frame[i] = rnd.Next(4) == 0 ? (ushort)rnd.Next(65536) : (ushort)rnd.Next(16384);
        frame[77] = JungfrauConverter.Saturated;
        var header = new SlotHeader { NMissingPackets = 2 };
        for (int k = 0; k < 128; k++)
            if (k is not (0 or 93))
                header.MarkPacket(k);
        var image = new float[layout.Width * layout.Height];
        var counts = converter.Convert(MemoryMarshal.AsBytes(frame.AsSpan()), header, MemoryMarshal.AsBytes(image.AsSpan()), layout.Placements[1]);

        long invalid = 0, saturated = 0;
        for (int i = 0; i < frame.Length; i++)
        {
            int r = i / 1024, c = i % 1024;
            bool lost = r / 4 is 0 or 93;
            float got = image[(1023 - r) * 1024 + c]; // flipped: frame row 0 on image row 1023
            float want = lost ? float.NaN : cal.Expected(1, i, frame[i]);
            Assert.True(Same(want, got), $"frame pixel {i} (raw 0x{frame[i]:X4}, lost {lost}): expected {want}, got {got}");
            if (!lost)
            {
                invalid += frame[i] >> 14 == 2 ? 1 : 0;
                saturated += frame[i] == 0xC000 ? 1 : 0;
            }
        }
        Assert.Equal(new PixelCounts(invalid, saturated, 2 * 4 * 1024), counts);
        Assert.All(image.AsSpan(0, 512 * 1024).ToArray(), v => Assert.Equal(0f, v)); // module 0's place untouched

        converter.Fill(MemoryMarshal.AsBytes(image.AsSpan()), layout.Placements[0]);
        Assert.All(image.AsSpan(0, 512 * 1024).ToArray(), v => Assert.True(float.IsNaN(v)));
    }

    private const string WriteCalibration = """
        import sys, h5py, numpy as np
        path, modules, pedestal_name, levels = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        rows = modules * 512
        i = np.arange(rows * 1024, dtype=np.int64).reshape(rows, 1024)
        gains = np.stack([10.0 * (g + 1) + (i % 97) * 0.01 for g in range(levels)])        # float64
        peds = np.stack([1000.0 * (g + 1) + (i % 50) * 0.5 for g in range(levels)]).astype(np.float32)
        mask = np.zeros((rows, 1024), dtype=np.uint8)
        mask[3, 5] = 1
        mask[rows - 1, 1023] = 4
        with h5py.File(path, "w") as f:
            f["gains"] = gains
            f[pedestal_name] = peds
            f["pixel_mask"] = mask
        """;

    [Theory]
    [InlineData("pedestals", 3)]
    [InlineData("gainsRMS", 4)] // std-daq's name for the pedestals; a 4th level is ignored
    public void Load_H5pyWrittenFile_PlanesHoldTheDatasetsAndTheMask(string pedestalName, int levels)
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "gp.h5");
        Python.Run(env, WriteCalibration, path, "2", pedestalName, levels.ToString());
        using var cal = JungfrauCalibration.Load(path, 2);
        Assert.Equal(2, cal.MaskedPixels);
        var rnd = new Random(1);
        for (int t = 0; t < 2000; t++)
        {
            int m = rnd.Next(2), g = rnd.Next(3), p = rnd.Next(TestCalibration.Pixels);
            long i = (long)m * TestCalibration.Pixels + p;
            bool masked = (m, p) is (0, 3 * 1024 + 5) or (1, TestCalibration.Pixels - 1);
            if (masked)
                continue;
            Assert.Equal((float)(10.0 * (g + 1) + i % 97 * 0.01), cal.Gain(m, g)[p]);
            Assert.Equal((float)(1000.0 * (g + 1) + i % 50 * 0.5), cal.Pedestal(m, g)[p]);
        }
        for (int g = 0; g < 3; g++)
        {
            Assert.True(float.IsNaN(cal.Gain(0, g)[3 * 1024 + 5]) && float.IsNaN(cal.Pedestal(0, g)[3 * 1024 + 5]));
            Assert.True(float.IsNaN(cal.Gain(1, g)[TestCalibration.Pixels - 1]));
        }
    }

    [Fact]
    public void Load_BadFiles_ClearErrors()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "gp.h5");
        Python.Run(env, WriteCalibration, path, "1", "pedestals", "3");
        var wrongModules = Assert.Throws<InvalidDataException>(() => JungfrauCalibration.Load(path, 2));
        Assert.Contains("/gains has shape [3, 512, 1024], expected [3, 1024, 1024]", wrongModules.Message);

        string noPedestals = Path.Combine(env.Dir, "nop.h5");
        Python.Run(env, WriteCalibration, noPedestals, "1", "something_else", "3");
        Assert.Contains("no /pedestals dataset", Assert.Throws<InvalidDataException>(() => JungfrauCalibration.Load(noPedestals, 1)).Message);

        string text = Path.Combine(env.Dir, "text.h5");
        File.WriteAllText(text, "not hdf5");
        var notHdf5 = Assert.Throws<Hdf5Exception>(() => JungfrauCalibration.Load(text, 1));
        Assert.Contains(text, notHdf5.Message);
        Assert.Contains("H5Fopen", notHdf5.Message); // the HDF5 error stack's text

        Assert.Throws<FileNotFoundException>(() => JungfrauCalibration.Load(Path.Combine(env.Dir, "missing.h5"), 1));
    }
}
