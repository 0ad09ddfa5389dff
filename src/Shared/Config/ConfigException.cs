namespace StdDaq.Shared.Config;

/// <summary>A config file that cannot be used. Services exit with <see cref="ExitCode"/>.</summary>
public sealed class ConfigException(string message) : Exception(message)
{
    public const int ExitCode = 2;
}
