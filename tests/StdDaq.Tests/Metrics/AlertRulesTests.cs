using StdDaq.Tests.Support;

namespace StdDaq.Tests.Metrics;

/// <summary>
/// The alert rules of monitoring/prometheus (loss, kernel drops, ring overrun, writer behind,
/// service down, broker disconnected) through Prometheus's own checker and rule tests: each fires
/// on what it is for, with its labels and summary, and not on a counter reset.
/// </summary>
public sealed class AlertRulesTests
{
    private static readonly string Dir = Path.Combine(TestEnv.RepoRoot, "monitoring", "prometheus");

    private static Programs.Result Promtool(params string[] args)
    {
        if (!File.Exists("/usr/bin/promtool"))
            Assert.Fail("promtool is not installed (Debian package prometheus; scripts/setup.sh installs it)");
        return Programs.RunProcess("/usr/bin/promtool", args);
    }

    [Fact]
    public void AlertRules_PassPromtoolsCheckAndTheirTests()
    {
        var check = Promtool("check", "rules", Path.Combine(Dir, "alerts.yml"));
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
        Assert.Contains("SUCCESS: 6 rules found", check.Stdout);
        var test = Promtool("test", "rules", Path.Combine(Dir, "alerts_test.yml"));
        Assert.True(test.ExitCode == 0, test.Stdout + test.Stderr);
    }

    [Fact]
    public void AlertRuleTests_AWrongExpectationFails()
    {
        using var env = new TestEnv();
        File.Copy(Path.Combine(Dir, "alerts.yml"), Path.Combine(env.Dir, "alerts.yml"));
        string test = File.ReadAllText(Path.Combine(Dir, "alerts_test.yml"));
        string wrong = test.Replace("40 packets lost", "41 packets lost");
        Assert.NotEqual(test, wrong);
        File.WriteAllText(Path.Combine(env.Dir, "alerts_test.yml"), wrong);
        var r = Promtool("test", "rules", Path.Combine(env.Dir, "alerts_test.yml"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("StdDaqPacketLoss", r.Stderr + r.Stdout);
    }
}
