using System.Buffers.Binary;

namespace StdDaq.Benchmarks.Compression;

/// <summary>
/// The 20 real EIGER 500k 32-bit module frames (512 × 256 uint32) of ../shared/data/eiger-500k-32bit:
/// each file's packets (u64 LE length + 48-byte SLS header + 4096 bytes) placed by packet number,
/// 5 frames × 128 packets per file. Same reading as the tests' EigerFrames.
/// </summary>
public static class EigerFrames
{
    public const int FrameBytes = 512 * 256 * sizeof(uint);
    public const int Count = 20;
    private const int HeaderBytes = 48, PayloadBytes = 4096, PacketsPerFrame = 128;

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
        var frames = new List<byte[]>();
        foreach (string file in Directory.GetFiles(Dir, "*.dat").Order(StringComparer.Ordinal))
        {
            byte[] bytes = File.ReadAllBytes(file);
            var byNumber = new SortedDictionary<ulong, byte[]>();
            for (int off = 0; off < bytes.Length;)
            {
                int len = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(off));
                ulong frameNumber = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(off + 8));
                uint packet = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(off + 8 + 12));
                if (len != HeaderBytes + PayloadBytes || packet >= PacketsPerFrame)
                    throw new InvalidDataException($"{file}: unexpected record (length {len}, packet {packet}) at byte {off}");
                if (!byNumber.TryGetValue(frameNumber, out var frame))
                    byNumber[frameNumber] = frame = new byte[FrameBytes];
                bytes.AsSpan(off + 8 + HeaderBytes, PayloadBytes).CopyTo(frame.AsSpan((int)packet * PayloadBytes));
                off += 8 + len;
            }
            frames.AddRange(byNumber.Values);
        }
        if (frames.Count != Count)
            throw new InvalidDataException($"{Dir}: {frames.Count} frames, expected {Count}");
        return frames;
    }
}
