using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace StdDaq.Tests.Support;

/// <summary>
/// DIALS (Debian's python3-dials: dials.import, dials.show) as the independent NXmx reader: what
/// it makes of a file, parsed from its own output.
/// </summary>
public static partial class Dials
{
    /// <summary>What dials.import and dials.show say about a file.</summary>
    /// <param name="Sweeps">The import's "sweep:" count; <paramref name="Stills"/> its "still:" count.</param>
    /// <param name="Images">dials.show's "number of images".</param>
    /// <param name="BeamCentrePx">The beam centre in image pixels (x, y), to 2 decimals.</param>
    /// <param name="Panels">Each panel: pixel size (mm), image size, origin (mm), slow axis, distance (mm).</param>
    /// <param name="Experiments">The experiment list dials.import wrote.</param>
    public sealed record Import(int Sweeps, int Stills, int Images, (double X, double Y) BeamCentrePx, double Wavelength,
        (double Start, double Step) Oscillation, IReadOnlyList<Panel> Panels, string Show, string Experiments);

    public sealed record Panel(double[] PixelSize, int[] ImageSize, double[] Origin, double[] SlowAxis, double Distance, string Material, double Thickness,
        double[] TrustedRange);

    /// <summary>Imports <paramref name="file"/> with dials.import (in a folder of its own under the test's) and shows it.</summary>
    public static Import Run(TestEnv env, string file)
    {
        const string import = "/usr/bin/dials.import", show = "/usr/bin/dials.show";
        if (!File.Exists(import) || !File.Exists(show))
            Assert.Fail($"{import} or {show} not found: these NXmx tests need DIALS; install it with: apt-get install python3-dials (or run scripts/setup.sh as root)");
        string dir = Path.Combine(env.Dir, $"dials-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        string expt = Path.Combine(dir, "imported.expt");
        var r = Programs.RunProcess(import, [file, $"output.experiments={expt}", $"output.log={Path.Combine(dir, "dials.import.log")}"],
            TimeSpan.FromMinutes(3));
        // dials.import exits 0 also when it refuses a file: only the experiment list says it took it.
        Assert.True(r.ExitCode == 0 && File.Exists(expt), $"dials.import {file} made no experiments (exit {r.ExitCode}): {r.Stdout}\n{r.Stderr}");
        var s = Programs.RunProcess(show, [expt], TimeSpan.FromMinutes(3));
        Assert.True(s.ExitCode == 0, $"dials.show exited {s.ExitCode}: {s.Stderr}");
        string o = s.Stdout;
        var panels = PanelRegex().Matches(o).Select(m => new Panel(
            Numbers(m.Groups["px"].Value), Numbers(m.Groups["size"].Value).Select(x => (int)x).ToArray(), Numbers(m.Groups["origin"].Value),
            Numbers(m.Groups["slow"].Value), D(m.Groups["distance"].Value), m.Groups["material"].Value, D(m.Groups["thickness"].Value),
            Numbers(m.Groups["trusted"].Value))).ToList();
        // Several panels: "px, raw image: (x,y)"; one panel: "px: (x,y)".
        var centre = Numbers(Match(o, o.Contains("px, raw image:") ? @"px, raw image: \(([^)]*)\)" : @"px: \(([^)]*)\)"));
        var osc = Numbers(Match(o, @"oscillation:\s*\{([^}]*)\}"));
        return new Import(
            Sweeps: int.Parse(Match(r.Stdout, @"sweep:\s*(\d+)")), Stills: int.Parse(Match(r.Stdout, @"still:\s*(\d+)")),
            Images: int.Parse(Match(o, @"number of images:\s*(\d+)")), BeamCentrePx: (centre[0], centre[1]),
            Wavelength: D(Match(o, @"wavelength:\s*([-0-9.e]+)")), Oscillation: (osc[0], osc[1]), Panels: panels, Show: o, Experiments: expt);
    }

    /// <summary>
    /// Image <paramref name="index"/> as dxtbx reads it through the experiment list (what DIALS
    /// integrates), against h5py's reading of the file's hyperslab of each panel: per panel
    /// [dxtbx sum, h5py sum, pixels, pixels dxtbx's static mask (the file's pixel_mask) excludes].
    /// Values are summed as dxtbx converts them (integers to int32).
    /// </summary>
    public static double[][] PanelSums(TestEnv env, Import import, string file, int index) =>
        JsonSerializer.Deserialize<double[][]>(Python.Run(env, """
            import sys, json, os
            os.environ.setdefault("HDF5_PLUGIN_PATH", "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins")
            import h5py, numpy as np
            from dxtbx.model.experiment_list import ExperimentListFactory
            expt, path, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
            imageset = ExperimentListFactory.from_json_file(expt)[0].imageset
            raw = imageset.get_raw_data(index)
            static = imageset.get_format_class().get_instance(path).get_static_mask()
            out = []
            with h5py.File(path, "r") as f:
                det = f["/entry/instrument/detector"]
                modules = sorted(k for k in det if k.startswith("module_"))
                for k, name in enumerate(modules):
                    (y, x), (h, w) = det[name]["data_origin"][()], det[name]["data_size"][()]
                    slab = f["/entry/data/data"][index, y:y + h, x:x + w]
                    if slab.dtype.kind in "iu": slab = slab.astype(np.int64).astype(np.int32)
                    masked = 0 if static is None else int((~static[k].as_numpy_array()).sum())
                    out.append([float(np.nansum(raw[k].as_numpy_array())), float(np.nansum(slab.astype(np.float64))), float(slab.size), float(masked)])
            print(json.dumps(out))
            """, import.Experiments, file, index.ToString()))!;

    private static string Match(string text, string pattern)
    {
        var m = Regex.Match(text, pattern);
        Assert.True(m.Success, $"'{pattern}' not in the DIALS output:\n{text}");
        return m.Groups[1].Value;
    }

    private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    private static double[] Numbers(string list) => list.Split(',').Select(x => D(x.Trim())).ToArray();

    [GeneratedRegex(@"Panel:.*?pixel_size:\{(?<px>[^}]*)\}.*?image_size: \{(?<size>[^}]*)\}.*?trusted_range: \{(?<trusted>[^}]*)\}.*?thickness: (?<thickness>[-0-9.e]+).*?material: (?<material>\S+).*?slow_axis: \{(?<slow>[^}]*)\}.*?origin: \{(?<origin>[^}]*)\}.*?distance: (?<distance>[-0-9.e]+)",
        RegexOptions.Singleline)]
    private static partial Regex PanelRegex();
}
