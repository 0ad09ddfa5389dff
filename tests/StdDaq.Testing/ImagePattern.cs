using System.Runtime.InteropServices;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;

namespace StdDaq.Testing;

/// <summary>
/// The replication tests' source images: uint16 pixels and slot header fields that all depend on
/// the image id, written into an ImageBuffer slot under its sequence lock, and the check of a
/// replica's slot against them (every pixel, every header field the replica takes over).
/// </summary>
public static class ImagePattern
{
    /// <summary>The pixel of image <paramref name="id"/> at index i.</summary>
    public static ushort Pixel(ulong id, int i) => (ushort)(id * 31 + (ulong)i * 7);

    /// <summary>Every 5th image is incomplete, so statuses other than good travel too.</summary>
    public static ImageStatus Status(ulong id) => id % 5 == 0 ? ImageStatus.Incomplete : ImageStatus.Good;

    /// <summary>The ImageMetadata of image <paramref name="id"/> of a uint16 detector of this size, as the assembler would publish it.</summary>
    public static ImageMetadata Metadata(ulong id, int height, int width) =>
        new(id, (ulong)height, (ulong)width, ImageDtype.UInt16, ImageEncoding.Raw, 0, Status(id), id + 7, 0);

    /// <summary>Writes image <paramref name="id"/> into its slot (pattern, header fields derived from the id) under the sequence lock.</summary>
    public static void Write(ShmRing ring, ulong id)
    {
        int slot = ring.SlotOf(id);
        ring.BeginWrite(slot);
        var pixels = MemoryMarshal.Cast<byte, ushort>(ring.SlotSpan(slot));
        for (int i = 0; i < pixels.Length; i++)
            pixels[i] = Pixel(id, i);
        ref var h = ref ring.Slot(slot);
        h.ImageId = id;
        h.FrameIndex = id * 10;
        h.NReceivedPackets = 128;
        h.NMissingPackets = 0;
        h.Detector1 = id + 7;
        h.Detector2 = id * 3;
        h.ReceiveTimeNs = 1_700_000_000_000_000_000 + (long)id;
        h.BitDepth = 16;
        h.Status = (uint)Status(id);
        h.NMissingModules = 0;
        h.ReceivedBitmap = default;
        h.MarkModule(0);
        ring.EndWrite(slot);
    }

    /// <summary>
    /// What is wrong with the image in <paramref name="slot"/> of a replica against the pattern of
    /// the id its header names (null: nothing; the slot must not change meanwhile).
    /// </summary>
    public static string? Problem(ShmRing ring, int slot)
    {
        ref var h = ref ring.Slot(slot);
        ulong id = h.ImageId;
        var pixels = MemoryMarshal.Cast<byte, ushort>(ring.SlotSpan(slot));
        for (int i = 0; i < pixels.Length; i++)
            if (pixels[i] != Pixel(id, i))
                return $"image {id} pixel {i}: {pixels[i]}, the source has {Pixel(id, i)}";
        if (h.FrameIndex != id * 10 || h.Detector1 != id + 7 || h.Detector2 != id * 3 || h.Status != (uint)Status(id)
            || h.ReceiveTimeNs != 1_700_000_000_000_000_000 + (long)id || !h.HasModule(0))
            return $"image {id}: slot header differs from the source's";
        return null;
    }
}
