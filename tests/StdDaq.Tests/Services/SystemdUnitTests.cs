using System.Text.RegularExpressions;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Services;

/// <summary>
/// The systemd units of systemd/: systemd's own checker accepts each (with the programs where
/// the units expect them: the tests' build stands in for /opt/std-daq), each starts one of our
/// programs with the config, restarts it on failure but not on a bad config, and every variable a
/// unit uses is set in the example environment file.
/// </summary>
public sealed class SystemdUnitTests
{
    private static readonly string Units = Path.Combine(TestEnv.RepoRoot, "systemd");

    public static TheoryData<string, string> UnitFiles() => new()
    {
        { "std-daq-udp-recv@.service", "StdUdpRecv" },
        { "std-daq-assembler.service", "StdAssembler" },
        { "std-daq-writer-agent.service", "WriterAgent" },
        { "std-daq-writer.service", "StdH5Writer" },
        { "std-daq-stream-send.service", "StdStreamSend" },
        { "std-daq-stream-recv.service", "StdStreamRecv" },
    };

    [Theory]
    [MemberData(nameof(UnitFiles))]
    public void SystemdAcceptsTheUnitAndItRunsOurProgramAsASupervisedService(string unit, string program)
    {
        if (!File.Exists("/usr/bin/systemd-analyze"))
            Assert.Fail("systemd-analyze (package systemd) is not installed");
        string text = File.ReadAllText(Path.Combine(Units, unit));
        Assert.Matches($@"(?m)^ExecStart=/opt/std-daq/{program} /etc/std-daq/config\.json", text);
        Assert.Matches("(?m)^Restart=on-failure$", text);
        Assert.Matches("(?m)^RestartPreventExitStatus=2$", text);
        Assert.Matches("(?m)^User=daq$", text);
        Assert.Matches("(?m)^WantedBy=std-daq.target$", text);

        using var env = new TestEnv();
        File.Copy(Path.Combine(Units, "std-daq.target"), Path.Combine(env.Dir, "std-daq.target"));
        string copy = Path.Combine(env.Dir, unit);
        File.WriteAllText(copy, text.Replace("/opt/std-daq/", AppContext.BaseDirectory));
        string instance = unit.Contains('@') ? unit.Replace("@.", "@0.") : unit;
        var r = Programs.RunProcess("systemd-analyze", ["verify", instance], workingDirectory: env.Dir);
        Assert.True(r.ExitCode == 0 && r.Stderr.Trim().Length == 0 && r.Stdout.Trim().Length == 0,
            $"systemd-analyze verify {unit} exited {r.ExitCode}:\n{r.Stdout}{r.Stderr}");
        // The same check fails a unit whose program is not there.
        File.WriteAllText(copy, text.Replace("/opt/std-daq/", Path.Combine(env.Dir, "missing") + "/"));
        Assert.NotEqual(0, Programs.RunProcess("systemd-analyze", ["verify", instance], workingDirectory: env.Dir).ExitCode);
    }

    [Fact]
    public void EveryVariableTheUnitsUseIsInTheEnvironmentFile()
    {
        var set = File.ReadAllLines(Path.Combine(Units, "std-daq.env"))
            .Select(l => Regex.Match(l, @"^#?([A-Z_]+)=")).Where(m => m.Success).Select(m => m.Groups[1].Value).ToHashSet();
        var used = Directory.GetFiles(Units, "*.service")
            .SelectMany(f => Regex.Matches(File.ReadAllText(f), @"\$\{?([A-Z_]+)\}?").Select(m => m.Groups[1].Value)).ToHashSet();
        Assert.NotEmpty(used);
        Assert.Empty(used.Except(set));
        Assert.Superset(new HashSet<string> { "BROKER_HOST", "REDIS_HOST", "REDIS_PORT", "REDIS_SKIP" }, set);
    }
}
