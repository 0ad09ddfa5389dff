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
    public static RoleLock StreamSender(DetectorConfig c, string address, Streams.ImageShare share)
    {
        string place = new(address.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or '-' ? ch : '_').ToArray());
        return RoleLock.Acquire($"{c.DetectorName}-stream_send-{share.Index}of{share.Count}-{place}",
            $"StdStreamSend of detector '{c.DetectorName}' for images {share} to {address}");
    }

    /// <summary>The writer role of the detector (key <c>&lt;detector&gt;-writer</c>).</summary>
    public static RoleLock Writer(DetectorConfig c) => Writer(c.DetectorName);

    /// <summary>The writer role of the detector named <paramref name="detector"/>.</summary>
    public static RoleLock Writer(string detector) => RoleLock.Acquire($"{detector}-writer", $"StdH5Writer of detector '{detector}'");

    /// <summary>The writer agent role of the detector on this host (key <c>&lt;detector&gt;-writer_agent</c>).</summary>
    public static RoleLock WriterAgent(DetectorConfig c) =>
        RoleLock.Acquire($"{c.DetectorName}-writer_agent", $"WriterAgent of detector '{c.DetectorName}'");
}
