using System.Text.Json;
using StdDaq.Agent.Broker;
using StdDaq.Shared.Config;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;
using StdDaq.Writer;
using StdDaq.WriterChild;

namespace StdDaq.Tests.Writer;

/// <summary>
/// The files' NeXus NXmx description, read by independent readers: h5py (every field), silx (the
/// default plot), and the DIALS tests in <see cref="NxmxDialsTests"/>.
/// </summary>
[Collection("broker")]
public sealed class NxmxTests(BrokerFixture broker)
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Two JUNGFRAU modules with a 36-row gap between them; module 1 is flipped (y1 &lt; y0), so
    /// image rows 548..1059 hold its rows 511..0.
    /// </summary>
    public static DetectorConfig TwoModulesWithGap(DetectorConfig c, string type = "jungfrau-raw") => c with
    {
        DetectorType = type,
        ImagePixelHeight = 1060,
        ModulePositions = [new ModulePosition(0, 0, 1023, 511), new ModulePosition(0, 1059, 1023, 548)],
        Nexus = new NexusConfig
        {
            InstrumentName = "PSI X06SA", InstrumentShortName = "X06SA", SourceName = "Swiss Light Source", SourceShortName = "SLS",
            SourceType = "Synchrotron X-ray Source",
        },
    };

    /// <summary>A request's metadata with the whole geometry (and one key that is no NXmx key).</summary>
    public const string Geometry = "\"metadata\": {\"wavelength\": 1.0, \"detector_distance\": 120.0, \"beam_center_x\": 520.3, "
        + "\"beam_center_y\": 250.7, \"omega_start\": 10, \"omega_increment\": 0.1, \"sample_name\": \"lysozyme\", "
        + "\"count_time\": 0.0095, \"frame_time\": 0.01, \"notes\": \"kept as an attribute\"}";

    [Fact]
    public async Task Write_JungfrauRawWithRequestGeometry_H5pyReadsEveryNxmxFieldWithItsUnits()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, tweak: c => TwoModulesWithGap(c));
        string file = Path.Combine(env.Dir, "nxmx.h5");
        const int n = 10;
        var started = DateTimeOffset.UtcNow.AddSeconds(-1);

        var final = await p.WriteAsync(WriterPipeline.Body(file, n, Geometry), Long);

        Assert.True(final.Action == BrokerProtocol.ActionSuccess, $"{final.Action}: {final.Message}");
        var t = H5py.Tree(env, file);
        const string det = "/entry/instrument/detector";
        // Root: NeXus's attributes next to ours; the NXmx keys are not attributes, the others are.
        var root = t.GetProperty("/").GetProperty("attrs");
        Assert.Equal("entry", root.GetProperty("default").GetString());
        Assert.Equal(file, root.GetProperty("file_name").GetString());
        Assert.StartsWith("StdDaq StdH5Writer", root.GetProperty("creator").GetString());
        var fileTime = DateTimeOffset.Parse(root.GetProperty("file_time").GetString()!);
        Assert.InRange(fileTime, started, DateTimeOffset.UtcNow);
        Assert.Equal("kept as an attribute", root.GetProperty("notes").GetString());
        Assert.False(root.TryGetProperty("wavelength", out _), "an NXmx key is no root attribute");
        Assert.Equal(n, root.GetProperty("n_images_written").GetInt64());
        Assert.Equal(0, root.GetProperty("interrupted").GetInt64());

        Assert.Equal("NXmx", Value(t, "/entry/definition").GetString());
        var start = DateTimeOffset.Parse(Value(t, "/entry/start_time").GetString()!);
        Assert.EndsWith("Z", Value(t, "/entry/start_time").GetString());
        Assert.Equal(start.AddSeconds(0.01 * n), DateTimeOffset.Parse(Value(t, "/entry/end_time_estimated").GetString()!));
        Assert.InRange(DateTimeOffset.Parse(Value(t, "/entry/end_time").GetString()!), start, DateTimeOffset.UtcNow);
        Assert.Equal("image", AttrString(t, "/entry/data/data", "interpretation"));
        Assert.Equal("counts", AttrString(t, "/entry/data/data", "units"));
        Assert.Equal([n, 1060, 1024], H5py.Longs(t.GetProperty("/entry/data/data").GetProperty("shape")));
        Assert.Equal(n, t.GetProperty("/entry/data/image_id").GetProperty("value").GetArrayLength());

        foreach (var (path, nxClass) in new[] { ("/entry", "NXentry"), ("/entry/data", "NXdata"), ("/entry/instrument", "NXinstrument"),
            ("/entry/instrument/beam", "NXbeam"), (det, "NXdetector"), ($"{det}/transformations", "NXtransformations"),
            ($"{det}/module_0", "NXdetector_module"), ($"{det}/module_1", "NXdetector_module"), ("/entry/sample", "NXsample"),
            ("/entry/sample/transformations", "NXtransformations"), ("/entry/source", "NXsource") })
            Assert.True(nxClass == AttrString(t, path, "NX_class"), $"{path}: NX_class {AttrString(t, path, "NX_class")}, not {nxClass}");

        Assert.Equal("PSI X06SA", Value(t, "/entry/instrument/name").GetString());
        Assert.Equal("X06SA", AttrString(t, "/entry/instrument/name", "short_name"));
        Assert.Equal("Swiss Light Source", Value(t, "/entry/source/name").GetString());
        Assert.Equal("SLS", AttrString(t, "/entry/source/name", "short_name"));
        Assert.Equal("Synchrotron X-ray Source", Value(t, "/entry/source/type").GetString());
        Quantity(t, "/entry/instrument/beam/incident_wavelength", 1.0, "angstrom");

        Assert.Contains("JUNGFRAU", Value(t, $"{det}/description").GetString());
        Quantity(t, $"{det}/x_pixel_size", 75e-6, "m");
        Quantity(t, $"{det}/y_pixel_size", 75e-6, "m");
        Quantity(t, $"{det}/distance", 0.120, "m");
        Quantity(t, $"{det}/detector_distance", 0.120, "m");
        Quantity(t, $"{det}/beam_center_x", 520.3, "pixel");
        Quantity(t, $"{det}/beam_center_y", 250.7, "pixel");
        Quantity(t, $"{det}/count_time", 0.0095, "s");
        Quantity(t, $"{det}/frame_time", 0.01, "s");
        Quantity(t, $"{det}/sensor_thickness", 320e-6, "m");
        Assert.Equal("Si", Value(t, $"{det}/sensor_material").GetString());
        Assert.Equal(16, Value(t, $"{det}/bit_depth_readout").GetInt64());
        Assert.Equal(16, Value(t, $"{det}/bit_depth_image").GetInt64());
        Assert.False(t.TryGetProperty($"{det}/saturation_value", out _), "raw JUNGFRAU (gain bits + ADC) has no saturation value by default");
        Assert.Equal(0, Value(t, $"{det}/pixel_mask_applied").GetInt64());
        Assert.Equal([1060, 1024], H5py.Longs(t.GetProperty($"{det}/pixel_mask").GetProperty("shape")));
        Assert.Equal("<u4", t.GetProperty($"{det}/pixel_mask").GetProperty("dtype").GetString());
        Assert.Equal("softlink", t.GetProperty($"{det}/data").GetProperty("kind").GetString());
        Assert.Equal("/entry/data/data", t.GetProperty($"{det}/data").GetProperty("target").GetString());

        // The chain: module → module_offset → translation → ".", all absolute paths.
        Assert.Equal($"{det}/transformations/translation", Value(t, $"{det}/depends_on").GetString());
        Quantity(t, $"{det}/transformations/translation", 0.120, "m");
        Axis(t, $"{det}/transformations/translation", "translation", [0, 0, 1], ".");
        (int Top, double CornerY)[] modules = [(0, 250.7 * 75e-6), (548, (250.7 - 548) * 75e-6)];
        for (int m = 0; m < 2; m++)
        {
            string mod = $"{det}/module_{m}";
            Assert.Equal([modules[m].Top, 0], H5py.Longs(Value(t, $"{mod}/data_origin")));
            Assert.Equal([512, 1024], H5py.Longs(Value(t, $"{mod}/data_size")));
            Assert.Equal("<i4", t.GetProperty($"{mod}/data_origin").GetProperty("dtype").GetString());
            Quantity(t, $"{mod}/module_offset", 0, "m");
            Axis(t, $"{mod}/module_offset", "translation", [1, 0, 0], $"{det}/transformations/translation");
            Close([520.3 * 75e-6, modules[m].CornerY, 0], Doubles(Attr(t, $"{mod}/module_offset", "offset")));
            Assert.Equal("m", AttrString(t, $"{mod}/module_offset", "offset_units"));
            Quantity(t, $"{mod}/fast_pixel_direction", 75e-6, "m");
            Axis(t, $"{mod}/fast_pixel_direction", "translation", [-1, 0, 0], $"{mod}/module_offset");
            Quantity(t, $"{mod}/slow_pixel_direction", 75e-6, "m");
            // Flipped or not, the module's rows run down the image: the assembler turned module 1 over.
            Axis(t, $"{mod}/slow_pixel_direction", "translation", [0, -1, 0], $"{mod}/module_offset");
        }

        Assert.Equal("lysozyme", Value(t, "/entry/sample/name").GetString());
        Assert.Equal("/entry/sample/transformations/omega", Value(t, "/entry/sample/depends_on").GetString());
        const string omega = "/entry/sample/transformations/omega";
        Close(Enumerable.Range(0, n).Select(i => 10 + 0.1 * i).ToArray(), Doubles(Value(t, omega)));
        Assert.Equal("deg", AttrString(t, omega, "units"));
        Axis(t, omega, "rotation", [-1, 0, 0], ".");
        Close(Enumerable.Range(1, n).Select(i => 10 + 0.1 * i).ToArray(), Doubles(Value(t, $"{omega}_end")));
        Assert.Equal("deg", AttrString(t, $"{omega}_end", "units"));
        Quantity(t, $"{omega}_increment_set", 0.1, "deg");
    }

    [Fact]
    public async Task Write_RequestWithoutGeometry_FileCarriesTheDocumentedDefaults()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url,
            tweak: c => TwoModulesWithGap(c) with { Nexus = new NexusConfig { DefaultDistanceMm = 250 } });
        string file = Path.Combine(env.Dir, "defaults.h5");

        var final = await p.WriteAsync(WriterPipeline.Body(file, 3), Long);

        Assert.True(final.Action == BrokerProtocol.ActionSuccess, $"{final.Action}: {final.Message}");
        var t = H5py.Tree(env, file);
        const string det = "/entry/instrument/detector";
        Quantity(t, "/entry/instrument/beam/incident_wavelength", 1.0, "angstrom");
        Quantity(t, $"{det}/distance", 0.250, "m");
        Quantity(t, $"{det}/transformations/translation", 0.250, "m");
        Quantity(t, $"{det}/beam_center_x", 512, "pixel");
        Quantity(t, $"{det}/beam_center_y", 530, "pixel");
        Assert.False(t.TryGetProperty($"{det}/count_time", out _));
        Assert.False(t.TryGetProperty($"{det}/frame_time", out _));
        Assert.Equal(Value(t, "/entry/start_time").GetString(), Value(t, "/entry/end_time_estimated").GetString());
        Assert.Equal("unknown", Value(t, "/entry/instrument/name").GetString());
        Assert.Equal("", Value(t, "/entry/sample/name").GetString());
        Close([0, 0, 0], Doubles(Value(t, "/entry/sample/transformations/omega")));
        Quantity(t, "/entry/sample/transformations/omega_increment_set", 0, "deg");
    }

    [Fact]
    public void Silx_GetDefault_FindsTheImageStack()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "silx.h5");
        using (var file = NexusImageFile.Create(path, new NexusFileOptions(3, 6, 10, 2, false, []), overwrite: false))
        {
            for (int i = 0; i < 3; i++)
                file.WriteImage(i, TestImages.UInt16(i, 6, 10), (ulong)i, 0);
            file.Close(interrupted: false, null);
        }

        string output = Python.Run(env, """
            import sys, json, h5py
            try:
                from silx.io.nxdata import get_default
            except ImportError:
                sys.exit("silx is not installed: apt-get install python3-silx (or run scripts/setup.sh as root)")
            with h5py.File(sys.argv[1], "r") as f:
                d = get_default(f)
                print(json.dumps(None if d is None else {"signal": d.signal.name, "shape": list(d.signal.shape),
                    "valid": d.is_valid, "interpretation": d.interpretation}))
            """, path);

        var d = JsonDocument.Parse(output).RootElement;
        Assert.True(d.ValueKind == JsonValueKind.Object, "silx found no default plot");
        Assert.Equal("/entry/data/data", d.GetProperty("signal").GetString());
        Assert.Equal([3, 6, 10], H5py.Longs(d.GetProperty("shape")));
        Assert.True(d.GetProperty("valid").GetBoolean());
        Assert.Equal("image", d.GetProperty("interpretation").GetString());
    }

    public static TheoryData<string> MaskDetectors => ["jungfrau-converted", "eiger"];

    [Theory]
    [MemberData(nameof(MaskDetectors))]
    public void PixelMask_FlagsExactlyTheGapPixelsAndTheCalibrationsMaskedOnes(string type)
    {
        using var env = new TestEnv();
        DetectorConfig config;
        var gap = new HashSet<(int Y, int X)>();
        var dead = new HashSet<(int Y, int X)>();
        if (type == "eiger")
        {
            // The real EIGER 500k: chip gaps at x 256-257 and 772-773, the gap between its halves
            // (x 514-515), and rows 256-257 between the top and the (flipped) bottom half.
            config = DetectorConfigLoader.Load(Path.Combine(TestEnv.SharedData, "eiger-500k-32bit", "detector.json"));
            for (int y = 0; y < 514; y++)
                foreach (int x in new[] { 256, 257, 514, 515, 772, 773 })
                    gap.Add((y, x));
            for (int x = 0; x < 1030; x++)
            {
                gap.Add((256, x));
                gap.Add((257, x));
            }
        }
        else
        {
            // Rows 512-547 between the modules; the calibration masks module 0's frame pixel
            // (3, 5) and module 1's (511, 1023), which the flipped module puts on image row 548.
            string gains = Path.Combine(env.Dir, "gains.h5");
            Python.Run(env, Calibration, gains, "2");
            config = TwoModulesWithGap(env.Config("jungfrau-raw", 2, 16, 1024, 1024, TestEnv.JungfrauColumn(2)), type) with { GainsAndPedestals = gains };
            for (int y = 512; y < 548; y++)
                for (int x = 0; x < 1024; x++)
                    gap.Add((y, x));
            dead.Add((3, 5));
            dead.Add((548, 1023));
        }
        int h = config.ImagePixelHeight, w = config.ImagePixelWidth;
        string path = Path.Combine(env.Dir, "mask.h5");
        using (var file = NexusImageFile.Create(path, new NexusFileOptions(1, h, w, (ushort)config.ImageDtype, false, [])
        {
            Detector = NxmxDetector.From(config),
        }, overwrite: false))
            file.Close(interrupted: false, null);

        string dump = Path.Combine(env.Dir, "mask.raw");
        H5py.Tree(env, path, dump);
        var mask = File.ReadAllBytes(dump);
        Assert.Equal(h * w * 4, mask.Length);
        int flagged = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                uint v = BitConverter.ToUInt32(mask, (y * w + x) * 4);
                uint want = (gap.Contains((y, x)) ? 1u : 0) | (dead.Contains((y, x)) ? 2u : 0);
                if (v != want)
                    Assert.Fail($"{type}: pixel_mask[{y}, {x}] = {v}, expected {want}");
                flagged += v != 0 ? 1 : 0;
            }
        Assert.Equal(gap.Count + dead.Count, flagged);
    }

    /// <summary>A gains-and-pedestals file of n modules whose /pixel_mask marks frame pixel (3, 5) of module 0 and (511, 1023) of the last.</summary>
    public const string Calibration = """
        import sys, h5py, numpy as np
        path, modules = sys.argv[1], int(sys.argv[2])
        rows = modules * 512
        gains = np.stack([np.full((rows, 1024), g, np.float32) for g in (40.0, -1.5, -0.1)])
        peds = np.stack([np.full((rows, 1024), p, np.float32) for p in (1500.0, 14500.0, 14500.0)])
        mask = np.zeros((rows, 1024), dtype=np.uint32)
        mask[3, 5] = 1
        mask[rows - 1, 1023] = 1
        with h5py.File(path, "w") as f:
            f["gains"] = gains
            f["pedestals"] = peds
            f["pixel_mask"] = mask
        """;

    private static JsonElement Entry(JsonElement tree, string path) =>
        tree.TryGetProperty(path, out var e) ? e : throw new Xunit.Sdk.XunitException($"{path}: not in the file");

    private static JsonElement Value(JsonElement tree, string path) =>
        Entry(tree, path).TryGetProperty("value", out var v) ? v : throw new Xunit.Sdk.XunitException($"{path}: no value read");

    private static JsonElement Attr(JsonElement tree, string path, string name) =>
        Entry(tree, path).GetProperty("attrs").TryGetProperty(name, out var v) ? v : throw new Xunit.Sdk.XunitException($"{path}: no @{name}");

    private static string AttrString(JsonElement tree, string path, string name) => Attr(tree, path, name).GetString()!;

    private static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    private static void Close(double[] want, double[] got)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) < 1e-9 + 1e-9 * Math.Abs(want[i]), $"[{i}]: {got[i]}, expected {want[i]} ({string.Join(", ", got)})");
    }

    /// <summary>A scalar float64 quantity with its unit, as pint (dxtbx) parses it.</summary>
    private static void Quantity(JsonElement tree, string path, double value, string units)
    {
        Close([value], [Value(tree, path).GetDouble()]);
        Assert.Equal("<f8", Entry(tree, path).GetProperty("dtype").GetString());
        Assert.True(units == AttrString(tree, path, "units"), $"{path}: @units {AttrString(tree, path, "units")}, expected {units}");
    }

    private static void Axis(JsonElement tree, string path, string type, double[] vector, string dependsOn)
    {
        Assert.Equal(type, AttrString(tree, path, "transformation_type"));
        Close(vector, Doubles(Attr(tree, path, "vector")));
        Assert.True(dependsOn == AttrString(tree, path, "depends_on"), $"{path}: @depends_on {AttrString(tree, path, "depends_on")}, expected {dependsOn}");
    }
}
