using StdDaq.Shared.Metrics;
using StdDaq.Shared.Streams;

namespace StdDaq.StreamSend;

/// <summary>
/// The stream sender's counters (<see cref="CounterSet{TName}"/>), written by its loop thread. Of
/// the images of its share whose metadata came: sent + overrun + dropped_hwm + no_buffer +
/// metadata_malformed (those of its share) = images_received - images_other_share.
/// </summary>
public enum StreamSendCounter
{
    /// <summary>ImageMetadata messages received from the assembler (every share).</summary>
    ImagesReceived,
    /// <summary>Images sent whole (all three frames queued); a part sender: parts sent.</summary>
    ImagesSent,
    /// <summary>Image bytes sent (frame 2).</summary>
    BytesSent,
    /// <summary>Images whose slot was reused or rewritten before or while it was copied: not sent.</summary>
    ImagesOverrun,
    /// <summary>Images of another sender's share (--images i/N): not this sender's, not a loss.</summary>
    ImagesOtherShare,
    /// <summary>Images of this share that the metadata stream skipped (its ids jumped).</summary>
    MetadataGaps,
    /// <summary>Metadata not 56 bytes, of an unknown dtype, or of an image larger than a slot: not sent.</summary>
    MetadataMalformed,
    /// <summary>Images that found the high-water mark full (or no receiver connected) and had to wait.</summary>
    SendBlocked,
    /// <summary>Images dropped because the send timeout passed at the high-water mark (or without a receiver).</summary>
    ImagesDroppedHwm,
    /// <summary>Images not sent because the ImageBuffer was not there.</summary>
    ImagesNoBuffer,
    /// <summary>Receivers that connected (handshakes).</summary>
    ReceiverConnections,
    /// <summary>
    /// Images sent without a copy whose slot was rewritten before libzmq gave the bytes back (it does
    /// so some time after it wrote them): at most these went out torn; the receiver refuses those
    /// whose bytes changed (their checksum) and counts them corrupt.
    /// </summary>
    ImagesRewrittenInFlight,
}

/// <summary>The stream sender's counter set (meter StdDaq.StreamSend, tags detector, share and part).</summary>
public static class StreamSendStats
{
    public static CounterSet<StreamSendCounter> Create(string detector, ImageShare share, ImagePart? part = null) =>
        new("StdDaq.StreamSend", "stream_send", [new("detector", detector), new("share", share.ToString()), new("part", (part ?? ImagePart.Whole).ToString())]);

    extension(CounterSnapshot<StreamSendCounter> s)
    {
        /// <summary>The stats line: key=value pairs, then the send rates over <paramref name="seconds"/>.</summary>
        public string Format(double seconds) =>
            s.Format() + (seconds > 0
                ? $" image_rate_hz={s[StreamSendCounter.ImagesSent] / seconds:F1} gbit_s={s[StreamSendCounter.BytesSent] * 8 / seconds / 1e9:F3}"
                : "");
    }
}
