using StdDaq.Shared.Packets;

namespace StdDaq.Benchmarks.Compression;

/// <summary>
/// The 20 real EIGER 500k 32-bit module frames (512 × 256 uint32) of ../shared/data/eiger-500k-32bit:
/// each file's packets (u64 LE length + 48-byte SLS header + 4096 bytes) placed by packet number,
/// 5 frames × 128 packets per file. Read with CaptureFrames, as the tests' EigerFrames.
/// </summary>
public static class EigerFrames
{
    public const int FrameBytes = 512 * 256 * sizeof(uint);
    public const int Count = 20;
    private const int PayloadBytes = 4096, PacketsPerFrame = 128;

    public static string Dir
    {
        get
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d != null && !File.Exists(Path.Combine(d.FullName, "StdDaq.slnx")))
                d = d.Parent;
            if (d == null)
                throw new DirectoryNotFoundException($"no StdDaq.slnx above {AppContext.BaseDirectory}");
            return Path.GetFullPath(Path.Combine(d.FullName, "..", "shared", "data", "eiger-500k-32bit"));
        }
    }

    public static List<byte[]> Load()
    {
        var frames = CaptureFrames.Load(Directory.GetFiles(Dir, "*.dat").Order(StringComparer.Ordinal), PayloadBytes, PacketsPerFrame);
        if (frames.Count != Count)
            throw new InvalidDataException($"{Dir}: {frames.Count} frames, expected {Count}");
        return frames;
    }
}
