namespace StdDaq.Cli.Sim;

/// <summary>What `std-daq sim` sends. Probabilities are per packet, decided with a seeded RNG.</summary>
public sealed record SimOptions
{
    /// <summary>Frames per second per module; 0 = as fast as possible.</summary>
    public double Rate { get; init; } = 100;
    /// <summary>Frames to send per module (used when Seconds is null).</summary>
    public long Frames { get; init; } = 100;
    public double? Seconds { get; init; }
    /// <summary>Modules to send; null = all.</summary>
    public IReadOnlyList<int>? Modules { get; init; }
    public ulong StartId { get; init; } = 1;
    public double Loss { get; init; }
    public double Duplicate { get; init; }
    public double Reorder { get; init; }
    public double Truncate { get; init; }
    public int Seed { get; init; } = 1;
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>Packets per paced burst (the frame period is split evenly between bursts).</summary>
    public int Burst { get; init; } = 16;
    /// <summary>A capture directory to replay instead of the synthetic pattern.</summary>
    public string? Replay { get; init; }
}
