using System.Text.Json;
using StdDaq.Shared.Streams;

namespace StdDaq.Tests.Shared;

/// <summary>A write request's NXmx metadata keys, as the agent checks them.</summary>
public class NxmxRunTests
{
    private static NxmxRun From(string metadata) => NxmxRun.FromMetadata(JsonDocument.Parse(metadata).RootElement);

    [Fact]
    public void FromMetadata_EveryKey_TakesTheValuesAndIgnoresOtherKeys()
    {
        var r = From("""
            {"wavelength": 0.97, "detector_distance": 120.5, "beam_center_x": 520.3, "beam_center_y": -3, "omega_start": -90,
             "omega_increment": 0.25, "sample_name": "lysozyme", "count_time": 0.001, "frame_time": 0.002, "notes": [1, 2]}
            """);
        Assert.Equal(new NxmxRun
        {
            WavelengthAngstrom = 0.97, DetectorDistanceMm = 120.5, BeamCenterX = 520.3, BeamCenterY = -3, OmegaStart = -90,
            OmegaIncrement = 0.25, SampleName = "lysozyme", CountTime = 0.001, FrameTime = 0.002,
        }, r);
        Assert.Equal(NxmxRun.None, From("""{"notes": "x", "wavelength": null}"""));
    }

    [Fact]
    public void FromMetadata_PhotonEnergy_BecomesTheWavelength()
    {
        Assert.Equal(NxmxRun.HcKeVAngstrom / 12.4, From("""{"photon_energy": 12.4}""").WavelengthAngstrom);
        // Both, alike within 0.1 %: the wavelength as given.
        Assert.Equal(1.0, From("""{"photon_energy": 12.4, "wavelength": 1.0}""").WavelengthAngstrom);
    }

    [Theory]
    [InlineData("""{"wavelength": "1.0"}""", "metadata.wavelength: must be a number (Å), got the string \"1.0\"")]
    [InlineData("""{"wavelength": 0}""", "metadata.wavelength: 0 is out of range 0.01..100 Å")]
    [InlineData("""{"photon_energy": 12400}""", "metadata.photon_energy: 12400 is out of range 0.123984..1239.84 keV")]
    [InlineData("""{"photon_energy": 12.4, "wavelength": 1.5}""", "metadata.photon_energy: 12.4 keV is a wavelength of 0.999873 Å, but metadata.wavelength is 1.5 Å")]
    [InlineData("""{"detector_distance": -120}""", "metadata.detector_distance: -120 is out of range 1..100000 mm")]
    [InlineData("""{"detector_distance": 0.12}""", "metadata.detector_distance: 0.12 is out of range 1..100000 mm")]
    [InlineData("""{"detector_distance": true}""", "metadata.detector_distance: must be a number (mm), got the boolean true")]
    [InlineData("""{"beam_center_x": [520]}""", "metadata.beam_center_x: must be a number (pixels), got an array")]
    [InlineData("""{"omega_increment": 720}""", "metadata.omega_increment: 720 is out of range -360..360 degrees")]
    [InlineData("""{"sample_name": 5}""", "metadata.sample_name: must be a string, got the number 5")]
    [InlineData("""{"frame_time": 0}""", "metadata.frame_time: 0 must be above 0 and at most 86400 s")]
    [InlineData("""{"count_time": 0.02, "frame_time": 0.01}""", "metadata.count_time: 0.02 s is longer than metadata.frame_time 0.01 s")]
    public void FromMetadata_WrongTypeOrValue_OneLineNamingTheKey(string metadata, string message)
    {
        var e = Assert.Throws<FormatException>(() => From(metadata));
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StoreStreamMessage_CarriesTheRunAsJson()
    {
        var run = new NxmxRun { WavelengthAngstrom = 1, DetectorDistanceMm = 120, SampleName = "x" };
        var m = new StoreStreamMessage { OutputFile = "/f.h5", RunId = 1, NImages = 2, ImageId = 3, IImage = 0, Nxmx = run };
        string json = System.Text.Encoding.UTF8.GetString(m.ToJson());
        Assert.Contains("\"nxmx\":{\"wavelength\":1,\"detector_distance\":120,\"sample_name\":\"x\"}", json);
        Assert.Equal(run, StoreStreamMessage.Parse(m.ToJson(), out _)!.Nxmx);
    }
}
