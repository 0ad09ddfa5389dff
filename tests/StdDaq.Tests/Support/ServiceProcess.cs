using System.Diagnostics;
using StdDaq.Shared.Interop;

namespace StdDaq.Tests.Support;

/// <summary>
/// One of our services running as its own process (dotnet X.dll ...), its output collected line by
/// line; stopped with SIGTERM (SIGKILL if it does not stop) and killed at dispose.
/// </summary>
public sealed class ServiceProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = new();
    // stdout and stderr until each reaches its end (the process and whatever inherited them ended).
    private int _openStreams = 2;

    public string Program { get; }
    public int Pid => _process.Id;

    public ServiceProcess(string program, params string[] args)
        : this(program, DotnetCommand(program, args))
    {
    }

    /// <summary>One of our programs with these environment variables set.</summary>
    public static ServiceProcess WithEnvironment(string program, IReadOnlyDictionary<string, string> environment, params string[] args) =>
        new(program, DotnetCommand(program, args), environment);

    private static IReadOnlyList<string> DotnetCommand(string program, string[] args) => ["dotnet", Programs.Dll(program), .. args];

    /// <summary>Any command line (e.g. one of ours run on a test server through nsenter), named <paramref name="program"/> in messages.</summary>
    public ServiceProcess(string program, IReadOnlyList<string> commandLine, IReadOnlyDictionary<string, string>? environment = null)
    {
        Program = program;
        var psi = new ProcessStartInfo(commandLine[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
            psi.Environment[k] = v;
        foreach (var a in commandLine.Skip(1))
            psi.ArgumentList.Add(a);
        _process = new Process { StartInfo = psi };
        _process.OutputDataReceived += (_, e) => Add(e.Data);
        _process.ErrorDataReceived += (_, e) => Add(e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>A line of output, or the end of one of the two streams (null); wakes <see cref="WaitForLine"/>.</summary>
    private void Add(string? line)
    {
        lock (_lines)
        {
            if (line != null)
                _lines.Add(line);
            else
                _openStreams--;
            Monitor.PulseAll(_lines);
        }
    }

    public string Output
    {
        get
        {
            lock (_lines)
                return string.Join('\n', _lines);
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>
    /// Waits until a line contains <paramref name="text"/>, woken by each line that comes; false at
    /// the timeout or when the output ended (the process exited) without it.
    /// </summary>
    public bool WaitForLine(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        int seen = 0;
        lock (_lines)
        {
            while (true)
            {
                for (; seen < _lines.Count; seen++)
                    if (_lines[seen].Contains(text, StringComparison.Ordinal))
                        return true;
                var left = deadline - DateTime.UtcNow;
                if (_openStreams == 0 || left <= TimeSpan.Zero || !Monitor.Wait(_lines, left))
                    return false;
            }
        }
    }

    /// <summary>Waits for the process to end; when it did, its output has been read to the end.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
            return false;
        _process.WaitForExit(); // the asynchronous readers are done
        return true;
    }

    /// <summary>SIGTERM, as a supervisor stops a service; true if it exited within the timeout.</summary>
    public bool Terminate(TimeSpan timeout)
    {
        if (_process.HasExited)
            return true;
        Libc.kill(_process.Id, 15);
        bool stopped = _process.WaitForExit(timeout);
        if (stopped)
            _process.WaitForExit();
        return stopped;
    }

    public void Kill()
    {
        if (!_process.HasExited)
            _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        try
        {
            Kill();
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
