using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace StdDaq.Shared.Streams;

/// <summary>
/// What a write request says about its run's geometry and sample, for the file's NeXus NXmx
/// description: taken by the WriterAgent from the request's <c>metadata</c> keys of the same names
/// (<see cref="FromMetadata"/>), checked there, and carried to the writer in the run's first
/// StoreStream message. A null member was not given: the file then carries the documented default
/// (wavelength and distance from the config's <c>nexus</c> section, beam centre in the middle of
/// the image, omega 0 without rotation) or leaves the field out (count_time, frame_time).
/// </summary>
public sealed record NxmxRun
{
    /// <summary>h·c in keV·Å: wavelength (Å) = <see cref="HcKeVAngstrom"/> / photon energy (keV).</summary>
    public const double HcKeVAngstrom = 12.398419843320026;

    /// <summary>Wavelengths a request may give, in Å (0.01 Å is 1240 keV, 100 Å 0.124 keV); also the bounds of the config's default.</summary>
    public const double MinWavelength = 0.01, MaxWavelength = 100;
    /// <summary>Distances a request may give, in mm; also the bounds of the config's default.</summary>
    public const double MinDistance = 1, MaxDistance = 100_000;

    /// <summary>The request's keys that this record takes (and that are then no root attributes).</summary>
    public static readonly IReadOnlyList<string> Keys =
    [
        "wavelength", "photon_energy", "detector_distance", "beam_center_x", "beam_center_y",
        "omega_start", "omega_increment", "sample_name", "count_time", "frame_time",
    ];

    /// <summary>A run that gives nothing: every value takes its default.</summary>
    public static readonly NxmxRun None = new();

    /// <summary>wavelength, Å (or the request's photon_energy converted).</summary>
    [JsonPropertyName("wavelength")] public double? WavelengthAngstrom { get; init; }
    /// <summary>detector_distance: sample to detector along the beam, mm.</summary>
    [JsonPropertyName("detector_distance")] public double? DetectorDistanceMm { get; init; }
    /// <summary>beam_center_x: where the beam meets the image, in pixels along a row (the fast axis).</summary>
    [JsonPropertyName("beam_center_x")] public double? BeamCenterX { get; init; }
    /// <summary>beam_center_y: where the beam meets the image, in pixels down the columns (the slow axis).</summary>
    [JsonPropertyName("beam_center_y")] public double? BeamCenterY { get; init; }
    /// <summary>omega_start: the rotation angle at the start of image 0, degrees.</summary>
    [JsonPropertyName("omega_start")] public double? OmegaStart { get; init; }
    /// <summary>omega_increment: the rotation during each image, degrees; 0: no rotation.</summary>
    [JsonPropertyName("omega_increment")] public double? OmegaIncrement { get; init; }
    /// <summary>sample_name.</summary>
    [JsonPropertyName("sample_name")] public string? SampleName { get; init; }
    /// <summary>count_time: exposure of one image, s.</summary>
    [JsonPropertyName("count_time")] public double? CountTime { get; init; }
    /// <summary>frame_time: time from one image's start to the next one's, s.</summary>
    [JsonPropertyName("frame_time")] public double? FrameTime { get; init; }

    /// <summary>Whether <paramref name="key"/> is one of the request metadata keys this record takes.</summary>
    public static bool IsKey(string key) => Keys.Contains(key);

    /// <summary>
    /// The values of a request's <c>metadata</c> object (other keys are ignored here), checked:
    /// numbers where numbers are due, in range (which catches the common wrong unit: a distance in m,
    /// an energy in eV), photon_energy converted to a wavelength and, when both are given, equal to
    /// it within 0.1 %. A problem is a <see cref="FormatException"/> with one line naming the key.
    /// </summary>
    public static NxmxRun FromMetadata(JsonElement metadata)
    {
        double? wavelength = Number(metadata, "wavelength", "Å", MinWavelength, MaxWavelength);
        double? energy = Number(metadata, "photon_energy", "keV", HcKeVAngstrom / MaxWavelength, HcKeVAngstrom / MinWavelength);
        if (energy is { } e)
        {
            double fromEnergy = HcKeVAngstrom / e;
            if (wavelength is { } w && Math.Abs(w - fromEnergy) > 1e-3 * fromEnergy)
                throw new FormatException($"metadata.photon_energy: {F(e)} keV is a wavelength of {F(fromEnergy)} Å, but metadata.wavelength is {F(w)} Å "
                    + "(give one of them, or both alike within 0.1 %)");
            wavelength ??= fromEnergy;
        }
        var run = new NxmxRun
        {
            WavelengthAngstrom = wavelength,
            DetectorDistanceMm = Number(metadata, "detector_distance", "mm", MinDistance, MaxDistance),
            BeamCenterX = Number(metadata, "beam_center_x", "pixels", -1e6, 1e6),
            BeamCenterY = Number(metadata, "beam_center_y", "pixels", -1e6, 1e6),
            OmegaStart = Number(metadata, "omega_start", "degrees", -1e5, 1e5),
            OmegaIncrement = Number(metadata, "omega_increment", "degrees", -360, 360),
            SampleName = Text(metadata, "sample_name"),
            CountTime = Time(metadata, "count_time"),
            FrameTime = Time(metadata, "frame_time"),
        };
        if (run.Check() is { } error)
            throw new FormatException(error);
        return run;
    }

    /// <summary>
    /// What is wrong with these values (a message naming the key, as a request would say it), or
    /// null: the checks of <see cref="FromMetadata"/>, for values that came another way.
    /// </summary>
    public string? Check()
    {
        return OutOfRange("wavelength", WavelengthAngstrom, "Å", MinWavelength, MaxWavelength)
            ?? OutOfRange("detector_distance", DetectorDistanceMm, "mm", MinDistance, MaxDistance)
            ?? OutOfRange("beam_center_x", BeamCenterX, "pixels", -1e6, 1e6)
            ?? OutOfRange("beam_center_y", BeamCenterY, "pixels", -1e6, 1e6)
            ?? OutOfRange("omega_start", OmegaStart, "degrees", -1e5, 1e5)
            ?? OutOfRange("omega_increment", OmegaIncrement, "degrees", -360, 360)
            ?? TimeProblem("count_time", CountTime)
            ?? TimeProblem("frame_time", FrameTime)
            ?? (CountTime is { } c && FrameTime is { } f && c > f
                ? $"metadata.count_time: {F(c)} s is longer than metadata.frame_time {F(f)} s (an exposure fits in its frame)"
                : null);
    }

    private static string? OutOfRange(string key, double? value, string unit, double min, double max) =>
        value is { } v && !(v >= min && v <= max) ? $"metadata.{key}: {F(v)} is out of range {F(min)}..{F(max)} {unit}" : null;

    private static string? TimeProblem(string key, double? value) =>
        value is { } v && !(v > 0 && v <= 86_400) ? $"metadata.{key}: {F(v)} must be above 0 and at most 86400 s" : null;

    private static double? Number(JsonElement metadata, string key, string unit, double min, double max)
    {
        if (!metadata.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || !double.IsFinite(d))
            throw new FormatException($"metadata.{key}: must be a number ({unit}), got {Describe(v)}");
        return OutOfRange(key, d, unit, min, max) is { } problem ? throw new FormatException(problem) : d;
    }

    private static double? Time(JsonElement metadata, string key)
    {
        double? t = Number(metadata, key, "s", double.MinValue, double.MaxValue);
        return TimeProblem(key, t) is { } problem ? throw new FormatException(problem) : t;
    }

    private static string? Text(JsonElement metadata, string key)
    {
        if (!metadata.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new FormatException($"metadata.{key}: must be a string, got {Describe(v)}");
    }

    private static string Describe(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => $"the string {v.GetRawText()}",
        JsonValueKind.Number => $"the number {v.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {v.GetRawText()}",
        JsonValueKind.Array => "an array",
        _ => "an object",
    };

    private static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
