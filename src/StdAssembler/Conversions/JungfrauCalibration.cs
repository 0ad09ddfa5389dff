using StdDaq.Shared.Detectors;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;

namespace StdDaq.Assembler.Conversions;

/// <summary>
/// Per-pixel pedestals (ADU) and gains (ADU per keV) of every module for the three gain levels
/// G0, G1, G2, plus the optional pixel mask, as float32 planes in native memory (64-byte aligned):
/// plane (module, g) holds a module's 512 × 1024 values in frame order (row r = rows 4k..4k+3 of
/// packet k), so conversion reads them at the same index as the raw pixel.
/// </summary>
/// <remarks>
/// A masked pixel has NaN as its pedestal and gain at every level, so the conversion turns it into
/// NaN with no extra load or test.
/// </remarks>
public sealed class JungfrauCalibration : IDisposable
{
    public const int GainLevels = 3;
    public const int ModulePixels = ModuleGeometry.JungfrauWidth * ModuleGeometry.JungfrauHeight;

    /// <summary>Dataset names in the gains-and-pedestals file (README: "JUNGFRAU gains and pedestals").</summary>
    public const string GainsDataset = "/gains", PedestalsDataset = "/pedestals", PedestalsDatasetStdDaq = "/gainsRMS",
        MaskDataset = "/pixel_mask";

    private readonly AlignedBuffer<float> _planes;

    public int Modules { get; }
    /// <summary>
    /// Pixels the mask marks bad, or whose pedestal is not finite at some level: their converted
    /// value is always NaN.
    /// </summary>
    public long MaskedPixels { get; }

    /// <param name="gains">[3, modules × 512, 1024] ADU per keV, G0 plane first.</param>
    /// <param name="pedestals">[3, modules × 512, 1024] ADU.</param>
    /// <param name="mask">[modules × 512, 1024]; non-zero marks a bad pixel. Optional.</param>
    public JungfrauCalibration(int modules, ReadOnlySpan<float> gains, ReadOnlySpan<float> pedestals, ReadOnlySpan<uint> mask = default)
    {
        long perLevel = (long)modules * ModulePixels;
        if (modules <= 0 || gains.Length != GainLevels * perLevel || pedestals.Length != GainLevels * perLevel)
            throw new ArgumentException($"gains and pedestals need {GainLevels} × {modules} × 512 × 1024 values");
        if (!mask.IsEmpty && mask.Length != perLevel)
            throw new ArgumentException($"the pixel mask needs {modules} × 512 × 1024 values");
        Modules = modules;
        // 64-byte aligned: the conversion loads 8 floats from multiples of 8 pixels, so no load splits a cache line.
        _planes = new AlignedBuffer<float>(checked((int)(2 * GainLevels * perLevel)), alignment: 64);
        long masked = 0;
        for (int m = 0; m < modules; m++)
            for (int g = 0; g < GainLevels; g++)
            {
                int from = checked((int)(g * perLevel + (long)m * ModulePixels));
                gains.Slice(from, ModulePixels).CopyTo(Plane(m, g, 1));
                pedestals.Slice(from, ModulePixels).CopyTo(Plane(m, g, 0));
            }
        for (int m = 0; m < modules; m++)
        {
            ReadOnlySpan<float> p0 = Plane(m, 0, 0), p1 = Plane(m, 1, 0), p2 = Plane(m, 2, 0);
            var moduleMask = mask.IsEmpty ? default : mask.Slice(m * ModulePixels, ModulePixels);
            for (int i = 0; i < ModulePixels; i++)
            {
                bool bad = (!moduleMask.IsEmpty && moduleMask[i] != 0)
                    || !float.IsFinite(p0[i]) || !float.IsFinite(p1[i]) || !float.IsFinite(p2[i]);
                if (!bad)
                    continue;
                masked++;
                for (int g = 0; g < GainLevels; g++)
                    Plane(m, g, 1)[i] = Plane(m, g, 0)[i] = float.NaN;
            }
        }
        MaskedPixels = masked;
    }

    /// <summary>Module m's pedestals for gain level g (0 = G0, 1 = G1, 2 = G2), ModulePixels values.</summary>
    public ReadOnlySpan<float> Pedestal(int m, int g) => Plane(m, g, 0);

    /// <summary>Module m's gains (ADU per keV) for gain level g.</summary>
    public ReadOnlySpan<float> Gain(int m, int g) => Plane(m, g, 1);

    private Span<float> Plane(int m, int g, int which)
    {
        if ((uint)m >= (uint)Modules || (uint)g >= GainLevels)
            throw new ArgumentOutOfRangeException(nameof(m));
        return _planes.Span.Slice(((m * GainLevels + g) * 2 + which) * ModulePixels, ModulePixels);
    }

    /// <summary>
    /// Reads <c>/gains</c> and <c>/pedestals</c> (or std-daq's name for them, <c>/gainsRMS</c>),
    /// each [3 or 4, modules × 512, 1024] of any float or integer type, of which the first three
    /// levels (G0, G1, G2) are used, and the optional <c>/pixel_mask</c> [modules × 512, 1024].
    /// </summary>
    /// <remarks>
    /// A file that is not what it must be (not HDF5, a dataset missing, of the wrong shape or not
    /// numeric) is <see cref="InvalidDataException"/> or <see cref="Hdf5Exception"/> with one line
    /// naming the file, the dataset and what is wrong.
    /// </remarks>
    public static JungfrauCalibration Load(string path, int modules)
    {
        using var file = Hdf5File.OpenRead(path);
        if (!file.Exists(GainsDataset))
            throw new InvalidDataException($"{path}: no {GainsDataset} dataset");
        var gains = ReadLevels(file, GainsDataset, modules);
        string pedestalName = file.Exists(PedestalsDataset) ? PedestalsDataset
            : file.Exists(PedestalsDatasetStdDaq) ? PedestalsDatasetStdDaq
            : throw new InvalidDataException($"{path}: no {PedestalsDataset} dataset (nor {PedestalsDatasetStdDaq})");
        var pedestals = ReadLevels(file, pedestalName, modules);
        uint[]? mask = null;
        if (file.Exists(MaskDataset))
        {
            RequireNumeric(file, MaskDataset);
            var shape = file.Shape(MaskDataset);
            if (shape is not [var h, ModuleGeometry.JungfrauWidth] || h != (long)modules * ModuleGeometry.JungfrauHeight)
                throw new InvalidDataException($"{path}: {MaskDataset} has shape [{string.Join(", ", shape)}], expected [{modules * ModuleGeometry.JungfrauHeight}, {ModuleGeometry.JungfrauWidth}] for {modules} modules");
            mask = new uint[modules * ModulePixels];
            file.ReadUInt32(MaskDataset, mask);
        }
        return new JungfrauCalibration(modules, gains, pedestals, mask);
    }

    private static void RequireNumeric(Hdf5File file, string name)
    {
        string type = file.TypeName(name);
        if (!type.StartsWith("float", StringComparison.Ordinal) && !type.Contains("int", StringComparison.Ordinal))
            throw new InvalidDataException($"{file.Path}: {name} holds {type} values, expected numbers (float or integer)");
    }

    private static float[] ReadLevels(Hdf5File file, string name, int modules)
    {
        RequireNumeric(file, name);
        var shape = file.Shape(name);
        long rows = (long)modules * ModuleGeometry.JungfrauHeight;
        if (shape is not [var levels, var h, ModuleGeometry.JungfrauWidth] || levels is not (3 or 4) || h != rows)
            throw new InvalidDataException($"{file.Path}: {name} has shape [{string.Join(", ", shape)}], expected [3, {rows}, {ModuleGeometry.JungfrauWidth}] (or 4 levels) for {modules} modules");
        var all = new float[levels * rows * ModuleGeometry.JungfrauWidth];
        file.ReadFloat32(name, all);
        return levels == GainLevels ? all : all[..(GainLevels * modules * ModulePixels)];
    }

    /// <summary>Frees the planes; spans taken from <see cref="Pedestal"/> and <see cref="Gain"/> must not be used after it.</summary>
    public void Dispose() => _planes.Dispose();
}
