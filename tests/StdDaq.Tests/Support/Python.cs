using System.Diagnostics;

namespace StdDaq.Tests.Support;

/// <summary>Runs a script with Debian's python3 (h5py, zmq), the tests' independent reader and writer.</summary>
public static class Python
{
    public static string Run(TestEnv env, string script, params string[] args)
    {
        string path = Path.Combine(env.Dir, $"script{Guid.NewGuid():N}.py");
        File.WriteAllText(path, script);
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(path);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"python3 {path} did not finish");
        }
        Assert.True(p.ExitCode == 0, $"python3 {path} exited {p.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }
}
