using System.Text;

namespace StdDaq.UdpRecv;

/// <summary>
/// A receiver's counters. One thread (the receive loop) writes them; others read a
/// <see cref="Snapshot"/>, which may be a few packets stale but never torn per field.
/// </summary>
public sealed class ReceiverCounters
{
    internal long Packets;
    internal long Bytes;
    internal long FramesComplete;
    internal long FramesIncomplete;
    internal long MissingPackets;
    internal long DuplicatePackets;
    internal long OutOfOrderPackets;
    internal long LatePackets;
    internal long MalformedSize;
    internal long MalformedPacketNumber;
    internal long MalformedProtocol;
    internal long KernelDrops;
    internal long NoticesDropped;
    internal long FrameIdResets;
    internal long CopiedPackets;

    public Snapshot Read() => new(
        Volatile.Read(ref Packets), Volatile.Read(ref Bytes), Volatile.Read(ref FramesComplete),
        Volatile.Read(ref FramesIncomplete), Volatile.Read(ref MissingPackets), Volatile.Read(ref DuplicatePackets),
        Volatile.Read(ref OutOfOrderPackets), Volatile.Read(ref LatePackets), Volatile.Read(ref MalformedSize),
        Volatile.Read(ref MalformedPacketNumber), Volatile.Read(ref MalformedProtocol), Volatile.Read(ref KernelDrops),
        Volatile.Read(ref NoticesDropped), Volatile.Read(ref FrameIdResets), Volatile.Read(ref CopiedPackets));

    /// <summary>
    /// Counter values at one moment. Packets counts valid, placed packets only; CopiedPackets
    /// counts those of them that did not land in their place directly and were copied there.
    /// </summary>
    public readonly record struct Snapshot(
        long Packets, long Bytes, long FramesComplete, long FramesIncomplete, long MissingPackets,
        long DuplicatePackets, long OutOfOrderPackets, long LatePackets, long MalformedSize,
        long MalformedPacketNumber, long MalformedProtocol, long KernelDrops, long NoticesDropped, long FrameIdResets,
        long CopiedPackets)
    {
        public long Malformed => MalformedSize + MalformedPacketNumber + MalformedProtocol;
        public long Frames => FramesComplete + FramesIncomplete;

        public static Snapshot operator +(Snapshot a, Snapshot b) => a - (default(Snapshot) - b);

        public static Snapshot operator -(Snapshot a, Snapshot b) => new(
            a.Packets - b.Packets, a.Bytes - b.Bytes, a.FramesComplete - b.FramesComplete,
            a.FramesIncomplete - b.FramesIncomplete, a.MissingPackets - b.MissingPackets,
            a.DuplicatePackets - b.DuplicatePackets, a.OutOfOrderPackets - b.OutOfOrderPackets,
            a.LatePackets - b.LatePackets, a.MalformedSize - b.MalformedSize,
            a.MalformedPacketNumber - b.MalformedPacketNumber, a.MalformedProtocol - b.MalformedProtocol,
            a.KernelDrops - b.KernelDrops, a.NoticesDropped - b.NoticesDropped, a.FrameIdResets - b.FrameIdResets,
            a.CopiedPackets - b.CopiedPackets);

        /// <summary>The stats line: key=value pairs, the period's values for a delta snapshot.</summary>
        public string Format(double seconds)
        {
            var sb = new StringBuilder();
            sb.Append($"packets={Packets} bytes={Bytes} frames_complete={FramesComplete} frames_incomplete={FramesIncomplete}");
            sb.Append($" missing_packets={MissingPackets} duplicate_packets={DuplicatePackets} out_of_order_packets={OutOfOrderPackets}");
            sb.Append($" late_packets={LatePackets} malformed_size={MalformedSize} malformed_packet_number={MalformedPacketNumber}");
            sb.Append($" malformed_protocol={MalformedProtocol} kernel_drops={KernelDrops} notices_dropped={NoticesDropped}");
            if (FrameIdResets != 0)
                sb.Append($" frame_id_resets={FrameIdResets}");
            sb.Append($" copied_packets={CopiedPackets}");
            if (seconds > 0)
                sb.Append($" frame_rate_hz={Frames / seconds:F1} gbit_s={Bytes * 8 / seconds / 1e9:F3}");
            return sb.ToString();
        }
    }
}
