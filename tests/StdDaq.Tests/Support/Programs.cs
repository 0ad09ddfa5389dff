using System.Diagnostics;

namespace StdDaq.Tests.Support;

/// <summary>Runs one of our programs (built next to the tests) as a separate process.</summary>
public static class Programs
{
    public static string Dll(string program) => Path.Combine(AppContext.BaseDirectory, program + ".dll");

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(string program, IEnumerable<string> args, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? env = null) =>
        RunProcess("dotnet", [Dll(program), .. args], timeout, env);

    /// <summary>
    /// Runs any executable to its end, capturing both streams; kills it after the timeout (default 60 s).
    /// <paramref name="env"/> adds or replaces environment variables of the child.
    /// </summary>
    public static Result RunProcess(string file, IEnumerable<string> args, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? env = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory != null)
            psi.WorkingDirectory = workingDirectory;
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
            psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
