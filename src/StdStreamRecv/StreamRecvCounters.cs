using StdDaq.Shared.Metrics;
using StdDaq.Shared.Streams;

namespace StdDaq.StreamRecv;

/// <summary>
/// The stream receiver's counters (<see cref="CounterSet{TName}"/>), written by its loop thread.
/// Every message received is published (images_published) or counted under one cause: corrupt,
/// malformed, out_of_order or wrong_share. Messages that never came are counted by cause:
/// messages_lost (a gap in one sender session's numbering, also the messages a restarted sender
/// numbered before its first that came), messages_lost_receiver_restart (between the previous
/// receiver run on this ring and this one, same sender session) and images_lost_sender_restart
/// (ids across a sender restart that neither session numbered as lost). So for a source of ids
/// first..last of this share, every one sent by a sender that was running:
/// images_published + images_corrupt + images_malformed + messages_lost +
/// messages_lost_receiver_restart + images_lost_sender_restart = the ids, summed over the
/// receiver's runs (the sender's own losses, images_overrun and the like, are not numbered and
/// show here only inside images_skipped).
/// </summary>
public enum StreamRecvCounter
{
    /// <summary>Images written into the ImageBuffer and announced with their ImageMetadata.</summary>
    ImagesPublished,
    /// <summary>Image bytes of the published images.</summary>
    BytesReceived,
    /// <summary>Images whose bytes do not match the sender's checksum: not published.</summary>
    ImagesCorrupt,
    /// <summary>Messages that are not [56-byte ImageMetadata, image bytes, stream header], or whose image size does not match its metadata, the header or this detector's geometry: not published.</summary>
    ImagesMalformed,
    /// <summary>
    /// Messages the sender numbered but that never came, seen as a gap in one session's sequence
    /// numbers (e.g. dropped at its high-water mark: its images_dropped_hwm), or numbered by a
    /// restarted sender before its first message that came.
    /// </summary>
    MessagesLost,
    /// <summary>Images whose id is not above the last published one: dropped (ids are published in increasing order).</summary>
    ImagesOutOfOrder,
    /// <summary>Images whose id is not of this receiver's share (--images i/N): dropped.</summary>
    ImagesWrongShare,
    /// <summary>Ids of this receiver's share between two published images that were not published.</summary>
    ImagesSkipped,
    /// <summary>A new sender session (the sender restarted): its numbering starts again, no gap is counted across it.</summary>
    SenderRestarts,
    /// <summary>
    /// Ids of this share skipped across a sender restart that neither session's numbering accounts
    /// for: what the old sender still had queued when it stopped (killed, or its stop linger ran
    /// out), what it dropped after its last message that came, and ids published while no sender
    /// ran. Counted at the first image published after the restart.
    /// </summary>
    ImagesLostSenderRestart,
    /// <summary>
    /// Messages of the sender session the previous receiver run on this ring was receiving that
    /// neither run got: numbered after the newest image that run published (its slot header keeps
    /// the session and sequence) and before the first this run got; dropped at the sender's
    /// high-water mark while no receiver ran, or queued towards the stopped receiver. Not in
    /// messages_lost. Unknown (not counted, logged) if the sender restarted meanwhile too.
    /// </summary>
    MessagesLostReceiverRestart,
    /// <summary>Connections made to the sender (handshakes); more than one: the link or the sender came back.</summary>
    SenderConnections,
    /// <summary>An image id far below the last published one (more than a ring of slots): the detector's numbering restarted.</summary>
    ImageIdResets,
    /// <summary>ImageMetadata that could not be published.</summary>
    MetadataDropped,
    /// <summary>A part receiver (--part i/N): parts written into their slot and checked (every part receiver, part 0's too).</summary>
    PartsReceived,
    /// <summary>A part receiver: parts of an image already published or given up, or whose slot another image took while the part was written: not used.</summary>
    PartsLate,
    /// <summary>A part receiver: parts whose image id matched the slot's but whose metadata or source slot header did not (another source image): not used.</summary>
    PartsMismatched,
    /// <summary>Part 0's receiver: images whose part 0 came but that were never published: a part did not come within the part timeout, failed, or the slot was taken.</summary>
    ImagesIncomplete,
    /// <summary>Part 0's receiver: the parts those images lacked (by part at the end of the stats line).</summary>
    PartsMissing,
}

/// <summary>The stream receiver's counter set (meter StdDaq.StreamRecv, tags detector, share and part).</summary>
public static class StreamRecvStats
{
    public static CounterSet<StreamRecvCounter> Create(string detector, ImageShare share, ImagePart? part = null) =>
        new("StdDaq.StreamRecv", "stream_recv", [new("detector", detector), new("share", share.ToString()), new("part", (part ?? ImagePart.Whole).ToString())]);

    extension(CounterSnapshot<StreamRecvCounter> s)
    {
        /// <summary>The stats line: key=value pairs, then the receive rates over <paramref name="seconds"/>.</summary>
        public string Format(double seconds) =>
            s.Format() + (seconds > 0
                ? $" image_rate_hz={s[StreamRecvCounter.ImagesPublished] / seconds:F1} gbit_s={s[StreamRecvCounter.BytesReceived] * 8 / seconds / 1e9:F3}"
                : "");
    }
}
