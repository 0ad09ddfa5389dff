using System.Globalization;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;

namespace StdDaq.Writer;

/// <summary>
/// The NeXus NXmx application definition around a file's <c>/entry/data</c>: what DIALS (dxtbx),
/// XDS (durin), silx and fabio need to read the images as a detector in a beam. Written once at the
/// file's creation, except omega, which grows with the images (<see cref="Grow"/>, at each flush),
/// and end_time (<see cref="WriteEndTime"/>: empty until the file is closed, then written in place). Under <c>/entry</c>:
/// <code>
/// definition = "NXmx", start_time, end_time_estimated, end_time (ISO 8601, UTC)
/// instrument (NXinstrument): name @short_name
///   beam (NXbeam): incident_wavelength [angstrom]
///   detector (NXdetector): description, x/y_pixel_size [m], distance, detector_distance [m],
///     beam_center_x/y [pixel], count_time, frame_time [s], bit_depth_readout, bit_depth_image,
///     saturation_value, underload_value, sensor_material, sensor_thickness [m], pixel_mask
///     (uint32 [H, W]), pixel_mask_applied, data → /entry/data/data (soft link),
///     depends_on → transformations/translation (distance along the beam, [0, 0, 1], depends_on "."),
///     module_&lt;i&gt; (NXdetector_module; one per module, or one for the whole image, see
///       <see cref="NxmxDetector.From"/>): data_origin, data_size ([slow, fast]), module_offset,
///       fast_pixel_direction, slow_pixel_direction
/// sample (NXsample): name, depends_on → transformations/omega
///   transformations: omega [n], omega_end [n] [deg], omega_increment_set [deg]
/// source (NXsource): name @short_name, type
/// </code>
/// Coordinates are NeXus's (McStas): z along the beam, y up, x to the left looking downstream.
/// Image rows go down (slow axis [0, -1, 0]) and columns to the right seen from the sample (fast
/// axis [-1, 0, 0]); each module's corner (its first pixel's outer corner) is placed relative to
/// the beam centre, so all modules lie in one plane at the distance, as in the image. A flipped
/// module (y1 &lt; y0) needs nothing of its own: the assembler has turned it the right way up in the
/// image, so its rows in the image run down like every other module's. Every <c>@depends_on</c> is
/// an absolute path (dxtbx resolves relative ones from the parent group and knows no "..") and
/// every chain ends at ".". Units are spelled as pint parses them (dxtbx refuses "Angstrom").
/// </summary>
internal sealed class NxmxLayout : IDisposable
{
    private const string Detector = "/entry/instrument/detector";
    private const string Translation = Detector + "/transformations/translation";
    private const string Omega = "/entry/sample/transformations/omega";
    private const int MaskChunkRows = 256;

    private readonly string _path;
    private readonly double _omegaStart, _omegaIncrement;
    private readonly H5DatasetHandle _omega, _omegaEnd, _endTime;
    private double[] _values = [];

    private NxmxLayout(string path, H5DatasetHandle endTime, double omegaStart, double omegaIncrement, H5DatasetHandle omega, H5DatasetHandle omegaEnd)
    {
        _path = path;
        _endTime = endTime;
        _omegaStart = omegaStart;
        _omegaIncrement = omegaIncrement;
        _omega = omega;
        _omegaEnd = omegaEnd;
    }

    /// <summary>ISO 8601 in UTC with microseconds, as NeXus's NX_DATE_TIME: 2025-01-31T12:00:00.123456Z.</summary>
    public static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>The root attribute <c>creator</c>: this program and its version.</summary>
    private static readonly string Creator = $"{CreatorName} {typeof(NxmxLayout).Assembly.GetName().Version}";

    /// <summary>What <c>creator</c> starts with in every file this writer makes.</summary>
    public const string CreatorName = "StdDaq StdH5Writer";

    /// <summary>
    /// Writes the description into the file: the root's NeXus attributes, the attributes of the
    /// image dataset <paramref name="data"/>, and everything else of NXmx under <paramref name="entry"/>
    /// (kept open by the caller until after <see cref="Dispose"/>); omega can grow to the images
    /// requested, as <c>data</c> can. <paramref name="start"/> is the file's time.
    /// </summary>
    public static NxmxLayout Write(H5FileHandle file, H5GroupHandle entry, H5DatasetHandle data, NexusFileOptions o, string path, DateTimeOffset start)
    {
        var d = o.Detector ?? NxmxDetector.WholeImage(o.Height, o.Width, 8 * ImageMetadata.BytesPerPixel((ImageDtype)o.Dtype));
        var run = o.Run;
        var nexus = d.Nexus;
        // silx finds the default plot through /@default → /entry@default → /entry/data@signal.
        Hdf5Writing.WriteAttribute(file.Id, "default", "entry", path);
        Hdf5Writing.WriteAttribute(file.Id, "file_name", path, path);
        Hdf5Writing.WriteAttribute(file.Id, "file_time", Iso(start), path);
        Hdf5Writing.WriteAttribute(file.Id, "creator", Creator, path);
        Hdf5Writing.WriteAttribute(data.Id, "interpretation", "image", path); // silx: a stack of images, not a volume
        Hdf5Writing.WriteAttribute(data.Id, "units", d.DataUnits, path);
        long e = entry.Id;
        Hdf5Writing.WriteDataset(e, "definition", "NXmx", path).Dispose();
        Hdf5Writing.WriteDataset(e, "start_time", Iso(start), path).Dispose();
        // Without a frame time nothing better is known than the start.
        var estimated = run.FrameTime is { } ft ? start.AddSeconds(ft * o.NImages) : start;
        Hdf5Writing.WriteDataset(e, "end_time_estimated", Iso(estimated), path).Dispose();

        using (var instrument = Group(e, "instrument", "NXinstrument", path))
        {
            using (var name = Hdf5Writing.WriteDataset(instrument.Id, "name", nexus.InstrumentName, path))
                Hdf5Writing.WriteAttribute(name.Id, "short_name", nexus.InstrumentShortName ?? nexus.InstrumentName, path);
            using (var beam = Group(instrument.Id, "beam", "NXbeam", path))
                Hdf5Writing.WriteDataset(beam.Id, "incident_wavelength", run.WavelengthAngstrom ?? nexus.DefaultWavelengthAngstrom, "angstrom", path).Dispose();
            using var detector = Group(instrument.Id, "detector", "NXdetector", path);
            WriteDetector(detector.Id, d, o, path);
        }

        using (var source = Group(e, "source", "NXsource", path))
        {
            using (var name = Hdf5Writing.WriteDataset(source.Id, "name", nexus.SourceName, path))
                Hdf5Writing.WriteAttribute(name.Id, "short_name", nexus.SourceShortName ?? nexus.SourceName, path);
            if (nexus.SourceType is { } type)
                Hdf5Writing.WriteDataset(source.Id, "type", type, path).Dispose();
        }

        double omegaStart = run.OmegaStart ?? 0, increment = run.OmegaIncrement ?? 0;
        using var sample = Group(e, "sample", "NXsample", path);
        Hdf5Writing.WriteDataset(sample.Id, "name", run.SampleName ?? "", path).Dispose();
        Hdf5Writing.WriteDataset(sample.Id, "depends_on", Omega, path).Dispose();
        using var transformations = Group(sample.Id, "transformations", "NXtransformations", path);
        var omega = Growable(transformations.Id, "omega", o.NImages, path);
        H5DatasetHandle? omegaEnd = null, endTime = null;
        try
        {
            Hdf5Writing.WriteAttribute(omega.Id, "units", "deg", path);
            Hdf5Writing.WriteAttribute(omega.Id, "transformation_type", "rotation", path);
            Hdf5Writing.WriteAttribute(omega.Id, "vector", Unit(nexus.RotationAxis), path);
            Hdf5Writing.WriteAttribute(omega.Id, "offset", [0.0, 0, 0], path);
            Hdf5Writing.WriteAttribute(omega.Id, "depends_on", ".", path);
            omegaEnd = Growable(transformations.Id, "omega_end", o.NImages, path);
            Hdf5Writing.WriteAttribute(omegaEnd.Id, "units", "deg", path);
            Hdf5Writing.WriteDataset(transformations.Id, "omega_increment_set", increment, "deg", path).Dispose();
            // Empty until the file is closed, then overwritten in place (SWMR writing creates nothing).
            endTime = Hdf5Writing.WriteDataset(e, "end_time", "", Iso(start).Length, path);
            return new NxmxLayout(path, endTime, omegaStart, increment, omega, omegaEnd);
        }
        catch
        {
            omega.Dispose();
            omegaEnd?.Dispose();
            endTime?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sets omega and omega_end to <paramref name="end"/> images (as <c>data</c>: dxtbx counts the
    /// images by omega's length) and writes the angles of images [start, end): image i spans
    /// omega_start + i × increment to the next one's start.
    /// </summary>
    public void Grow(long start, long end)
    {
        int count = checked((int)(end - start));
        if (_values.Length < count)
            _values = new double[Math.Max(count, 2 * _values.Length)];
        var values = _values.AsSpan(0, count);
        for (int i = 0; i < count; i++)
            values[i] = _omegaStart + (start + i) * _omegaIncrement;
        Hdf5Writing.Append<double>(_omega, Hdf5.NATIVE_DOUBLE, start, values, $"{_path}: omega");
        for (int i = 0; i < count; i++)
            values[i] = _omegaStart + (start + i + 1) * _omegaIncrement;
        Hdf5Writing.Append<double>(_omegaEnd, Hdf5.NATIVE_DOUBLE, start, values, $"{_path}: omega_end");
    }

    /// <summary>Writes <c>/entry/end_time</c> (once, at close), in place: empty until then.</summary>
    public void WriteEndTime(DateTimeOffset end) => Hdf5Writing.Overwrite(_endTime, Iso(end), $"{_path}: end_time");

    public void Dispose()
    {
        _omega.Dispose();
        _omegaEnd.Dispose();
        _endTime.Dispose();
    }

    private static void WriteDetector(long det, NxmxDetector d, NexusFileOptions o, string path)
    {
        var run = o.Run;
        double distance = (run.DetectorDistanceMm ?? d.Nexus.DefaultDistanceMm) * 1e-3;
        double beamX = run.BeamCenterX ?? o.Width / 2.0, beamY = run.BeamCenterY ?? o.Height / 2.0;
        double px = d.PixelSizeM;
        Hdf5Writing.WriteDataset(det, "description", d.Description, path).Dispose();
        Hdf5Writing.WriteDataset(det, "x_pixel_size", px, "m", path).Dispose();
        Hdf5Writing.WriteDataset(det, "y_pixel_size", px, "m", path).Dispose();
        Hdf5Writing.WriteDataset(det, "distance", distance, "m", path).Dispose();
        Hdf5Writing.WriteDataset(det, "detector_distance", distance, "m", path).Dispose();
        Hdf5Writing.WriteDataset(det, "beam_center_x", beamX, "pixel", path).Dispose();
        Hdf5Writing.WriteDataset(det, "beam_center_y", beamY, "pixel", path).Dispose();
        if (run.CountTime is { } count)
            Hdf5Writing.WriteDataset(det, "count_time", count, "s", path).Dispose();
        if (run.FrameTime is { } frame)
            Hdf5Writing.WriteDataset(det, "frame_time", frame, "s", path).Dispose();
        Hdf5Writing.WriteDataset(det, "bit_depth_readout", (long)d.BitDepthReadout, null, path).Dispose();
        Hdf5Writing.WriteDataset(det, "bit_depth_image", 8L * ImageMetadata.BytesPerPixel((ImageDtype)o.Dtype), null, path).Dispose();
        bool integers = (ImageDtype)o.Dtype is not (ImageDtype.Float32 or ImageDtype.Float64);
        if (d.SaturationValue is { } sat)
            Number(det, "saturation_value", sat, integers, path);
        if (d.UnderloadValue is { } under)
            Number(det, "underload_value", under, integers, path);
        Hdf5Writing.WriteDataset(det, "sensor_material", d.SensorMaterial, path).Dispose();
        if (d.SensorThicknessM is { } thickness)
            Hdf5Writing.WriteDataset(det, "sensor_thickness", thickness, "m", path).Dispose();
        Hdf5Writing.WriteBoolean(det, "pixel_mask_applied", false, path).Dispose();
        WriteMask(det, d, o.Height, o.Width, path);
        // durin (XDS) looks for the images in NXdetector first; DIALS accepts the link too.
        Hdf5Writing.CreateSoftLink(det, "data", "/entry/data/data", path);
        Hdf5Writing.WriteDataset(det, "depends_on", Translation, path).Dispose();

        using (var transformations = Group(det, "transformations", "NXtransformations", path))
        using (var translation = Hdf5Writing.WriteDataset(transformations.Id, "translation", distance, "m", path))
            Axis(translation.Id, "translation", [0, 0, 1], ".", path);

        for (int i = 0; i < d.Modules.Count; i++)
        {
            var m = d.Modules[i];
            string name = $"module_{i}", at = $"{Detector}/{name}";
            using var module = Group(det, name, "NXdetector_module", path);
            Hdf5Writing.WriteDataset(module.Id, "data_origin", [m.Top, m.Left], path).Dispose();
            Hdf5Writing.WriteDataset(module.Id, "data_size", [m.Height, m.Width], path).Dispose();
            // The outer corner of the module's first pixel (row Top, column Left), from the beam:
            // fast (columns) runs along -x, slow (rows) along -y.
            double[] corner = [(beamX - m.Left) * px, (beamY - m.Top) * px, 0];
            using (var offset = Hdf5Writing.WriteDataset(module.Id, "module_offset", 0.0, "m", path))
            {
                Axis(offset.Id, "translation", [1, 0, 0], Translation, path);
                Hdf5Writing.WriteAttribute(offset.Id, "offset", corner, path);
                Hdf5Writing.WriteAttribute(offset.Id, "offset_units", "m", path);
            }
            using (var fast = Hdf5Writing.WriteDataset(module.Id, "fast_pixel_direction", px, "m", path))
                Axis(fast.Id, "translation", [-1, 0, 0], $"{at}/module_offset", path);
            using (var slow = Hdf5Writing.WriteDataset(module.Id, "slow_pixel_direction", px, "m", path))
                Axis(slow.Id, "translation", [0, -1, 0], $"{at}/module_offset", path);
        }
    }

    /// <summary>pixel_mask uint32 [H, W], deflated in chunks of rows: mostly zeros, it shrinks to little.</summary>
    private static void WriteMask(long det, NxmxDetector d, int height, int width, string path)
    {
        int rows = Math.Min(height, MaskChunkRows);
        using var dcpl = new H5PropertyHandle(Hdf5.Check(Hdf5.H5Pcreate(Hdf5.P.DATASET_CREATE), $"{path}: H5Pcreate(H5P_DATASET_CREATE)"));
        ReadOnlySpan<ulong> chunk = [(ulong)rows, (ulong)width], dims = [(ulong)height, (ulong)width];
        Hdf5.Check(Hdf5.H5Pset_chunk(dcpl.Id, 2, chunk), $"{path}: H5Pset_chunk(pixel_mask)");
        Hdf5.Check(Hdf5.H5Pset_deflate(dcpl.Id, 1), $"{path}: H5Pset_deflate(pixel_mask)");
        using var mask = Hdf5Writing.CreateDataset(det, "pixel_mask", Hdf5.NATIVE_UINT32, dims, dims, dcpl, path);
        var block = new uint[rows * width];
        for (int top = 0; top < height; top += rows)
        {
            int n = Math.Min(rows, height - top);
            for (int r = 0; r < n; r++)
                d.MaskRow(top + r, block.AsSpan(r * width, width));
            ReadOnlySpan<ulong> start = [(ulong)top, 0], count = [(ulong)n, (ulong)width];
            Hdf5Writing.WriteBlock<uint>(mask, Hdf5.NATIVE_UINT32, start, count, block.AsSpan(0, n * width), $"{path}: H5Dwrite(pixel_mask rows {top}..{top + n - 1})");
        }
    }

    /// <summary>A number that is an integer in an integer image's file (int64), else float64.</summary>
    private static void Number(long loc, string name, double value, bool integer, string path)
    {
        if (integer && value == Math.Floor(value) && Math.Abs(value) < 9e15)
            Hdf5Writing.WriteDataset(loc, name, (long)value, null, path).Dispose();
        else
            Hdf5Writing.WriteDataset(loc, name, value, null, path).Dispose();
    }

    /// <summary>The NXtransformations attributes of an axis (its units were written with it).</summary>
    private static void Axis(long ds, string type, double[] vector, string dependsOn, string path)
    {
        Hdf5Writing.WriteAttribute(ds, "transformation_type", type, path);
        Hdf5Writing.WriteAttribute(ds, "vector", vector, path);
        Hdf5Writing.WriteAttribute(ds, "depends_on", dependsOn, path);
    }

    private static H5GroupHandle Group(long loc, string name, string nxClass, string path)
    {
        var g = Hdf5Writing.CreateGroup(loc, name, path);
        try
        {
            Hdf5Writing.WriteAttribute(g.Id, "NX_class", nxClass, path);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    /// <summary>An empty float64 [0] dataset growable to <paramref name="max"/> entries, chunked like image_id.</summary>
    private static H5DatasetHandle Growable(long loc, string name, long max, string path) =>
        Hdf5Writing.CreateGrowable(loc, name, Hdf5.NATIVE_DOUBLE, max, 4096, [], path);

    private static double[] Unit(IReadOnlyList<double> v)
    {
        double norm = Math.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / norm).ToArray();
    }
}
