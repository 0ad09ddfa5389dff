using System.Text.Json.Nodes;
using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Shared;

public class DetectorConfigTests
{
    private const string Jungfrau = """
        {"detector_name":"JF02T02V01","detector_type":"jungfrau-raw","n_modules":2,"bit_depth":16,
         "image_pixel_height":1024,"image_pixel_width":1024,"start_udp_port":50100,
         "module_positions":{"0":[0,1023,1023,512],"1":[0,511,1023,0]}}
        """;

    private static string With(string json, string key, JsonNode? value)
    {
        var o = JsonNode.Parse(json)!.AsObject();
        if (value == null)
            o.Remove(key);
        else
            o[key] = value;
        return o.ToJsonString();
    }

    private static string ErrorOf(string json) => Assert.Throws<ConfigException>(() => DetectorConfigLoader.Parse(json)).Message;

    [Fact]
    public void Parse_ValidJungfrau_ReadsEveryKey()
    {
        var c = DetectorConfigLoader.Parse(Jungfrau);
        Assert.Equal("JF02T02V01", c.DetectorName);
        Assert.Equal(DetectorKind.JungfrauRaw, c.Kind);
        Assert.Equal(2, c.NModules);
        Assert.Equal(50101, c.UdpPort(1));
        Assert.True(c.ModulePositions[0].FlippedVertically);
        Assert.Equal(10, c.StatsCollectionPeriod);
        Assert.Equal("JF02T02V01-1", c.FrameBufferName(1));
        Assert.Equal("ipc:///tmp/JF02T02V01-1", c.ModuleFrameEndpoint(1));
        Assert.Equal(1 << 20, c.Module.FrameBytes);
    }

    [Fact]
    public void Load_RealEigerConfig_HasFourPortsOf128Packets()
    {
        var c = DetectorConfigLoader.Load(Path.Combine(TestEnv.SharedData, "eiger-500k-32bit", "detector.json"));
        Assert.Equal(DetectorKind.Eiger, c.Kind);
        Assert.Equal(4, c.NModules);
        Assert.Equal(128, c.Module.PacketsPerFrame);
        Assert.Equal(512 * 256 * 4, c.Module.FrameBytes);
        Assert.True(c.ModulePositions[2].FlippedVertically);
    }

    [Fact]
    public void EigerLayout_OneModule_IsTheRealEiger500kConfig()
    {
        var real = DetectorConfigLoader.Load(Path.Combine(TestEnv.SharedData, "eiger-500k-32bit", "detector.json"));
        Assert.Equal(real.ModulePositions, EigerLayout.Ports(1, 1));
        Assert.Equal((real.ImagePixelWidth, real.ImagePixelHeight), (EigerLayout.Width(1), EigerLayout.Height(1)));
    }

    [Theory]
    [InlineData(3, 6, 3106, 3264)] // 9M: 72 ports
    [InlineData(4, 8, 4144, 4364)] // 16M: 128 ports
    [InlineData(8, 8, 8296, 4364)] // 256 ports
    public void Parse_EigerOfManyPorts_EveryPortValidAndOnItsOwnPort(int columns, int rows, int width, int height)
    {
        var ports = EigerLayout.Ports(columns, rows);
        var positions = new JsonObject();
        for (int m = 0; m < ports.Length; m++)
            positions[m.ToString()] = new JsonArray(ports[m].X0, ports[m].Y0, ports[m].X1, ports[m].Y1);
        var json = new JsonObject
        {
            ["detector_name"] = "EG", ["detector_type"] = "eiger", ["n_modules"] = ports.Length, ["bit_depth"] = 16,
            ["image_pixel_height"] = EigerLayout.Height(rows), ["image_pixel_width"] = EigerLayout.Width(columns),
            ["start_udp_port"] = 50000, ["module_positions"] = positions,
        };

        var c = DetectorConfigLoader.Parse(json.ToJsonString());

        Assert.Equal(4 * columns * rows, c.NModules);
        Assert.Equal((width, height), (c.ImagePixelWidth, c.ImagePixelHeight));
        Assert.Equal(50000 + c.NModules - 1, c.UdpPort(c.NModules - 1));
        Assert.Equal($"ipc:///tmp/EG-{c.NModules - 1}", c.ModuleFrameEndpoint(c.NModules - 1));
        Assert.True(c.ModulePositions[^1].FlippedVertically);
    }

    [Fact]
    public void Parse_Gigafrost_DerivesQuadrantsWithoutPositions()
    {
        var c = DetectorConfigLoader.Parse("""
            {"detector_name":"GF2","detector_type":"gigafrost","n_modules":8,"bit_depth":16,
             "image_pixel_height":2016,"image_pixel_width":2016,"start_udp_port":2000}
            """);
        Assert.Equal(8, c.ModulePositions.Count);
        Assert.Equal(1008, c.ModulePositions[7].X0);
        Assert.Equal(4, c.Module.RowsPerPacket);
        Assert.Equal(504 * 1008 * 3 / 2, c.Module.FrameBytes);
    }

    [Theory]
    [InlineData("detector_name", null, "key 'detector_name': missing")]
    [InlineData("detector_name", "\"a b\"", "key 'detector_name'")]
    [InlineData("detector_type", "\"pilatus\"", "key 'detector_type': 'pilatus' is not one of")]
    [InlineData("n_modules", "\"2\"", "key 'n_modules': must be an integer, got the string \"2\"")]
    [InlineData("n_modules", "0", "key 'n_modules': 0 is out of range")]
    [InlineData("bit_depth", "32", "key 'bit_depth': 32 is not valid for jungfrau-raw")]
    [InlineData("image_pixel_width", null, "key 'image_pixel_width': missing")]
    [InlineData("start_udp_port", "70000", "key 'start_udp_port'")]
    [InlineData("module_positions", null, "key 'module_positions': missing")]
    [InlineData("module_positions", "[1,2]", "key 'module_positions': must be an object")]
    [InlineData("module_positions", "{\"0\":[0,1023,1023,512]}", "key 'module_positions': module 1 has no position")]
    [InlineData("module_positions", "{\"0\":[0,1023,1023,512],\"1\":[0,511,1023,\"x\"]}", "key 'module_positions.1': must be an array of 4 integers")]
    [InlineData("module_positions", "{\"0\":[0,1023,1023,512],\"1\":[1,511,1024,0]}", "key 'module_positions.1': [1, 511, 1024, 0] lies outside the 1024x1024 image")]
    [InlineData("module_positions", "{\"0\":[0,1023,1023,512],\"1\":[0,600,1023,89]}", "key 'module_positions.1': [0, 600, 1023, 89] overlaps module 0")]
    [InlineData("module_positions", "{\"0\":[0,1023,1023,512],\"1\":[0,510,1023,0]}", "key 'module_positions.1': [0, 510, 1023, 0] is 1024x511 pixels but a jungfrau module is 1024x512")]
    [InlineData("module_positions", "{\"0\":[0,1023,1023,512],\"1\":[0,511,1023,0],\"2\":[0,0,1,1]}", "key 'module_positions.2': '2' is not a module id")]
    [InlineData("stats_collection_period", "-1", "key 'stats_collection_period'")]
    [InlineData("log_level", "\"loud\"", "key 'log_level': 'loud' is not one of")]
    [InlineData("frame_buffer_slots", "1", "key 'frame_buffer_slots': 1 is out of range")]
    public void Parse_BadKey_NamesTheKeyAndTheProblem(string key, string? valueJson, string expected)
    {
        string json = With(Jungfrau, key, valueJson == null ? null : JsonNode.Parse(valueJson));
        var message = ErrorOf(json);
        Assert.Contains(expected, message);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void Parse_EigerWrongModuleSize_SaysTheExpectedSize()
    {
        var json = File.ReadAllText(Path.Combine(TestEnv.SharedData, "eiger-500k-32bit", "detector.json"))
            .Replace("[516, 0, 1029, 255]", "[518, 0, 1029, 255]");
        Assert.Contains("key 'module_positions.1': [518, 0, 1029, 255] is 512x256 pixels but a eiger (one port, with the 2-pixel chip gap) module is 514x256", ErrorOf(json));
    }

    [Fact]
    public void Parse_NotJson_SaysSo() => Assert.StartsWith("not valid JSON", ErrorOf("{\"detector_name\": "));

    [Fact]
    public void Parse_UnknownKey_WarnsAndLoads()
    {
        var warnings = new List<string>();
        var c = DetectorConfigLoader.Parse(With(Jungfrau, "detector_colour", "blue"), warnings.Add);
        Assert.Equal("JF02T02V01", c.DetectorName);
        Assert.Equal(["config: unknown key 'detector_colour' ignored"], warnings);
    }

    [Fact]
    public void StdUdpRecv_BadConfig_ExitsWithCode2AndOneLine()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "bad.json");
        File.WriteAllText(path, With(Jungfrau, "n_modules", "two"));
        var r = Programs.Run("StdUdpRecv", [path, "0"]);
        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("key 'n_modules': must be an integer, got the string \"two\"", line);
    }

    [Fact]
    public void StdUdpRecv_MissingConfigFile_ExitsNonZeroWithMessage()
    {
        var r = Programs.Run("StdUdpRecv", ["/nonexistent/config.json", "0"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("cannot read", r.Stderr);
    }

    [Fact]
    public void Parse_RamBufferForFewImages_WarnsHowManyItHolds()
    {
        var warnings = new List<string>();
        var c = DetectorConfigLoader.Parse(With(Jungfrau, "ram_buffer_gb", 0.001), warnings.Add);
        Assert.Equal(2, c.ImageBufferSlotsFor(1024L * 512 * 2 * c.NModules));
        Assert.Single(warnings, w => w.StartsWith("config: ram_buffer_gb 0.001 holds only 2 images of", StringComparison.Ordinal));
        warnings.Clear();
        DetectorConfigLoader.Parse(With(Jungfrau, "ram_buffer_gb", 1), warnings.Add);
        Assert.Empty(warnings);
    }

    [Fact]
    public void Parse_SeveralWriters_WarnsThatOneWriterRuns()
    {
        var warnings = new List<string>();
        DetectorConfigLoader.Parse(With(Jungfrau, "number_of_writers", 4), warnings.Add);
        Assert.Equal(["config: number_of_writers 4 is not used: one StdH5Writer per detector writes every run"], warnings);
        warnings.Clear();
        DetectorConfigLoader.Parse(With(Jungfrau, "number_of_writers", 1), warnings.Add);
        Assert.Empty(warnings);
    }

    [Fact]
    public void Parse_NexusSection_ReadsEveryKey()
    {
        var warnings = new List<string>();
        var c = DetectorConfigLoader.Parse(With(Jungfrau, "nexus", JsonNode.Parse("""
            {"pixel_size_um": 74.5, "sensor_material": "CdTe", "sensor_thickness_um": 750, "saturation_value": 30000,
             "underload_value": -5, "instrument_name": "PSI X06SA", "instrument_short_name": "X06SA",
             "source_name": "Swiss Light Source", "source_short_name": "SLS", "source_type": "Synchrotron X-ray Source",
             "rotation_axis": [1, 0, 0], "default_distance_mm": 250, "default_wavelength_angstrom": 0.8, "colour": "red"}
            """)), warnings.Add);

        var n = c.Nexus;
        Assert.Equal(74.5, n.PixelSizeUmFor(DetectorKind.JungfrauRaw));
        Assert.Equal("CdTe", n.SensorMaterial);
        Assert.Equal(750, n.SensorThicknessUmFor(DetectorKind.JungfrauRaw));
        Assert.Equal(30000, n.SaturationValueFor(DetectorKind.JungfrauRaw, 16));
        Assert.Equal(-5, n.UnderloadValueFor(DetectorKind.Eiger));
        Assert.Equal(("PSI X06SA", "X06SA"), (n.InstrumentName, n.InstrumentShortName));
        Assert.Equal(("Swiss Light Source", "SLS", "Synchrotron X-ray Source"), (n.SourceName, n.SourceShortName, n.SourceType));
        Assert.Equal([1.0, 0, 0], n.RotationAxis);
        Assert.Equal((250, 0.8), (n.DefaultDistanceMm, n.DefaultWavelengthAngstrom));
        Assert.Equal(["config: unknown key 'nexus.colour' ignored"], warnings);
    }

    [Fact]
    public void Parse_NoNexusSection_DefaultsPerDetectorType()
    {
        var n = DetectorConfigLoader.Parse(Jungfrau).Nexus;
        Assert.Equal(75, n.PixelSizeUmFor(DetectorKind.JungfrauRaw));
        Assert.Equal(75, n.PixelSizeUmFor(DetectorKind.Eiger));
        Assert.Equal(11, n.PixelSizeUmFor(DetectorKind.Gigafrost));
        Assert.Equal(320, n.SensorThicknessUmFor(DetectorKind.JungfrauConverted));
        Assert.Equal(450, n.SensorThicknessUmFor(DetectorKind.Eiger));
        Assert.Null(n.SensorThicknessUmFor(DetectorKind.Gigafrost));
        Assert.Null(n.SaturationValueFor(DetectorKind.JungfrauRaw, 16));
        Assert.Equal(255, n.SaturationValueFor(DetectorKind.Eiger, 8));
        Assert.Equal(4095, n.SaturationValueFor(DetectorKind.Eiger, 16));
        Assert.Null(n.SaturationValueFor(DetectorKind.Eiger, 32));
        Assert.Equal(4095, n.SaturationValueFor(DetectorKind.Gigafrost, 12));
        Assert.Equal(0, n.UnderloadValueFor(DetectorKind.Eiger));
        Assert.Equal(0, n.UnderloadValueFor(DetectorKind.Gigafrost));
        Assert.Null(n.UnderloadValueFor(DetectorKind.JungfrauConverted));
        Assert.Equal("Si", n.SensorMaterial);
        Assert.Equal(("unknown", "unknown"), (n.InstrumentName, n.SourceName));
        Assert.Equal([-1.0, 0, 0], n.RotationAxis);
        Assert.Equal((100, 1), (n.DefaultDistanceMm, n.DefaultWavelengthAngstrom));
    }

    [Theory]
    [InlineData("5", "key 'nexus': must be an object of NeXus settings, got the number 5")]
    [InlineData("{\"sensor_material\": \"silicon\"}", "key 'nexus.sensor_material': 'silicon' is not one of Si, CdTe, GaAs")]
    [InlineData("{\"sensor_material\": \"Si \"}", "key 'nexus.sensor_material': 'Si ' is not one of Si, CdTe, GaAs")]
    [InlineData("{\"pixel_size_um\": \"75\"}", "key 'nexus.pixel_size_um': must be a number, got the string \"75\"")]
    [InlineData("{\"pixel_size_um\": 0}", "key 'nexus.pixel_size_um': 0 is out of range 0.1..10000")]
    [InlineData("{\"sensor_thickness_um\": -320}", "key 'nexus.sensor_thickness_um': -320 is out of range 1..100000")]
    [InlineData("{\"saturation_value\": 100, \"underload_value\": 100}", "key 'nexus.underload_value': 100 must be below nexus.saturation_value 100")]
    [InlineData("{\"instrument_name\": \"DLS I04\"}", "key 'nexus.instrument_name': 'DLS I04' starts like a Diamond Light Source beamline's name")]
    [InlineData("{\"instrument_name\": \"i24\"}", "key 'nexus.instrument_name': 'i24' is a Diamond Light Source beamline's name")]
    [InlineData("{\"instrument_name\": \" \"}", "key 'nexus.instrument_name': must not be empty")]
    [InlineData("{\"source_name\": 7}", "key 'nexus.source_name': must be a string, got the number 7")]
    [InlineData("{\"rotation_axis\": [1, 0]}", "key 'nexus.rotation_axis': must be an array of 3 numbers [x, y, z], got an array")]
    [InlineData("{\"rotation_axis\": [0, 0, 0]}", "key 'nexus.rotation_axis': [0, 0, 0] is not a direction")]
    [InlineData("{\"default_distance_mm\": 0.12}", "key 'nexus.default_distance_mm': 0.12 is out of range 1..100000")]
    [InlineData("{\"default_wavelength_angstrom\": 12400}", "key 'nexus.default_wavelength_angstrom': 12400 is out of range 0.01..100")]
    public void Parse_BadNexusValue_OneLineNamingTheKey(string nexus, string message)
    {
        Assert.StartsWith(message, ErrorOf(With(Jungfrau, "nexus", JsonNode.Parse(nexus))), StringComparison.Ordinal);
    }
}
