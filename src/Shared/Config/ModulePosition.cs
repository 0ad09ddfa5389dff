namespace StdDaq.Shared.Config;

/// <summary>
/// A module's inclusive corners in the image, as std-daq writes them: [x0, y0, x1, y1].
/// y1 &lt; y0 means the module is flipped vertically (its first row is at y0, going up).
/// </summary>
public readonly record struct ModulePosition(int X0, int Y0, int X1, int Y1)
{
    public int Left => Math.Min(X0, X1);
    public int Right => Math.Max(X0, X1);
    public int Top => Math.Min(Y0, Y1);
    public int Bottom => Math.Max(Y0, Y1);
    public int Width => Right - Left + 1;
    public int Height => Bottom - Top + 1;
    public bool FlippedVertically => Y1 < Y0;

    public bool Overlaps(ModulePosition o) =>
        Left <= o.Right && o.Left <= Right && Top <= o.Bottom && o.Top <= Bottom;

    public override string ToString() => $"[{X0}, {Y0}, {X1}, {Y1}]";
}
