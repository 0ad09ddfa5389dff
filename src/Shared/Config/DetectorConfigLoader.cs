using System.Text.Json;
using System.Text.RegularExpressions;
using StdDaq.Shared.Detectors;

namespace StdDaq.Shared.Config;

/// <summary>
/// Loads and strictly validates a std-daq detector config. Every problem is a
/// <see cref="ConfigException"/> with one line naming the key; unknown keys are warnings.
/// </summary>
public static partial class DetectorConfigLoader
{
    private static readonly string[] KnownKeys =
    [
        "detector_name", "detector_type", "n_modules", "bit_depth", "image_pixel_height", "image_pixel_width",
        "start_udp_port", "module_positions", "log_level", "stats_collection_period", "ram_buffer_gb",
        "module_sync_queue_size", "number_of_writers", "gains_and_pedestals",
        "frame_buffer_slots", "udp_receive_buffer_bytes", "udp_frame_timeout_ms", "udp_batch_size",
        "jungfrau_image_id", "udp_receive_in_place", "image_buffer_slots", "assembler_timeout_ms",
        "assembler_workers", "writer_output_roots", "writer_flush_interval_s", "writer_compression",
        "writer_busy_policy", "wait_for_peers_s", "writer_incomplete_policy", "nexus", "metrics",
    ];

    private static readonly string[] NexusKeys =
    [
        "pixel_size_um", "sensor_material", "sensor_thickness_um", "saturation_value", "underload_value",
        "instrument_name", "instrument_short_name", "source_name", "source_short_name", "source_type",
        "rotation_axis", "default_distance_mm", "default_wavelength_angstrom",
    ];


    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex NameRegex();

    /// <summary>Whether <paramref name="name"/> may be a detector_name: 1-64 of A-Z a-z 0-9 _ . - (it names shared memory and sockets).</summary>
    public static bool IsValidDetectorName(string name) => NameRegex().IsMatch(name);

    /// <summary>
    /// Reads and validates the config file at <paramref name="path"/>; a <see cref="ConfigException"/>
    /// names the file. <paramref name="warn"/> gets one line per unknown key or doubtful setting.
    /// </summary>
    public static DetectorConfig Load(string path, Action<string>? warn = null)
    {
        string text;
        if (Directory.Exists(path))
            throw new ConfigException($"config '{path}': is a directory, not a file");
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"config '{path}': cannot read: {e.Message}");
        }
        try
        {
            return Parse(text, warn);
        }
        catch (ConfigException e)
        {
            throw new ConfigException($"config '{path}': {e.Message}");
        }
    }

    /// <summary>Validates a config given as JSON text (comments allowed), as <see cref="Load"/> does without the file.</summary>
    public static DetectorConfig Parse(string json, Action<string>? warn = null)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new ConfigException($"not valid JSON: {e.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ConfigException("the config must be a JSON object");
            foreach (var p in root.EnumerateObject())
                if (Array.IndexOf(KnownKeys, p.Name) < 0)
                    warn?.Invoke($"config: unknown key '{p.Name}' ignored");
            if (root.TryGetProperty("nexus", out var nexus) && nexus.ValueKind == JsonValueKind.Object)
                foreach (var p in nexus.EnumerateObject())
                    if (Array.IndexOf(NexusKeys, p.Name) < 0)
                        warn?.Invoke($"config: unknown key 'nexus.{p.Name}' ignored");
            if (root.TryGetProperty("metrics", out var metrics) && metrics.ValueKind == JsonValueKind.Object)
                foreach (var p in metrics.EnumerateObject())
                    if (Array.IndexOf(MetricsConfig.Keys, p.Name) < 0)
                        warn?.Invoke($"config: unknown key 'metrics.{p.Name}' ignored");
            var cfg = Build(root);
            Warn(cfg, warn);
            return cfg;
        }
    }

    /// <summary>The smallest ImageBuffer that does not draw a warning: the writer gets about this many images of slack.</summary>
    public const int MinImageBufferSlots = 16;

    /// <summary>Settings that are valid but probably not what was meant.</summary>
    private static void Warn(DetectorConfig cfg, Action<string>? warn)
    {
        if (cfg.NumberOfWriters is > 1 and var writers)
            warn?.Invoke($"config: number_of_writers {writers} is not used: one StdH5Writer per detector writes every run");
        if (cfg.RamBufferGb is { } gb)
        {
            long imageBytes = cfg.ImageBytes;
            int slots = cfg.ImageBufferSlotCount;
            if (slots < MinImageBufferSlots)
                warn?.Invoke($"config: ram_buffer_gb {gb} holds only {slots} images of {imageBytes} bytes; "
                    + $"a writer more than {slots - 1} images behind the detector loses images (at least {MinImageBufferSlots} recommended)");
        }
    }

    private static DetectorConfig Build(JsonElement root)
    {
        string name = RequiredString(root, "detector_name");
        if (!NameRegex().IsMatch(name))
            throw Bad("detector_name", $"'{name}' must be 1-64 characters of A-Z a-z 0-9 _ . - (it names shared memory and sockets)");
        string type = RequiredString(root, "detector_type");
        DetectorKind kind;
        try
        {
            kind = ModuleGeometry.ParseKind(type);
        }
        catch (ArgumentException)
        {
            throw Bad("detector_type", $"'{type}' is not one of jungfrau-raw, jungfrau-converted, eiger, gigafrost");
        }
        int nModules = RequiredInt(root, "n_modules", 1, 1024);
        int bitDepth = RequiredInt(root, "bit_depth", 1, 64);
        int[] allowedDepths = kind switch
        {
            DetectorKind.JungfrauRaw => [16],
            DetectorKind.JungfrauConverted => [16, 32],
            DetectorKind.Eiger => [8, 16, 32],
            _ => [12, 16],
        };
        if (Array.IndexOf(allowedDepths, bitDepth) < 0)
            throw Bad("bit_depth", $"{bitDepth} is not valid for {type} (allowed: {string.Join(", ", allowedDepths)})");
        int height = RequiredInt(root, "image_pixel_height", 1, 1 << 16);
        int width = RequiredInt(root, "image_pixel_width", 1, 1 << 16);
        int port = RequiredInt(root, "start_udp_port", 1, 65535);
        if (port + nModules - 1 > 65535)
            throw Bad("start_udp_port", $"{port} + {nModules} modules runs past port 65535");

        ModuleGeometry geometry;
        if (kind == DetectorKind.Gigafrost)
        {
            if (nModules != ModuleGeometry.GigafrostStreams)
                throw Bad("n_modules", $"gigafrost sends {ModuleGeometry.GigafrostStreams} UDP streams (4 quadrants x 2 links), got {nModules}");
            try
            {
                geometry = ModuleGeometry.Gigafrost(width, height);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw Bad("image_pixel_width", e.Message.Split(" (Parameter")[0]);
            }
        }
        else
        {
            geometry = kind == DetectorKind.Eiger ? ModuleGeometry.Eiger(bitDepth) : ModuleGeometry.Jungfrau(kind == DetectorKind.JungfrauConverted);
        }

        var positions = ModulePositions(root, kind, nModules, width, height, geometry);

        var cfg = new DetectorConfig
        {
            DetectorName = name,
            DetectorType = type,
            NModules = nModules,
            BitDepth = bitDepth,
            ImagePixelHeight = height,
            ImagePixelWidth = width,
            StartUdpPort = port,
            ModulePositions = positions,
        };
        if (OptionalChoice(root, "log_level", Choices.LogLevel, ignoreCase: true) is { } level)
            cfg = cfg with { LogLevel = level };
        if (OptionalNumber(root, "stats_collection_period", 0.01, 86400) is { } period)
            cfg = cfg with { StatsCollectionPeriod = period };
        if (OptionalNumber(root, "ram_buffer_gb", 0.001, 1 << 20) is { } gb)
            cfg = cfg with { RamBufferGb = gb };
        if (OptionalInt(root, "module_sync_queue_size", 1, 1 << 20) is { } q)
            cfg = cfg with { ModuleSyncQueueSize = q };
        if (OptionalInt(root, "number_of_writers", 1, 1024) is { } nw)
            cfg = cfg with { NumberOfWriters = nw };
        if (OptionalString(root, "gains_and_pedestals") is { } gp)
            cfg = cfg with { GainsAndPedestals = gp };
        if (OptionalInt(root, "frame_buffer_slots", 2, 1 << 20) is { } slots)
            cfg = cfg with { FrameBufferSlots = slots };
        if (OptionalNumber(root, "udp_receive_buffer_bytes", 4096, 1L << 34) is { } rcvbuf)
            cfg = cfg with { UdpReceiveBufferBytes = (long)rcvbuf };
        if (OptionalNumber(root, "udp_frame_timeout_ms", 0.1, 60_000) is { } timeout)
            cfg = cfg with { UdpFrameTimeoutMs = timeout };
        if (OptionalInt(root, "udp_batch_size", 1, 1024) is { } batch)
            cfg = cfg with { UdpBatchSize = batch };
        if (OptionalInt(root, "image_buffer_slots", 2, 1 << 20) is { } imageSlots)
            cfg = cfg with { ImageBufferSlots = imageSlots };
        if (OptionalNumber(root, "assembler_timeout_ms", 1, 600_000) is { } asmTimeout)
            cfg = cfg with { AssemblerTimeoutMs = asmTimeout };
        if (OptionalNumber(root, "wait_for_peers_s", 0, 86_400) is { } waitPeers)
            cfg = cfg with { WaitForPeersS = waitPeers };
        if (OptionalInt(root, "assembler_workers", 0, 256) is { } workers)
            cfg = cfg with { AssemblerWorkers = workers };
        if (OptionalBool(root, "udp_receive_in_place") is { } inPlace)
            cfg = cfg with { UdpReceiveInPlace = inPlace };
        if (OptionalChoice(root, "jungfrau_image_id", Choices.JungfrauImageId) is { } idSource)
            cfg = cfg with { JungfrauImageId = idSource };
        if (OptionalStringArray(root, "writer_output_roots") is { } roots)
        {
            foreach (var r in roots)
                if (!Path.IsPathFullyQualified(r))
                    throw Bad("writer_output_roots", $"'{r}' is not an absolute path");
            cfg = cfg with { WriterOutputRoots = roots };
        }
        if (OptionalNumber(root, "writer_flush_interval_s", 0.01, 3600) is { } flush)
            cfg = cfg with { WriterFlushIntervalS = flush };
        if (OptionalChoice(root, "writer_compression", Choices.Compression) is { } compression)
            cfg = cfg with { WriterCompression = compression };
        if (OptionalChoice(root, "writer_busy_policy", Choices.BusyPolicy) is { } policy)
            cfg = cfg with { WriterBusyPolicy = policy };
        if (OptionalChoice(root, "writer_incomplete_policy", Choices.IncompletePolicy) is { } incomplete)
            cfg = cfg with { WriterIncompletePolicy = incomplete };
        if (root.TryGetProperty("nexus", out var nexus))
            cfg = cfg with { Nexus = Nexus(nexus) };
        if (root.TryGetProperty("metrics", out var metrics))
            cfg = cfg with { Metrics = Metrics(metrics, cfg.NModules) };
        return cfg;
    }

    /// <summary>The optional <c>metrics</c> object (<see cref="MetricsConfig"/>): ports 0..65535, 0 = off.</summary>
    private static MetricsConfig Metrics(JsonElement metrics, int nModules)
    {
        const string section = "metrics";
        if (metrics.ValueKind != JsonValueKind.Object)
            throw Bad(section, $"must be an object of ports, got {Kind(metrics)}");
        int Port(string key, int count)
        {
            if (!metrics.TryGetProperty(key, out var v))
                return 0;
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int port))
                throw Bad($"{section}.{key}", $"must be an integer, got {Kind(v)}");
            // A role of several processes per host takes count ports from its own.
            if (port < 0 || port > 65536 - count)
                throw Bad($"{section}.{key}", count == 1 ? $"{port} is out of range 0..65535" : $"{port} is out of range 0..{65536 - count} ({count} ports from it)");
            return port;
        }
        return new MetricsConfig
        {
            UdpRecvPort = Port("udp_recv_port", nModules),
            AssemblerPort = Port("assembler_port", 1),
            WriterPort = Port("writer_port", 1),
            WriterAgentPort = Port("writer_agent_port", 1),
            StreamSendPort = Port("stream_send_port", 1),
            StreamRecvPort = Port("stream_recv_port", 1),
        };
    }

    /// <summary>The optional <c>nexus</c> section (<see cref="NexusConfig"/>); its keys are named nexus.&lt;key&gt; in errors.</summary>
    private static NexusConfig Nexus(JsonElement nexus)
    {
        const string section = "nexus";
        if (nexus.ValueKind != JsonValueKind.Object)
            throw Bad(section, $"must be an object of NeXus settings, got {Kind(nexus)}");
        var n = new NexusConfig
        {
            PixelSizeUm = OptionalNumber(nexus, "pixel_size_um", 0.1, 10_000, section),
            SensorThicknessUm = OptionalNumber(nexus, "sensor_thickness_um", 1, 100_000, section),
            SaturationValue = OptionalNumber(nexus, "saturation_value", double.MinValue, double.MaxValue, section),
            UnderloadValue = OptionalNumber(nexus, "underload_value", double.MinValue, double.MaxValue, section),
            InstrumentShortName = OptionalText(nexus, "instrument_short_name", section),
            SourceShortName = OptionalText(nexus, "source_short_name", section),
            SourceType = OptionalText(nexus, "source_type", section),
        };
        if (n.SaturationValue is { } sat && n.UnderloadValue is { } under && under >= sat)
            throw Bad("nexus.underload_value", $"{under} must be below nexus.saturation_value {sat}");
        if (OptionalText(nexus, "sensor_material", section) is { } material)
        {
            if (!NexusConfig.SensorMaterials.Contains(material))
                throw Bad("nexus.sensor_material", $"'{material}' is not one of {string.Join(", ", NexusConfig.SensorMaterials)} (spelled so: NXmx readers know no other)");
            n = n with { SensorMaterial = material };
        }
        if (OptionalText(nexus, "instrument_name", section) is { } instrument)
        {
            if (NexusConfig.DiamondName(instrument) is { } why)
                throw Bad("nexus.instrument_name", $"{why}: DIALS would read the files as that beamline's; choose another name");
            n = n with { InstrumentName = instrument };
        }
        if (OptionalText(nexus, "source_name", section) is { } source)
            n = n with { SourceName = source };
        if (OptionalNumber(nexus, "default_distance_mm", Streams.NxmxRun.MinDistance, Streams.NxmxRun.MaxDistance, section) is { } distance)
            n = n with { DefaultDistanceMm = distance };
        if (OptionalNumber(nexus, "default_wavelength_angstrom", Streams.NxmxRun.MinWavelength, Streams.NxmxRun.MaxWavelength, section) is { } wavelength)
            n = n with { DefaultWavelengthAngstrom = wavelength };
        if (nexus.TryGetProperty("rotation_axis", out var axis))
        {
            const string key = "nexus.rotation_axis";
            if (axis.ValueKind != JsonValueKind.Array || axis.GetArrayLength() != 3 || axis.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number))
                throw Bad(key, $"must be an array of 3 numbers [x, y, z], got {Kind(axis)}");
            double[] v = axis.EnumerateArray().Select(e => e.GetDouble()).ToArray();
            if (v.All(x => x == 0) || v.Any(x => !double.IsFinite(x)))
                throw Bad(key, $"[{string.Join(", ", v)}] is not a direction");
            n = n with { RotationAxis = v };
        }
        return n;
    }

    /// <summary>An optional non-empty string.</summary>
    private static string? OptionalText(JsonElement obj, string key, string section)
    {
        if (OptionalString(obj, key, section) is not { } text)
            return null;
        return text.Trim().Length > 0 ? text : throw Bad($"{section}.{key}", "must not be empty");
    }

    private static List<ModulePosition> ModulePositions(JsonElement root, DetectorKind kind, int nModules,
        int width, int height, ModuleGeometry geometry)
    {
        const string key = "module_positions";
        var positions = new List<ModulePosition>(nModules);
        if (!root.TryGetProperty(key, out var mp))
        {
            if (kind != DetectorKind.Gigafrost)
                throw Missing(key);
            // GigaFRoST's layout is fixed: stream m covers quadrant m / 2 (links share a quadrant).
            int qw = width / 2, qh = height / 2;
            for (int m = 0; m < nModules; m++)
            {
                int q = m / 2;
                int x0 = (q % 2) * qw, y0 = (q / 2) * qh;
                positions.Add(new ModulePosition(x0, y0, x0 + qw - 1, y0 + qh - 1));
            }
            return positions;
        }
        if (mp.ValueKind != JsonValueKind.Object)
            throw Bad(key, $"must be an object {{\"<module_id>\": [x0, y0, x1, y1]}}, got {Kind(mp)}");
        var byId = new Dictionary<int, ModulePosition>();
        foreach (var p in mp.EnumerateObject())
        {
            string k = $"{key}.{p.Name}";
            if (!int.TryParse(p.Name, out int id) || id < 0 || id >= nModules || id.ToString() != p.Name)
                throw Bad(k, $"'{p.Name}' is not a module id in 0..{nModules - 1}");
            var v = p.Value;
            if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 4)
                throw Bad(k, $"must be an array of 4 integers [x0, y0, x1, y1], got {Kind(v)}");
            var c = new int[4];
            int i = 0;
            foreach (var e in v.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out c[i]))
                    throw Bad(k, $"must be an array of 4 integers [x0, y0, x1, y1], element {i} is {Kind(e)}");
                i++;
            }
            byId[id] = new ModulePosition(c[0], c[1], c[2], c[3]);
        }
        for (int m = 0; m < nModules; m++)
        {
            if (!byId.TryGetValue(m, out var pos))
                throw Bad(key, $"module {m} has no position (n_modules is {nModules})");
            string k = $"{key}.{m}";
            if (pos.X1 < pos.X0)
                throw Bad(k, $"{pos}: x1 must not be less than x0 (only vertical flips, y1 < y0, are supported)");
            if (pos.Left < 0 || pos.Top < 0 || pos.Right >= width || pos.Bottom >= height)
                throw Bad(k, $"{pos} lies outside the {width}x{height} image");
            if (pos.Width != geometry.PlacedWidth || pos.Height != geometry.PlacedHeight)
                throw Bad(k, $"{pos} is {pos.Width}x{pos.Height} pixels but a {DisplayName(kind)} module is {geometry.PlacedWidth}x{geometry.PlacedHeight}");
            for (int o = 0; o < m; o++)
            {
                bool sameQuadrant = kind == DetectorKind.Gigafrost && o / 2 == m / 2;
                if (!sameQuadrant && positions[o].Overlaps(pos))
                    throw Bad(k, $"{pos} overlaps module {o} at {positions[o]}");
            }
            positions.Add(pos);
        }
        return positions;
    }

    private static string DisplayName(DetectorKind kind) => kind switch
    {
        DetectorKind.Eiger => "eiger (one port, with the 2-pixel chip gap)",
        DetectorKind.Gigafrost => "gigafrost quadrant",
        _ => "jungfrau",
    };

    private static ConfigException Missing(string key) => new($"key '{key}': missing (required)");

    /// <summary>A key whose value is one of a closed set, spelled as <paramref name="choice"/> says.</summary>
    private static T? OptionalChoice<T>(JsonElement root, string key, Choice<T> choice, bool ignoreCase = false) where T : struct, Enum
    {
        if (OptionalString(root, key) is not { } text)
            return null;
        return choice.TryParse(text, out T value, ignoreCase) ? value : throw Bad(key, $"'{text}' is not one of {choice.Names}");
    }

    private static ConfigException Bad(string key, string problem) => new($"key '{key}': {problem}");

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{e.GetString()}\"",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {e.GetRawText()}",
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "an array",
        _ => "an object",
    };

    private static string RequiredString(JsonElement root, string key) =>
        OptionalString(root, key) ?? throw Missing(key);

    private static string? OptionalString(JsonElement root, string key, string? section = null)
    {
        if (!root.TryGetProperty(key, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.String)
            throw Bad(section == null ? key : $"{section}.{key}", $"must be a string, got {Kind(v)}");
        return v.GetString()!;
    }

    private static List<string>? OptionalStringArray(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Array)
            throw Bad(key, $"must be an array of strings, got {Kind(v)}");
        var list = new List<string>();
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String)
                throw Bad(key, $"must be an array of strings, element {list.Count} is {Kind(e)}");
            list.Add(e.GetString()!);
        }
        return list;
    }

    private static bool? OptionalBool(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v))
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(key, $"must be true or false, got {Kind(v)}"),
        };
    }

    private static int RequiredInt(JsonElement root, string key, int min, int max) =>
        OptionalInt(root, key, min, max) ?? throw Missing(key);

    private static int? OptionalInt(JsonElement root, string key, int min, int max)
    {
        if (!root.TryGetProperty(key, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i))
            throw Bad(key, $"must be an integer, got {Kind(v)}");
        if (i < min || i > max)
            throw Bad(key, $"{i} is out of range {min}..{max}");
        return i;
    }

    private static double? OptionalNumber(JsonElement root, string key, double min, double max, string? section = null)
    {
        if (!root.TryGetProperty(key, out var v))
            return null;
        string name = section == null ? key : $"{section}.{key}";
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || !double.IsFinite(d))
            throw Bad(name, $"must be a number, got {Kind(v)}");
        if (!(d >= min && d <= max))
            throw Bad(name, $"{v.GetRawText()} is out of range {min}..{max}");
        return d;
    }
}
