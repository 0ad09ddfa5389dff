using StdDaq.Shared.Metrics;

namespace StdDaq.UdpRecv;

/// <summary>
/// A receiver's counters (<see cref="CounterSet{TName}"/>): the receive loop writes them, others
/// read a snapshot. Packets counts valid, placed packets only; CopiedPackets counts those of them
/// that did not land in their place directly and were copied there.
/// </summary>
public enum ReceiverCounter
{
    Packets,
    Bytes,
    FramesComplete,
    FramesIncomplete,
    MissingPackets,
    DuplicatePackets,
    OutOfOrderPackets,
    LatePackets,
    MalformedSize,
    MalformedPacketNumber,
    MalformedProtocol,
    /// <summary>Datagrams the kernel dropped on the socket (SO_RXQ_OVFL).</summary>
    KernelDrops,
    NoticesDropped,
    /// <summary>The detector's frame numbers started again (shown only when not 0).</summary>
    FrameIdResets,
    CopiedPackets,
}

/// <summary>What the receiver's stats line and tests derive from its counters.</summary>
public static class ReceiverStats
{
    public static CounterSet<ReceiverCounter> Create(string detector, int module) =>
        new("StdDaq.Receiver", "receiver", [new("detector", detector), new("module", module)]);

    extension(CounterSnapshot<ReceiverCounter> s)
    {
        public long Malformed => s[ReceiverCounter.MalformedSize] + s[ReceiverCounter.MalformedPacketNumber] + s[ReceiverCounter.MalformedProtocol];

        public long Frames => s[ReceiverCounter.FramesComplete] + s[ReceiverCounter.FramesIncomplete];

        /// <summary>The stats line: key=value pairs (the period's values for a difference), then rates over <paramref name="seconds"/>.</summary>
        public string Format(double seconds) =>
            s.Format(n => n == ReceiverCounter.FrameIdResets) + (seconds > 0
                ? $" frame_rate_hz={s.Frames / seconds:F1} gbit_s={s[ReceiverCounter.Bytes] * 8 / seconds / 1e9:F3}"
                : "");
    }
}
