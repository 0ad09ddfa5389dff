namespace StdDaq.Tests.Support;

/// <summary>Runs a script with Debian's python3 (h5py, zmq), the tests' independent reader and writer.</summary>
public static class Python
{
    public static string Run(TestEnv env, string script, params string[] args)
    {
        string path = Path.Combine(env.Dir, $"script{Guid.NewGuid():N}.py");
        File.WriteAllText(path, script);
        var r = Programs.RunProcess("/usr/bin/python3", [path, .. args]);
        Assert.True(r.ExitCode == 0, $"python3 {path} exited {r.ExitCode}: {r.Stderr}");
        return r.Stdout;
    }
}
