using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace StdDaq.Cli.Sim;

/// <summary>One packet the simulator treated specially: (module, image id, packet number).</summary>
public readonly record struct PacketRef(int Module, ulong ImageId, int Packet)
{
    public override string ToString() => $"m{Module}:{ImageId}:{Packet}";
}

/// <summary>Exactly what the simulator sent, so a test can compare a receiver's counts.</summary>
public sealed class SimReport
{
    public long Frames { get; set; }
    public long Packets { get; set; }
    public long Datagrams { get; set; }
    public long Bytes { get; set; }
    public double ElapsedSeconds { get; set; }
    public long Refused { get; set; }
    public List<PacketRef> Lost { get; init; } = new();
    public List<PacketRef> Truncated { get; init; } = new();
    public List<PacketRef> Duplicated { get; init; } = new();
    /// <summary>Pairs sent in swapped order: Packet was sent after Packet + 1.</summary>
    public List<PacketRef> Reordered { get; init; } = new();

    public double FrameRate => ElapsedSeconds > 0 ? Frames / ElapsedSeconds : 0;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static SimReport FromJson(string json) => JsonSerializer.Deserialize<SimReport>(json, Json)!;

    public string Summary()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"sim: sent {Frames} frames, {Packets} packets in {Datagrams} datagrams, {Bytes} bytes in {ElapsedSeconds:F2} s ({FrameRate:F1} frames/s)");
        sb.AppendLine($"sim: lost {Lost.Count}, truncated {Truncated.Count}, duplicated {Duplicated.Count}, reordered pairs {Reordered.Count}");
        Append(sb, "lost", Lost);
        Append(sb, "truncated", Truncated);
        Append(sb, "duplicated", Duplicated);
        Append(sb, "reordered", Reordered);
        return sb.ToString().TrimEnd();
    }

    private static void Append(StringBuilder sb, string what, List<PacketRef> list)
    {
        if (list.Count > 0)
            sb.AppendLine($"sim: {what} (module:image:packet): {string.Join(' ', list)}");
    }
}
