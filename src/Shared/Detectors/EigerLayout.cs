using StdDaq.Shared.Config;

namespace StdDaq.Shared.Detectors;

/// <summary>
/// The module_positions of an EIGER of <c>columns</c> x <c>rows</c> modules (9M: 3 x 6, 16M: 4 x 8)
/// in std-daq's layout: each module sends 4 ports of 512 x 256 pixels and covers 1030 x 514 image
/// pixels (2-pixel chip gaps); ports 4i and 4i+1 are its top half, 4i+2 and 4i+3 its bottom half,
/// flipped vertically (y1 &lt; y0); modules are numbered row by row, 8 pixels apart in x and 36 in y.
/// </summary>
public static class EigerLayout
{
    /// <summary>Image pixels a module spans in x: 1030, two ports with their chip gaps and a gap between them.</summary>
    public const int ModuleWidth = 2 * (ModuleGeometry.EigerPortWidth + ModuleGeometry.EigerChipGap) + ModuleGeometry.EigerChipGap;
    /// <summary>Image pixels a module spans in y: 514, two ports and a 2-pixel gap.</summary>
    public const int ModuleHeight = 2 * ModuleGeometry.EigerPortHeight + ModuleGeometry.EigerChipGap;
    /// <summary>Pixels between two modules of a row.</summary>
    public const int ColumnGap = 8;
    /// <summary>Pixels between two rows of modules.</summary>
    public const int RowGap = 36;

    /// <summary>image_pixel_width of a detector <paramref name="columns"/> modules wide.</summary>
    public static int Width(int columns) => columns * ModuleWidth + (columns - 1) * ColumnGap;

    /// <summary>image_pixel_height of a detector <paramref name="rows"/> modules high.</summary>
    public static int Height(int rows) => rows * ModuleHeight + (rows - 1) * RowGap;

    /// <summary>The positions of the 4 x columns x rows ports, by port (module_id).</summary>
    public static ModulePosition[] Ports(int columns, int rows)
    {
        const int half = ModuleGeometry.EigerPortWidth + ModuleGeometry.EigerChipGap; // 514: one port with its chip gap
        var ports = new ModulePosition[4 * columns * rows];
        for (int row = 0; row < rows; row++)
            for (int column = 0; column < columns; column++)
            {
                int i = 4 * (row * columns + column);
                int x = column * (ModuleWidth + ColumnGap), y = row * (ModuleHeight + RowGap);
                int right = x + ModuleWidth - half, bottom = y + ModuleHeight - 1;
                ports[i] = new ModulePosition(x, y, x + half - 1, y + ModuleGeometry.EigerPortHeight - 1);
                ports[i + 1] = new ModulePosition(right, y, right + half - 1, y + ModuleGeometry.EigerPortHeight - 1);
                ports[i + 2] = new ModulePosition(x, bottom, x + half - 1, bottom - ModuleGeometry.EigerPortHeight + 1);
                ports[i + 3] = new ModulePosition(right, bottom, right + half - 1, bottom - ModuleGeometry.EigerPortHeight + 1);
            }
        return ports;
    }
}
