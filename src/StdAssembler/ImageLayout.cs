using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Streams;

namespace StdDaq.Assembler;

/// <summary>
/// Where module m's frame goes in the image: its rectangle (module_positions) and whether it is
/// flipped vertically (y1 &lt; y0: frame row 0 lands on image row y0, going up).
/// </summary>
public readonly record struct ModulePlacement(int Module, int X0, int Y0, bool Flipped, int Width, int Height)
{
    /// <summary>The image row of the module's rectangle row <paramref name="r"/> (0 = the y0 row).</summary>
    public int ImageRow(int r) => Flipped ? Y0 - r : Y0 + r;
}

/// <summary>The assembled image of a detector: size, pixel type and each module's placement.</summary>
public sealed class ImageLayout
{
    public int Width { get; }
    public int Height { get; }
    public ImageDtype Dtype { get; }
    public int BytesPerPixel { get; }
    public long ImageBytes => (long)Width * Height * BytesPerPixel;
    public long RowBytes => (long)Width * BytesPerPixel;
    public ModuleGeometry Module { get; }
    public IReadOnlyList<ModulePlacement> Placements { get; }

    public ImageLayout(DetectorConfig config)
    {
        Width = config.ImagePixelWidth;
        Height = config.ImagePixelHeight;
        Module = config.Module;
        Dtype = config.ImageDtype;
        BytesPerPixel = ImageMetadata.BytesPerPixel(Dtype);
        var list = new List<ModulePlacement>(config.NModules);
        for (int m = 0; m < config.NModules; m++)
        {
            var p = config.ModulePositions[m];
            list.Add(new ModulePlacement(m, p.Left, p.Y0, p.FlippedVertically, p.Width, p.Height));
        }
        Placements = list;
    }
}
