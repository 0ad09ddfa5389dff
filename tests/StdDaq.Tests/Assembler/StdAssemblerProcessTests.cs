using StdDaq.Tests.Support;

namespace StdDaq.Tests.Assembler;

public class StdAssemblerProcessTests
{
    [Fact]
    public void BadConfig_ExitCode2AndOneLineNamingTheKey()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "bad.json");
        File.WriteAllText(path, env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, new() { [0] = [0, 0, 1023, 511] }, 40000).Replace("\"n_modules\":1", "\"n_modules\":\"one\""));
        var r = Programs.Run("StdAssembler", [path]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("n_modules", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void ConvertedJungfrau_WithoutGainsAndPedestals_ExitCode2NamingTheKey()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "jf.json");
        File.WriteAllText(path, env.ConfigJson("jungfrau-converted", 1, 16, 1024, 512, new() { [0] = [0, 0, 1023, 511] }, 40000));
        var r = Programs.Run("StdAssembler", [path]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("gains_and_pedestals", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.False(File.Exists($"/dev/shm/{env.Name}-image"), "no image buffer may be left behind");
    }

    [Fact]
    public void ConvertedJungfrau_GainsFileNotHdf5_ExitCode1OneLine()
    {
        using var env = new TestEnv();
        string path = Path.Combine(env.Dir, "jf.json");
        File.WriteAllText(path, env.ConfigJson("jungfrau-converted", 1, 16, 1024, 512, new() { [0] = [0, 0, 1023, 511] }, 40000));
        string gains = Path.Combine(env.Dir, "gains.h5");
        File.WriteAllText(gains, "{}");
        var r = Programs.Run("StdAssembler", [path, "--gains-and-pedestals", gains]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"{gains}: not a readable HDF5 file", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.False(File.Exists($"/dev/shm/{env.Name}-image"), "no image buffer may be left behind");
    }

    [Fact]
    public void UnknownOption_ExitCode2WithUsage()
    {
        var r = Programs.Run("StdAssembler", ["x.json", "--frobnicate"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("usage: StdAssembler", r.Stderr);
    }
}
