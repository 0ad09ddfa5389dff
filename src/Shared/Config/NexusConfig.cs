using StdDaq.Shared.Detectors;

namespace StdDaq.Shared.Config;

/// <summary>
/// The config's optional <c>nexus</c> section: what every file's NeXus NXmx description says about
/// the detector and the beamline that no write request gives. Members left null take the detector
/// type's default (the <c>…For</c> methods, the one place those defaults are kept; the README lists
/// them). Lengths are in the units their names say; the file stores them in metres.
/// </summary>
public sealed record NexusConfig
{
    /// <summary>The sensor materials NXmx readers know (dxtbx refuses any other spelling, "silicon" included).</summary>
    public static readonly IReadOnlyList<string> SensorMaterials = ["Si", "CdTe", "GaAs"];

    /// <summary>
    /// pixel_size_um: the pixel pitch, the same in x and y. Null: 75 µm for JUNGFRAU and EIGER; 11 µm
    /// for GigaFRoST, its sensor's pitch (a camera behind optics should set its effective pixel size).
    /// </summary>
    public double? PixelSizeUm { get; init; }
    /// <summary>sensor_material: Si, CdTe or GaAs (<see cref="SensorMaterials"/>).</summary>
    public string SensorMaterial { get; init; } = "Si";
    /// <summary>
    /// sensor_thickness_um. Null: 320 µm for JUNGFRAU, 450 µm for EIGER; none for GigaFRoST (a
    /// scintillator in front of it stops the X-rays), whose files then have no sensor_thickness.
    /// </summary>
    public double? SensorThicknessUm { get; init; }
    /// <summary>
    /// saturation_value: the highest pixel value that is still a measurement. Null: EIGER 255 at
    /// bit_depth 8, 4095 at 16 (its 12-bit counter); GigaFRoST 4095 (12-bit ADC); otherwise none.
    /// </summary>
    public double? SaturationValue { get; init; }
    /// <summary>
    /// underload_value: the lowest pixel value that is still a measurement. Null: 0 for EIGER and
    /// GigaFRoST (counts; DIALS then also distrusts the -1 and -2 it makes of a counter's top
    /// values), otherwise none.
    /// </summary>
    public double? UnderloadValue { get; init; }
    /// <summary>instrument_name: the beamline or instrument (NXinstrument name).</summary>
    public string InstrumentName { get; init; } = "unknown";
    /// <summary>instrument_short_name: its short name; null: <see cref="InstrumentName"/>.</summary>
    public string? InstrumentShortName { get; init; }
    /// <summary>source_name: the X-ray source (NXsource name), e.g. "Swiss Light Source".</summary>
    public string SourceName { get; init; } = "unknown";
    /// <summary>source_short_name: its short name; null: <see cref="SourceName"/>.</summary>
    public string? SourceShortName { get; init; }
    /// <summary>source_type: NXsource type, e.g. "Synchrotron X-ray Source"; null: not written.</summary>
    public string? SourceType { get; init; }
    /// <summary>
    /// rotation_axis: the goniometer's omega axis in NeXus (McStas) coordinates: z along the beam, y up.
    /// The default [-1, 0, 0] is what DIALS shows as its usual rotation axis {1, 0, 0}.
    /// </summary>
    public IReadOnlyList<double> RotationAxis { get; init; } = [-1, 0, 0];
    /// <summary>default_distance_mm: the sample–detector distance of files whose request gives none.</summary>
    public double DefaultDistanceMm { get; init; } = 100;
    /// <summary>default_wavelength_angstrom: the wavelength of files whose request gives neither wavelength nor photon energy.</summary>
    public double DefaultWavelengthAngstrom { get; init; } = 1;

    /// <summary>The pixel pitch in µm of a <paramref name="kind"/> detector: <see cref="PixelSizeUm"/> or its default.</summary>
    public double PixelSizeUmFor(DetectorKind kind) => PixelSizeUm ?? (kind == DetectorKind.Gigafrost ? 11 : 75);

    /// <summary>The sensor thickness in µm: <see cref="SensorThicknessUm"/> or the type's default; null: not known.</summary>
    public double? SensorThicknessUmFor(DetectorKind kind) => SensorThicknessUm ?? kind switch
    {
        DetectorKind.JungfrauRaw or DetectorKind.JungfrauConverted => 320,
        DetectorKind.Eiger => 450,
        _ => null,
    };

    /// <summary>The saturation value: <see cref="SaturationValue"/> or the type's default; null: none.</summary>
    public double? SaturationValueFor(DetectorKind kind, int bitDepth) => SaturationValue ?? kind switch
    {
        DetectorKind.Eiger when bitDepth == 8 => 255,
        DetectorKind.Eiger when bitDepth == 16 => 4095,
        DetectorKind.Gigafrost => 4095,
        _ => null,
    };

    /// <summary>The underload value: <see cref="UnderloadValue"/> or the type's default; null: none.</summary>
    public double? UnderloadValueFor(DetectorKind kind) => UnderloadValue ?? (kind is DetectorKind.Eiger or DetectorKind.Gigafrost ? 0 : null);

    /// <summary>
    /// Why dxtbx (DIALS) would read files with this instrument name as a Diamond Light Source
    /// beamline's, with that beamline's geometry fixes; null when it would not.
    /// </summary>
    public static string? DiamondName(string name)
    {
        // dxtbx 3.11's FormatNXmxDLS*: these names pick Diamond's format classes over FormatNXmx.
        string lower = name.ToLowerInvariant();
        if (lower is "i03" or "i04" or "i24" or "vmxi")
            return $"'{name}' is a Diamond Light Source beamline's name";
        if (name.ToUpperInvariant().StartsWith("DLS", StringComparison.Ordinal) || name.ToUpperInvariant().StartsWith("DIAMOND BEAMLINE", StringComparison.Ordinal))
            return $"'{name}' starts like a Diamond Light Source beamline's name (DLS…, Diamond beamline…)";
        if (name.Contains("I19-2", StringComparison.Ordinal))
            return $"'{name}' contains I19-2, a Diamond Light Source beamline's name";
        return null;
    }
}
