namespace StdDaq.Shared.Config;

/// <summary>A config file that cannot be used. Services exit with <see cref="ExitCode"/>.</summary>
public sealed class ConfigException(string message) : Exception(message)
{
    /// <summary>The exit code of a service that stops on a bad config (also on bad usage).</summary>
    public const int ExitCode = 2;
}
