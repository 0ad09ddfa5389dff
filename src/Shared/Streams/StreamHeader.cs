using System.IO.Hashing;
using System.Runtime.InteropServices;
using StdDaq.Shared.Memory;

namespace StdDaq.Shared.Streams;

/// <summary>
/// The third frame of every message from StdStreamSend to StdStreamRecv (after the 56-byte
/// ImageMetadata and the image bytes): who sent it, its place in the sender's stream, the size and
/// checksum of the image bytes, and the source slot's header. 304 bytes, packed, little-endian.
/// </summary>
/// <remarks>
/// A sender numbers its messages 0, 1, 2, ... (<see cref="Sequence"/>) within its session
/// (<see cref="SessionId"/>, random at each start), counting every image it meant to send, also
/// one it then dropped at the high-water mark: a receiver that sees the number jump counts the
/// messages lost; a new session id is a restarted sender, whose numbers start again at 0.
/// </remarks>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly struct StreamHeader
{
    /// <summary>Bytes of the frame.</summary>
    public const int Size = 304;
    /// <summary><see cref="Magic"/>: the bytes "SDQS".</summary>
    public const uint MagicValue = 0x53514453;
    /// <summary>The <see cref="Version"/> written here.</summary>
    public const ushort CurrentVersion = 1;
    /// <summary><see cref="Flags"/> bit: <see cref="Checksum"/> holds the image bytes' xxHash3-64 (else it is 0 and not checked).</summary>
    public const ushort FlagChecksum = 1;
    /// <summary>
    /// <see cref="Flags"/> bit: frame 2 is one byte range of the image (<c>--part i/N</c>,
    /// <see cref="ImagePart.RangeOf"/>), and <see cref="ShareIndex"/>/<see cref="ShareCount"/> are its i/N.
    /// </summary>
    public const ushort FlagPart = 2;

    /// <summary>@0: <see cref="MagicValue"/>.</summary>
    public readonly uint Magic;
    /// <summary>@4: the format version, <see cref="CurrentVersion"/>.</summary>
    public readonly ushort Version;
    /// <summary>@6: <see cref="FlagChecksum"/>, <see cref="FlagPart"/>, or 0.</summary>
    public readonly ushort Flags;
    /// <summary>@8: the sender's session: a random number drawn at its start.</summary>
    public readonly ulong SessionId;
    /// <summary>@16: the message's number in the session, from 0.</summary>
    public readonly ulong Sequence;
    /// <summary>@24: i of the sender's --images i/N (with <see cref="FlagPart"/>: of its --part i/N).</summary>
    public readonly uint ShareIndex;
    /// <summary>@28: N of the sender's --images i/N (1: every image; with <see cref="FlagPart"/>: of its --part i/N).</summary>
    public readonly uint ShareCount;
    /// <summary>@32: bytes of the image frame (frame 2).</summary>
    public readonly ulong PayloadBytes;
    /// <summary>@40: xxHash3-64 (seed 0) of the image frame when <see cref="FlagChecksum"/> is set, else 0.</summary>
    public readonly ulong Checksum;
    /// <summary>
    /// @48: the source ImageBuffer slot's header as it was read with the image, under the same
    /// sequence lock (256 bytes; its sequence field is 0): frame index, detector fields, receive
    /// time, packet and module counts and the module bitmap, which the replica's slot takes over.
    /// </summary>
    public readonly SlotHeader Slot;

    /// <summary>
    /// A header of <see cref="CurrentVersion"/>; <paramref name="checksum"/> null: none;
    /// <paramref name="part"/> given: frame 2 is that part of the image (the share is then not written).
    /// </summary>
    public StreamHeader(ulong sessionId, ulong sequence, ImageShare share, ulong payloadBytes, ulong? checksum, in SlotHeader slot,
        ImagePart? part = null)
    {
        Magic = MagicValue;
        Version = CurrentVersion;
        Flags = (ushort)((checksum.HasValue ? FlagChecksum : 0) | (part.HasValue ? FlagPart : 0));
        SessionId = sessionId;
        Sequence = sequence;
        ShareIndex = (uint)(part?.Index ?? share.Index);
        ShareCount = (uint)(part?.Count ?? share.Count);
        PayloadBytes = payloadBytes;
        Checksum = checksum ?? 0;
        var s = slot;
        s.Sequence = 0;
        Slot = s;
    }

    /// <summary>Whether <see cref="Checksum"/> is to be checked.</summary>
    public bool HasChecksum => (Flags & FlagChecksum) != 0;

    /// <summary>Whether frame 2 is a part of the image (<see cref="FlagPart"/>), and which.</summary>
    public bool IsPartOf(ImagePart part) => (Flags & FlagPart) != 0 && ShareIndex == (uint)part.Index && ShareCount == (uint)part.Count;

    /// <summary>Whether frame 2 is a part of the image (<see cref="FlagPart"/>).</summary>
    public bool IsPart => (Flags & FlagPart) != 0;

    /// <summary>Whether the magic and version are ours.</summary>
    public bool IsValid => Magic == MagicValue && Version == CurrentVersion;

    /// <summary>The header in the first <see cref="Size"/> bytes (fewer throw).</summary>
    public static StreamHeader Read(ReadOnlySpan<byte> bytes) => MemoryMarshal.Read<StreamHeader>(bytes);

    /// <summary>Writes the header into the first <see cref="Size"/> bytes (fewer throw).</summary>
    public void Write(Span<byte> bytes) => MemoryMarshal.Write(bytes, in this);

    /// <summary>The checksum of the image bytes: xxHash3-64 with seed 0.</summary>
    public static ulong ChecksumOf(ReadOnlySpan<byte> payload) => XxHash3.HashToUInt64(payload);

    /// <summary>Bytes copied and hashed at a time by <see cref="CopyWithChecksum"/>: well inside a core's L2 cache.</summary>
    private const int HashBlock = 64 * 1024;

    /// <summary>
    /// Copies <paramref name="source"/> into <paramref name="target"/> and returns its
    /// <see cref="ChecksumOf"/>, block by block: each block is hashed while it is still in cache from
    /// its copy, one pass over memory instead of two (an image is megabytes, far more than the
    /// cache; hashing it after the copy reads it from memory again, which costs as much as the copy).
    /// <paramref name="hash"/> is a reusable hasher (reset here).
    /// </summary>
    public static ulong CopyWithChecksum(ReadOnlySpan<byte> source, Span<byte> target, XxHash3 hash)
    {
        hash.Reset();
        for (int at = 0; at < source.Length; at += HashBlock)
        {
            int n = Math.Min(HashBlock, source.Length - at);
            var block = target.Slice(at, n);
            source.Slice(at, n).CopyTo(block);
            hash.Append(block);
        }
        return hash.GetCurrentHashAsUInt64();
    }

    /// <summary>
    /// <see cref="CopyWithChecksum"/> into memory that nothing reads soon (the receiver's slot):
    /// each block is copied with streaming stores (<see cref="StreamingCopy"/>), which leave the
    /// target out of cache, and hashed from the source, which its copy has just brought into cache.
    /// The same bytes, so the same checksum.
    /// </summary>
    public static ulong CopyStreamingWithChecksum(ReadOnlySpan<byte> source, Span<byte> target, XxHash3 hash)
    {
        hash.Reset();
        for (int at = 0; at < source.Length; at += HashBlock)
        {
            int n = Math.Min(HashBlock, source.Length - at);
            var block = source.Slice(at, n);
            StreamingCopy.Copy(block, target.Slice(at, n));
            hash.Append(block);
        }
        return hash.GetCurrentHashAsUInt64();
    }
}
