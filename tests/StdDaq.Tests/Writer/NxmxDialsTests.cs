using StdDaq.Agent.Broker;
using StdDaq.Shared.Config;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Writer;

/// <summary>
/// Files written through the whole writer path (request → agent → writer), imported by DIALS as
/// a user would (dials.import, dials.show): one sweep each, with the request's geometry. Several
/// seconds each (DIALS starts slowly), hence the Slow category; scripts/test.sh runs them.
/// </summary>
[Collection("broker")]
[Trait("Category", "Slow")]
public sealed class NxmxDialsTests(BrokerFixture broker)
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);
    private const int N = 10;

    [Fact]
    public async Task DialsImport_RawJungfrau_OneSweepWithTheRequestsGeometry()
    {
        using var env = new TestEnv();
        await using var p = await WriterPipeline.StartAsync(env, broker.Url, tweak: c => NxmxTests.TwoModulesWithGap(c));
        string file = Path.Combine(env.Dir, "raw.h5");

        var final = await p.WriteAsync(WriterPipeline.Body(file, N, NxmxTests.Geometry), Long);

        Assert.True(final.Action == BrokerProtocol.ActionSuccess, $"{final.Action}: {final.Message}");
        var d = Dials.Run(env, file);
        AssertGeometry(d, (520.30, 250.70), 1.0, 10);
        // Module 1 (flipped in the config) lies 548 rows below module 0, rows running down as in the image.
        Assert.Equal(2, d.Panels.Count);
        AssertPanel(d.Panels[0], (1024, 512), (-520.3 * 0.075, 250.7 * 0.075));
        AssertPanel(d.Panels[1], (1024, 512), (-520.3 * 0.075, (250.7 - 548) * 0.075));
        Assert.All(d.Panels, panel => Assert.Equal(0.32, panel.Thickness, 6));
    }

    [Fact]
    public async Task DialsImport_ConvertedJungfrau_OneSweepWithTheRequestsGeometry()
    {
        using var env = new TestEnv();
        string gains = Path.Combine(env.Dir, "gains.h5");
        Python.Run(env, NxmxTests.Calibration, gains, "2");
        await using var p = await WriterPipeline.StartAsync(env, broker.Url,
            tweak: c => NxmxTests.TwoModulesWithGap(c, "jungfrau-converted") with { GainsAndPedestals = gains });
        string file = Path.Combine(env.Dir, "converted.h5");
        // The photon energy instead of the wavelength: 12.4 keV is 0.999873 Å.
        string metadata = NxmxTests.Geometry.Replace("\"wavelength\": 1.0", "\"photon_energy\": 12.4");

        var final = await p.WriteAsync(WriterPipeline.Body(file, N, metadata), Long);

        Assert.True(final.Action == BrokerProtocol.ActionSuccess, $"{final.Action}: {final.Message}");
        var d = Dials.Run(env, file);
        AssertGeometry(d, (520.30, 250.70), 12.398419843320026 / 12.4, 10);
        Assert.Equal(2, d.Panels.Count);
        AssertPanel(d.Panels[1], (1024, 512), (-520.3 * 0.075, (250.7 - 548) * 0.075));
        var sums = Dials.PanelSums(env, d, file, N - 1);
        Assert.All(sums, s => Assert.Equal(s[1], s[0], 1e-3 * Math.Abs(s[1]) + 1e-3));
        // The calibration's two masked pixels, one per module, are masked in DIALS too (pixel_mask bit 1).
        Assert.Equal([1.0, 1.0], sums.Select(s => s[3]));
    }

    [Fact]
    public async Task DialsImport_EigerBitshuffleLz4FromRealCaptures_OneSweepAndDxtbxReadsThePixels()
    {
        using var env = new TestEnv();
        env.Ring("2");
        env.Ring("3");
        var eiger = DetectorConfigLoader.Load(Path.Combine(TestEnv.SharedData, "eiger-500k-32bit", "detector.json"));
        // The real captures: 4 ports × 5 frames, in file then frame order; image id i gets frame (i - 1) % 5.
        var frames = EigerFrames.All;
        await using var p = await WriterPipeline.StartAsync(env, broker.Url,
            tweak: c => eiger with
            {
                DetectorName = c.DetectorName, FrameBufferSlots = c.FrameBufferSlots, ImageBufferSlots = c.ImageBufferSlots,
                StatsCollectionPeriod = c.StatsCollectionPeriod,
            },
            frames: (m, id, frame) => frames[m * 5 + (int)((id - 1) % 5)].CopyTo(frame));
        string file = Path.Combine(env.Dir, "eiger.h5");
        string metadata = "\"compression\": \"bitshuffle-lz4\", \"metadata\": {\"wavelength\": 1.0, \"detector_distance\": 150.0, "
            + "\"beam_center_x\": 300.5, \"beam_center_y\": 100.25, \"omega_start\": 0, \"omega_increment\": 0.2, \"frame_time\": 0.005}";

        var final = await p.WriteAsync(WriterPipeline.Body(file, N, metadata), Long);

        Assert.True(final.Action == BrokerProtocol.ActionSuccess, $"{final.Action}: {final.Message}");
        Assert.True(H5py.Read(env, file).GetProperty("filters_by_id").TryGetProperty("32008", out _), "not bitshuffle-LZ4");
        var d = Dials.Run(env, file);
        Assert.Equal(1, d.Sweeps);
        Assert.Equal(N, d.Images);
        Assert.Equal((300.50, 100.25), d.BeamCentrePx);
        Assert.Equal((0, 0.2), d.Oscillation);
        // The ports are not whole image rows, so the file has one module spanning the image (see
        // NxmxDetector.From); the gaps inside it are masked: 2 rows and 6 columns (chip gaps and
        // the gap between the halves), 6 × 514 + 2 × 1030 - 12 pixels.
        var panel = Assert.Single(d.Panels);
        Assert.Equal(150, panel.Distance, 6);
        Assert.Equal(0.45, panel.Thickness, 6);
        Assert.Equal(-1, panel.TrustedRange[0]); // underload_value 0: counts; no saturation_value at 32 bits
        AssertPanel(panel, (1030, 514), (-300.5 * 0.075, 100.25 * 0.075));
        var sums = Dials.PanelSums(env, d, file, 0);
        var s = Assert.Single(sums);
        Assert.Equal(s[1], s[0]);
        Assert.True(s[1] > 0, "real counts sum to 0");
        Assert.Equal(6 * 514 + 2 * 1030 - 12, s[3]);
    }

    private static void AssertGeometry(Dials.Import d, (double X, double Y) centre, double wavelength, double omegaStart)
    {
        Assert.True(d.Sweeps == 1 && d.Stills == 0, $"{d.Sweeps} sweeps, {d.Stills} stills:\n{d.Show}");
        Assert.Equal(N, d.Images);
        Assert.Equal(centre, d.BeamCentrePx);
        Assert.Equal(wavelength, d.Wavelength, 5);
        Assert.Equal(omegaStart, d.Oscillation.Start, 6);
        Assert.Equal(0.1, d.Oscillation.Step, 6);
        Assert.All(d.Panels, panel =>
        {
            Assert.Equal(120, panel.Distance, 6);
            Assert.Equal([0.075, 0.075], panel.PixelSize);
            Assert.Equal("Si", panel.Material);
        });
    }

    /// <summary>A panel's size (fast, slow), the (x, y) of its origin in DIALS' frame at -distance, and rows running down.</summary>
    private static void AssertPanel(Dials.Panel panel, (int Fast, int Slow) size, (double X, double Y) origin)
    {
        Assert.Equal([size.Fast, size.Slow], panel.ImageSize);
        Assert.Equal(origin.X, panel.Origin[0], 1e-3);
        Assert.Equal(origin.Y, panel.Origin[1], 1e-3);
        Assert.Equal(-panel.Distance, panel.Origin[2], 6);
        Assert.Equal([0, -1, 0], panel.SlowAxis);
    }
}
