namespace StdDaq.Shared.Memory;

/// <summary>
/// The live processes that map a /dev/shm file or hold it open, read from /proc (maps and fd links).
/// Tells a half-created segment whose creator died (nobody uses it: replace it) from one still
/// being made, and keeps `std-daq shm rm` from removing a ring a running service uses.
/// Processes of other users are visible only to root.
/// </summary>
public static class ShmUsers
{
    /// <summary>
    /// Pids that map or have open <c>/dev/shm/&lt;name&gt;</c>, with their command names; this process
    /// only with <paramref name="includeSelf"/>.
    /// </summary>
    public static List<(int Pid, string Command)> Of(string name, bool includeSelf = false)
    {
        string path = ShmRing.PathOf(name);
        int self = Environment.ProcessId;
        var users = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(dir), out int pid) || (pid == self && !includeSelf))
                continue;
            try
            {
                if (Maps(dir, path) || HasOpen(dir, path))
                    users.Add((pid, Command(dir)));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended while we looked, or is not ours to look at.
            }
        }
        return users;
    }

    private static bool Maps(string dir, string path)
    {
        foreach (var line in File.ReadLines(dir + "/maps"))
        {
            // "... /dev/shm/<name>" (a removed file ends in " (deleted)": that is another object).
            int at = line.IndexOf(" /dev/shm/", StringComparison.Ordinal);
            if (at >= 0 && line.AsSpan(at + 1).SequenceEqual(path))
                return true;
        }
        return false;
    }

    private static bool HasOpen(string dir, string path)
    {
        foreach (var fd in Directory.EnumerateFileSystemEntries(dir + "/fd"))
            if (new FileInfo(fd).LinkTarget == path)
                return true;
        return false;
    }

    private static string Command(string dir)
    {
        try
        {
            // The program's name: for `dotnet X.dll` the dll is more telling than "dotnet".
            var args = File.ReadAllText(dir + "/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            var dll = args.FirstOrDefault(a => a.EndsWith(".dll", StringComparison.Ordinal));
            return System.IO.Path.GetFileNameWithoutExtension(dll ?? (args.Length > 0 ? args[0] : "?"));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    /// <summary>"pid 1234 (StdUdpRecv), pid 5678 (std-daq)", for messages.</summary>
    public static string Describe(IEnumerable<(int Pid, string Command)> users) =>
        string.Join(", ", users.Select(u => $"pid {u.Pid} ({u.Command})"));
}
