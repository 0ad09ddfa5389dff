using System.Buffers.Binary;
using System.Runtime.InteropServices;
using StdDaq.Shared.Packets;

namespace StdDaq.Testing;

/// <summary>
/// Module frames from capture files of an SLS detector (EIGER, JUNGFRAU): records of a u64
/// little-endian length and one datagram (48-byte SLS header + payload); each packet's payload is
/// placed by its packet number into the frame of its frame number. Frames come in file order,
/// then frame-number order. For the tests and the compression benchmark (real EIGER frames).
/// </summary>
public static class CaptureFrames
{
    /// <summary>
    /// Every frame of the <paramref name="files"/>, each <paramref name="payloadBytes"/> x
    /// <paramref name="packetsPerFrame"/> bytes; a missing packet's place stays zero. A record of
    /// another length or a packet number out of range is an <see cref="InvalidDataException"/>.
    /// </summary>
    public static List<byte[]> Load(IEnumerable<string> files, int payloadBytes, int packetsPerFrame)
    {
        var frames = new List<byte[]>();
        foreach (string file in files)
        {
            byte[] bytes = File.ReadAllBytes(file);
            var byNumber = new SortedDictionary<ulong, byte[]>();
            for (int off = 0; off < bytes.Length;)
            {
                if (off + 8 > bytes.Length)
                    throw new InvalidDataException($"{file}: a record header is cut off at byte {off}");
                int len = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(off));
                if (len != SlsHeader.Size + payloadBytes || off + 8 + len > bytes.Length)
                    throw new InvalidDataException($"{file}: record of {len} bytes at byte {off}, expected {SlsHeader.Size + payloadBytes}");
                var h = MemoryMarshal.Read<SlsHeader>(bytes.AsSpan(off + 8));
                if (h.PacketNumber >= packetsPerFrame)
                    throw new InvalidDataException($"{file}: packet number {h.PacketNumber} at byte {off} is not below {packetsPerFrame}");
                if (!byNumber.TryGetValue(h.FrameNumber, out var frame))
                    byNumber[h.FrameNumber] = frame = new byte[payloadBytes * packetsPerFrame];
                bytes.AsSpan(off + 8 + SlsHeader.Size, payloadBytes).CopyTo(frame.AsSpan((int)h.PacketNumber * payloadBytes));
                off += 8 + len;
            }
            frames.AddRange(byNumber.Values);
        }
        return frames;
    }
}
