using StdDaq.Shared.Packets;

namespace StdDaq.Tests.Support;

/// <summary>
/// The real EIGER 500k 32-bit captures in ../shared/data/eiger-500k-32bit as module frames: each
/// file's packets (u64 LE length + 48-byte SLS header + 4096 bytes) placed by packet number into
/// frames of 512 × 256 uint32 (128 packets), in file then frame order: 4 files × 5 frames.
/// </summary>
public static class EigerFrames
{
    public const int Width = 512, Height = 256, PacketsPerFrame = 128, PayloadBytes = 4096;
    public const int FrameBytes = Width * Height * sizeof(uint);

    private static readonly Lazy<IReadOnlyList<byte[]>> s_frames = new(Load);

    public static string Dir => Path.Combine(TestEnv.SharedData, "eiger-500k-32bit");

    public static IReadOnlyList<byte[]> All => s_frames.Value;

    private static IReadOnlyList<byte[]> Load()
    {
        var frames = CaptureFrames.Load(Directory.GetFiles(Dir, "*.dat").Order(StringComparer.Ordinal), PayloadBytes, PacketsPerFrame);
        Assert.Equal(20, frames.Count);
        return frames;
    }
}
