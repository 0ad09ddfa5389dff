namespace StdDaq.Shared.Config;

/// <summary>
/// A module's inclusive corners in the image, as std-daq writes them: [x0, y0, x1, y1].
/// y1 &lt; y0 means the module is flipped vertically (its first row is at y0, going up).
/// </summary>
public readonly record struct ModulePosition(int X0, int Y0, int X1, int Y1)
{
    /// <summary>min(x0, x1): the first column.</summary>
    public int Left => Math.Min(X0, X1);
    /// <summary>max(x0, x1): the last column, inclusive.</summary>
    public int Right => Math.Max(X0, X1);
    /// <summary>min(y0, y1): the top row, also of a flipped module.</summary>
    public int Top => Math.Min(Y0, Y1);
    /// <summary>max(y0, y1): the last row, inclusive.</summary>
    public int Bottom => Math.Max(Y0, Y1);
    /// <summary>Columns covered, corners included.</summary>
    public int Width => Right - Left + 1;
    /// <summary>Rows covered, corners included.</summary>
    public int Height => Bottom - Top + 1;
    /// <summary>y1 &lt; y0: the module's first row goes to y0, the bottom one, and its rows go up.</summary>
    public bool FlippedVertically => Y1 < Y0;

    /// <summary>Whether the two rectangles share at least one pixel.</summary>
    public bool Overlaps(ModulePosition o) =>
        Left <= o.Right && o.Left <= Right && Top <= o.Bottom && o.Top <= Bottom;

    /// <summary>"[x0, y0, x1, y1]", as the config writes it.</summary>
    public override string ToString() => $"[{X0}, {Y0}, {X1}, {Y1}]";
}
