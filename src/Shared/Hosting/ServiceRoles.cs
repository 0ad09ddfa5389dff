using StdDaq.Shared.Config;

namespace StdDaq.Shared.Hosting;

/// <summary>
/// The roles of a detector's services, one process each: the lock key (its file sits next to the
/// ring the role makes, <c>/dev/shm/&lt;key&gt;.lock</c>) and the name people read in messages.
/// </summary>
public static class ServiceRoles
{
    public static string ReceiverName(DetectorConfig c, int module) => $"StdUdpRecv for module {module} of detector '{c.DetectorName}'";

    public static RoleLock Receiver(DetectorConfig c, int module) => RoleLock.Acquire(c.FrameBufferName(module), ReceiverName(c, module));

    public static RoleLock Assembler(DetectorConfig c) => RoleLock.Acquire(c.ImageBufferName, $"StdAssembler of detector '{c.DetectorName}'");

    public static RoleLock Writer(DetectorConfig c) => RoleLock.Acquire($"{c.DetectorName}-writer", $"StdH5Writer of detector '{c.DetectorName}'");

    public static RoleLock WriterAgent(DetectorConfig c) =>
        RoleLock.Acquire($"{c.DetectorName}-writer_agent", $"WriterAgent of detector '{c.DetectorName}'");
}
