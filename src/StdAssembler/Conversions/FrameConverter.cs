using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Memory;

namespace StdDaq.Assembler.Conversions;

/// <summary>
/// Converts one module frame (as the receiver left it in its FrameBuffer slot, packet order) into
/// its place in the image slot, in one pass, and fills the place of a module that is missing.
/// Implementations are stateless after construction, so workers can share one.
/// </summary>
public abstract class FrameConverter(ImageLayout layout) : IDisposable
{
    public ImageLayout Layout { get; } = layout;

    /// <summary>
    /// Writes module <paramref name="p"/>'s frame (at least <see cref="ModuleGeometry.FrameBytes"/>)
    /// into its rectangle of <paramref name="image"/> (at least <see cref="ImageLayout.ImageBytes"/>).
    /// </summary>
    /// <exception cref="ArgumentException">A span is too short.</exception>
    public abstract void Convert(ReadOnlySpan<byte> frame, Span<byte> image, in ModulePlacement p);

    /// <summary>
    /// Converts with the frame's slot header at hand, for conversions whose lost-packet pixels
    /// differ from what the receiver left there (0); returns the pixels turned into sentinels.
    /// </summary>
    public virtual PixelCounts Convert(ReadOnlySpan<byte> frame, in SlotHeader header, Span<byte> image, in ModulePlacement p)
    {
        Convert(frame, image, p);
        return default;
    }

    /// <summary>Sets module <paramref name="p"/>'s pixels to the fill value (0 for integer images).</summary>
    public abstract void Fill(Span<byte> image, in ModulePlacement p);

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

    /// <summary>The byte offset in the image of the first pixel of row <paramref name="r"/> of <paramref name="p"/>'s rectangle.</summary>
    protected int RowStart(in ModulePlacement p, int r) =>
        checked((int)(p.ImageRow(r) * Layout.RowBytes + (long)p.X0 * Layout.BytesPerPixel));

    protected void FillRows(Span<byte> image, in ModulePlacement p, int firstRow, int rowStep, byte value = 0)
    {
        int rowBytes = p.Width * Layout.BytesPerPixel;
        for (int r = firstRow; r < p.Height; r += rowStep)
            image.Slice(RowStart(p, r), rowBytes).Fill(value);
    }
}

/// <summary>
/// JUNGFRAU raw (uint16) and EIGER (8/16/32 bit): each frame row is copied to its image row
/// (flipped modules bottom-up); EIGER rows are split in their two chips with a gap between.
/// </summary>
public sealed class RowCopyConverter : FrameConverter
{
    private readonly int _chipGap;

    public RowCopyConverter(ImageLayout layout, int chipGap) : base(layout)
    {
        _chipGap = chipGap;
    }

    public override void Convert(ReadOnlySpan<byte> frame, Span<byte> image, in ModulePlacement p)
    {
        var g = Layout.Module;
        int bpp = Layout.BytesPerPixel;
        int frameRowBytes = g.FrameWidth * bpp;
        if (_chipGap == 0)
        {
            for (int r = 0; r < g.FrameHeight; r++)
                frame.Slice(r * frameRowBytes, frameRowBytes).CopyTo(image.Slice(RowStart(p, r), frameRowBytes));
            return;
        }
        int half = frameRowBytes / 2;
        int second = half + _chipGap * bpp;
        for (int r = 0; r < g.FrameHeight; r++)
        {
            var src = frame.Slice(r * frameRowBytes, frameRowBytes);
            var row = image.Slice(RowStart(p, r), second + half);
            src[..half].CopyTo(row);
            src[half..].CopyTo(row[second..]);
        }
    }

    public override void Fill(Span<byte> image, in ModulePlacement p) => FillRows(image, p, 0, 1);
}
