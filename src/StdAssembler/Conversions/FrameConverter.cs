using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;

namespace StdDaq.Assembler.Conversions;

/// <summary>
/// Converts one module frame (as the receiver left it in its FrameBuffer slot, packet order) into
/// its place in the image slot, in one pass, and fills the place of a module that is missing.
/// Implementations are stateless after construction, so workers can share one.
/// </summary>
public abstract unsafe class FrameConverter(ImageLayout layout) : IDisposable
{
    public ImageLayout Layout { get; } = layout;

    /// <summary>Writes module <paramref name="p"/>'s frame into its rectangle of <paramref name="image"/>.</summary>
    public abstract void Convert(byte* frame, byte* image, in ModulePlacement p);

    /// <summary>
    /// Converts with the frame's slot header at hand, for conversions whose lost-packet pixels
    /// differ from what the receiver left there (0); returns the pixels turned into sentinels.
    /// </summary>
    public virtual PixelCounts Convert(byte* frame, in SlotHeader header, byte* image, in ModulePlacement p)
    {
        Convert(frame, image, p);
        return default;
    }

    /// <summary>Sets module <paramref name="p"/>'s pixels to the fill value (0 for integer images).</summary>
    public abstract void Fill(byte* image, in ModulePlacement p);

    /// <summary>
    /// The detector's conversion. JUNGFRAU converted uses <paramref name="calibration"/> if given
    /// (the caller keeps it), else loads the config's gains_and_pedestals file (and owns it).
    /// </summary>
    public static FrameConverter For(DetectorConfig config, ImageLayout layout, JungfrauCalibration? calibration = null) => config.Kind switch
    {
        DetectorKind.JungfrauRaw => new RowCopyConverter(layout, chipGap: 0),
        DetectorKind.Eiger => new RowCopyConverter(layout, chipGap: ModuleGeometry.EigerChipGap),
        DetectorKind.Gigafrost => new GigafrostConverter(layout),
        _ when calibration != null => new JungfrauConverter(layout, calibration),
        _ => new JungfrauConverter(layout, LoadCalibration(config), ownsCalibration: true),
    };

    private static JungfrauCalibration LoadCalibration(DetectorConfig config)
    {
        if (string.IsNullOrEmpty(config.GainsAndPedestals))
            throw new ConfigException("gains_and_pedestals: required for detector_type jungfrau-converted (config key or --gains-and-pedestals <file.h5>)");
        return JungfrauCalibration.Load(config.GainsAndPedestals, config.NModules);
    }

    public virtual void Dispose()
    {
    }

    protected void FillRows(byte* image, in ModulePlacement p, int firstRow, int rowStep, byte value = 0)
    {
        long rowBytes = (long)p.Width * Layout.BytesPerPixel;
        for (int r = firstRow; r < p.Height; r += rowStep)
            new Span<byte>(image + p.ImageRow(r) * Layout.RowBytes + (long)p.X0 * Layout.BytesPerPixel, checked((int)rowBytes)).Fill(value);
    }
}

/// <summary>
/// JUNGFRAU raw (uint16) and EIGER (8/16/32 bit): each frame row is copied to its image row
/// (flipped modules bottom-up); EIGER rows are split in their two chips with a gap between.
/// </summary>
public sealed unsafe class RowCopyConverter : FrameConverter
{
    private readonly int _chipGap;

    public RowCopyConverter(ImageLayout layout, int chipGap) : base(layout)
    {
        _chipGap = chipGap;
    }

    public override void Convert(byte* frame, byte* image, in ModulePlacement p)
    {
        var g = Layout.Module;
        int bpp = Layout.BytesPerPixel;
        long frameRowBytes = (long)g.FrameWidth * bpp;
        long x = (long)p.X0 * bpp;
        if (_chipGap == 0)
        {
            for (int r = 0; r < g.FrameHeight; r++)
                Buffer.MemoryCopy(frame + r * frameRowBytes, image + p.ImageRow(r) * Layout.RowBytes + x, frameRowBytes, frameRowBytes);
            return;
        }
        long half = frameRowBytes / 2;
        long second = x + half + (long)_chipGap * bpp;
        for (int r = 0; r < g.FrameHeight; r++)
        {
            byte* src = frame + r * frameRowBytes;
            byte* row = image + p.ImageRow(r) * Layout.RowBytes;
            Buffer.MemoryCopy(src, row + x, half, half);
            Buffer.MemoryCopy(src + half, row + second, half, half);
        }
    }

    public override void Fill(byte* image, in ModulePlacement p) => FillRows(image, p, 0, 1);
}
