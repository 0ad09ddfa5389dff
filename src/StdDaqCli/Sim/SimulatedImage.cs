using StdDaq.Shared.Config;
using StdDaq.Assembler;
using StdDaq.Shared.Detectors;

namespace StdDaq.Cli.Sim;

/// <summary>
/// The image the assembler must make from the simulator's frames (raw detector types), placed
/// pixel by pixel from the pattern and module_positions: the oracle of the tests and of the
/// demo's check of the written file, independent of the placement code it checks.
/// </summary>
public static class SimulatedImage
{
    /// <summary>
    /// The expected image, built pixel by pixel from the simulator pattern (an oracle independent
    /// of the converters): modules in <paramref name="present"/> hold the pattern, others 0.
    /// </summary>
    public static byte[] Expected(DetectorConfig config, ulong imageId, Func<int, bool> present)
    {
        var layout = new ImageLayout(config);
        var g = config.Module;
        var image = new byte[layout.ImageBytes];
        int bpp = layout.BytesPerPixel;
        for (int m = 0; m < config.NModules; m++)
        {
            if (!present(m))
                continue;
            var pos = config.ModulePositions[m];
            for (long i = 0; i < PixelPattern.PixelsPerFrame(g); i++)
            {
                int r = (int)(i / g.FrameWidth), c = (int)(i % g.FrameWidth);
                int x, y;
                if (g.Kind == DetectorKind.Gigafrost)
                {
                    int qr = 2 * r + m % 2;
                    x = pos.Left + c;
                    y = pos.FlippedVertically ? pos.Y0 - qr : pos.Y0 + qr;
                }
                else
                {
                    x = pos.Left + c + (g.Kind == DetectorKind.Eiger && c >= g.FrameWidth / 2 ? ModuleGeometry.EigerChipGap : 0);
                    y = pos.FlippedVertically ? pos.Y0 - r : pos.Y0 + r;
                }
                ulong v = PixelPattern.Value(g, imageId, m, i);
                long at = ((long)y * layout.Width + x) * bpp;
                for (int b = 0; b < bpp; b++)
                    image[at + b] = (byte)(v >> (8 * b));
            }
        }
        return image;
    }

}
