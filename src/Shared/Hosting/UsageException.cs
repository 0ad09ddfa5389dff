namespace StdDaq.Shared.Hosting;

/// <summary>Bad command-line usage: reported as one line and a usage line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
