using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Interop;

namespace StdDaq.Writer;

/// <summary>
/// What a file's NeXus NXmx description says about the detector and the beamline: the same for
/// every file of a writer, made once from the detector config (<see cref="From"/>). Lengths in
/// metres, as the file stores them.
/// </summary>
public sealed record NxmxDetector
{
    /// <summary>pixel_mask bit 0: a gap, no sensor under the pixel (NeXus NXdetector).</summary>
    public const uint GapBit = 1u << 0;
    /// <summary>pixel_mask bit 1: a dead pixel (here: one the JUNGFRAU calibration masks).</summary>
    public const uint DeadBit = 1u << 1;

    /// <summary>NXdetector description, e.g. "PSI JUNGFRAU, 2 modules (jungfrau-raw)".</summary>
    public required string Description { get; init; }
    /// <summary>The image rectangles that each become an NXdetector_module (DIALS: a panel).</summary>
    public required IReadOnlyList<ModulePosition> Modules { get; init; }
    /// <summary>
    /// The image rectangles the modules cover, in module order, each once (GigaFRoST's two links of
    /// a quadrant share one): every pixel outside them is a gap.
    /// </summary>
    public required IReadOnlyList<ModulePosition> Sensors { get; init; }
    /// <summary>Columns inside every sensor rectangle that have no sensor (EIGER's chip gap): offset from its left column, and width.</summary>
    public IReadOnlyList<(int Offset, int Width)> ChipGaps { get; init; } = [];
    /// <summary>Image pixels (row × width + column), ascending, that the calibration masks: pixel_mask bit 1.</summary>
    public IReadOnlyList<long> DeadPixels { get; init; } = [];
    /// <summary>x_pixel_size and y_pixel_size, m.</summary>
    public required double PixelSizeM { get; init; }
    /// <summary>sensor_material: Si, CdTe or GaAs.</summary>
    public string SensorMaterial { get; init; } = "Si";
    /// <summary>sensor_thickness, m; null: not known, not written.</summary>
    public double? SensorThicknessM { get; init; }
    /// <summary>saturation_value; null: not written.</summary>
    public double? SaturationValue { get; init; }
    /// <summary>underload_value; null: not written.</summary>
    public double? UnderloadValue { get; init; }
    /// <summary>bit_depth_readout: bits per pixel of the detector's own readout.</summary>
    public required int BitDepthReadout { get; init; }
    /// <summary>The <c>units</c> of the image data: "counts", or "keV" for converted JUNGFRAU.</summary>
    public string DataUnits { get; init; } = "counts";
    /// <summary>The config's nexus section: names, rotation axis, default distance and wavelength.</summary>
    public NexusConfig Nexus { get; init; } = new();

    /// <summary>
    /// The description of the config's detector: one NXdetector_module per module when every
    /// module spans the image's whole width (JUNGFRAU modules in a column), otherwise one module
    /// spanning the whole image (as DECTRIS writes them), the gaps then inside it and flagged in
    /// pixel_mask. DIALS 3.12 (Debian's; dxtbx 3.11) cuts each module's part out of pixel_mask
    /// as a numpy view that must be contiguous, that is whole rows, and refuses the file otherwise.
    /// For jungfrau-converted with gains_and_pedestals, the
    /// file's <c>/pixel_mask</c> is read now: its non-zero pixels become dead pixels (a file that
    /// cannot be read is an <see cref="InvalidDataException"/> or <see cref="Hdf5Exception"/> naming it).
    /// </summary>
    public static NxmxDetector From(DetectorConfig config)
    {
        var kind = config.Kind;
        var nexus = config.Nexus;
        string name = kind switch
        {
            DetectorKind.Eiger => $"PSI EIGER, {config.NModules} ports of 512 x 256 pixels, {config.BitDepth}-bit",
            DetectorKind.Gigafrost => "PSI GigaFRoST",
            _ => $"PSI JUNGFRAU, {config.NModules} modules of 1024 x 512 pixels",
        };
        var sensors = config.ModulePositions.Distinct().ToArray();
        int width = config.ImagePixelWidth;
        return new NxmxDetector
        {
            Description = $"{name} ({config.DetectorType}, detector_name {config.DetectorName})",
            Modules = sensors.All(m => m.Left == 0 && m.Width == width) ? sensors : [new ModulePosition(0, 0, width - 1, config.ImagePixelHeight - 1)],
            Sensors = sensors,
            ChipGaps = kind == DetectorKind.Eiger ? [(ModuleGeometry.EigerPortWidth / 2, ModuleGeometry.EigerChipGap)] : [],
            DeadPixels = kind == DetectorKind.JungfrauConverted && !string.IsNullOrEmpty(config.GainsAndPedestals)
                ? CalibrationMask(config.GainsAndPedestals, config) : [],
            PixelSizeM = nexus.PixelSizeUmFor(kind) * 1e-6,
            SensorMaterial = nexus.SensorMaterial,
            SensorThicknessM = nexus.SensorThicknessUmFor(kind) * 1e-6,
            SaturationValue = nexus.SaturationValueFor(kind, config.BitDepth),
            UnderloadValue = nexus.UnderloadValueFor(kind),
            BitDepthReadout = kind switch
            {
                DetectorKind.Eiger => config.BitDepth,
                DetectorKind.Gigafrost => 12,
                _ => 16,
            },
            DataUnits = kind == DetectorKind.JungfrauConverted ? "keV" : "counts",
            Nexus = nexus,
        };
    }

    /// <summary>
    /// A detector known only by its image size: one module spanning the image, with the JUNGFRAU
    /// defaults of the nexus section (75 µm silicon pixels, 320 µm thick), for files written
    /// without a detector config.
    /// </summary>
    public static NxmxDetector WholeImage(int height, int width, int bitDepth) => new()
    {
        Description = $"detector of {width} x {height} pixels",
        Modules = [new ModulePosition(0, 0, width - 1, height - 1)],
        Sensors = [new ModulePosition(0, 0, width - 1, height - 1)],
        PixelSizeM = new NexusConfig().PixelSizeUmFor(DetectorKind.JungfrauRaw) * 1e-6,
        SensorThicknessM = new NexusConfig().SensorThicknessUmFor(DetectorKind.JungfrauRaw) * 1e-6,
        BitDepthReadout = bitDepth,
    };

    /// <summary>
    /// Image row <paramref name="row"/> of the pixel_mask (<paramref name="mask"/> is the whole row):
    /// <see cref="GapBit"/> on every pixel no sensor covers and on the sensors' chip gaps,
    /// <see cref="DeadBit"/> on the dead pixels, 0 elsewhere.
    /// </summary>
    public void MaskRow(int row, Span<uint> mask)
    {
        mask.Fill(GapBit);
        foreach (var m in Sensors)
        {
            if (row < m.Top || row > m.Bottom)
                continue;
            mask.Slice(m.Left, m.Width).Clear();
            foreach (var (offset, width) in ChipGaps)
                mask.Slice(m.Left + offset, width).Fill(GapBit);
        }
        long first = (long)row * mask.Length, end = first + mask.Length;
        for (int i = LowerBound(DeadPixels, first); i < DeadPixels.Count && DeadPixels[i] < end; i++)
            mask[(int)(DeadPixels[i] - first)] |= DeadBit;
    }

    private static int LowerBound(IReadOnlyList<long> sorted, long value)
    {
        int lo = 0, hi = sorted.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] < value)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    /// <summary>
    /// The gains-and-pedestals file's optional <c>/pixel_mask</c> [modules × 512, 1024] (frame order,
    /// non-zero = bad, as the assembler reads it), as image pixels: frame row r of module m lands on
    /// image row y0 ± r (flipped modules go up), columns from x0.
    /// </summary>
    private static long[] CalibrationMask(string path, DetectorConfig config)
    {
        const string dataset = "/pixel_mask"; // the assembler's JungfrauCalibration.MaskDataset
        const int w = ModuleGeometry.JungfrauWidth, h = ModuleGeometry.JungfrauHeight;
        using var file = Hdf5File.OpenRead(path);
        if (!file.Exists(dataset))
            return [];
        var shape = file.Shape(dataset);
        if (shape is not [var rows, w] || rows != (long)config.NModules * h)
            throw new InvalidDataException($"{path}: {dataset} has shape [{string.Join(", ", shape)}], expected [{config.NModules * h}, {w}] for {config.NModules} modules");
        var mask = new uint[config.NModules * h * w];
        file.ReadUInt32(dataset, mask);
        var pixels = new List<long>();
        for (int m = 0; m < config.NModules; m++)
        {
            var p = config.ModulePositions[m];
            for (int r = 0; r < h; r++)
            {
                long imageRow = p.FlippedVertically ? p.Y0 - r : p.Y0 + r;
                for (int c = 0; c < w; c++)
                    if (mask[((long)m * h + r) * w + c] != 0)
                        pixels.Add(imageRow * config.ImagePixelWidth + p.Left + c);
            }
        }
        pixels.Sort();
        return pixels.ToArray();
    }
}
