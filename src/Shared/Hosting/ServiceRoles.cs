using StdDaq.Shared.Config;

namespace StdDaq.Shared.Hosting;

/// <summary>
/// The roles of a detector's services, one process each: the lock key (its file sits next to the
/// ring the role makes, <c>/dev/shm/&lt;key&gt;.lock</c>) and the name people read in messages.
/// </summary>
public static class ServiceRoles
{
    /// <summary>How messages name the receiver of <paramref name="module"/> (e.g. in "is StdUdpRecv for module 3 of detector 'x' running?").</summary>
    public static string ReceiverName(DetectorConfig c, int module) => $"StdUdpRecv for module {module} of detector '{c.DetectorName}'";

    /// <summary>The receiver role of one module; its key is the module's FrameBuffer name.</summary>
    public static RoleLock Receiver(DetectorConfig c, int module) => RoleLock.Acquire(c.FrameBufferName(module), ReceiverName(c, module));

    /// <summary>The assembler role of the detector; its key is the ImageBuffer name.</summary>
    public static RoleLock Assembler(DetectorConfig c) => RoleLock.Acquire(c.ImageBufferName, $"StdAssembler of detector '{c.DetectorName}'");

    /// <summary>
    /// The stream receiver's role: it fills the ImageBuffer and publishes ImageMetadata in the
    /// assembler's place (a replica), so its key is the assembler's and the two exclude each other.
    /// </summary>
    public static RoleLock StreamReceiver(DetectorConfig c) =>
        RoleLock.Acquire(c.ImageBufferName, $"StdStreamRecv of detector '{c.DetectorName}' (in the assembler's place)");

    /// <summary>
    /// One stream sender per detector, stream address and image share (key
    /// <c>&lt;detector&gt;-stream_send-&lt;i&gt;of&lt;N&gt;-&lt;address&gt;</c>, the address's characters
    /// other than A-Z a-z 0-9 . - as '_').
    /// </summary>
    public static RoleLock StreamSender(DetectorConfig c, string address, Streams.ImageShare share) =>
        RoleLock.Acquire($"{c.DetectorName}-stream_send-{share.Index}of{share.Count}-{Place(address)}",
            $"StdStreamSend of detector '{c.DetectorName}' for images {share} to {address}");

    /// <summary>
    /// One part sender per detector, stream address and part (key
    /// <c>&lt;detector&gt;-stream_send-part&lt;i&gt;of&lt;N&gt;-&lt;address&gt;</c>, the address as in <see cref="StreamSender"/>).
    /// </summary>
    public static RoleLock StreamPartSender(DetectorConfig c, string address, Streams.ImagePart part) =>
        RoleLock.Acquire($"{c.DetectorName}-stream_send-part{part.Index}of{part.Count}-{Place(address)}",
            $"StdStreamSend of detector '{c.DetectorName}' for part {part} to {address}");

    /// <summary>
    /// One part receiver per detector and part (key <c>&lt;detector&gt;-stream_recv-part&lt;i&gt;of&lt;N&gt;</c>);
    /// part 0 also holds <see cref="StreamReceiver"/>, as it publishes in the assembler's place.
    /// </summary>
    public static RoleLock StreamPartReceiver(DetectorConfig c, Streams.ImagePart part) =>
        RoleLock.Acquire($"{c.DetectorName}-stream_recv-part{part.Index}of{part.Count}",
            $"StdStreamRecv of detector '{c.DetectorName}' for part {part}");

    /// <summary>An address as a lock key's part: characters other than A-Z a-z 0-9 . - as '_'.</summary>
    private static string Place(string address) =>
        new(address.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or '-' ? ch : '_').ToArray());

    /// <summary>The writer role of the detector (key <c>&lt;detector&gt;-writer</c>).</summary>
    public static RoleLock Writer(DetectorConfig c) => Writer(c.DetectorName);

    /// <summary>The writer role of the detector named <paramref name="detector"/>.</summary>
    public static RoleLock Writer(string detector) => RoleLock.Acquire($"{detector}-writer", $"StdH5Writer of detector '{detector}'");

    /// <summary>The writer agent role of the detector on this host (key <c>&lt;detector&gt;-writer_agent</c>).</summary>
    public static RoleLock WriterAgent(DetectorConfig c) =>
        RoleLock.Acquire($"{c.DetectorName}-writer_agent", $"WriterAgent of detector '{c.DetectorName}'");
}
