namespace StdDaq.Shared.Memory;

/// <summary>A ring segment that cannot be created or attached (missing, wrong layout, no space).</summary>
public sealed class RingBufferException(string message) : Exception(message);
