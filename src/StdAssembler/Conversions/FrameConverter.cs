using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;

namespace StdDaq.Assembler.Conversions;

/// <summary>
/// Converts one module frame (as the receiver left it in its FrameBuffer slot, packet order) into
/// its place in the image slot, in one pass, and fills the place of a module that is missing.
/// Implementations are stateless after construction, so workers can share one.
/// </summary>
public abstract unsafe class FrameConverter(ImageLayout layout)
{
    public ImageLayout Layout { get; } = layout;

    /// <summary>Writes module <paramref name="p"/>'s frame into its rectangle of <paramref name="image"/>.</summary>
    public abstract void Convert(byte* frame, byte* image, in ModulePlacement p);

    /// <summary>Sets module <paramref name="p"/>'s pixels to the fill value (0 for integer images).</summary>
    public abstract void Fill(byte* image, in ModulePlacement p);

    public static FrameConverter For(DetectorConfig config, ImageLayout layout) => config.Kind switch
    {
        DetectorKind.JungfrauRaw => new RowCopyConverter(layout, chipGap: 0),
        DetectorKind.Eiger => new RowCopyConverter(layout, chipGap: ModuleGeometry.EigerChipGap),
        DetectorKind.Gigafrost => new GigafrostConverter(layout),
        _ => throw new NotSupportedException($"detector_type '{config.DetectorType}': the gains-and-pedestals conversion is not available in this version"),
    };

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
