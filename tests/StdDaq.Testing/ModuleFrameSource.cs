using StdDaq.Shared.Config;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;

namespace StdDaq.Testing;

/// <summary>
/// Publishes whole module frames the way StdUdpRecv does, without UDP: the frame is written into
/// the module's FrameBuffer slot under the sequence lock, then its ModuleFrame notice goes out on
/// the module's endpoint. Feeds the assembler from prepared frames (tests, the assembler benchmark).
/// </summary>
public sealed class ModuleFrameSource : IDisposable
{
    private readonly DetectorConfig _config;
    private readonly ShmRing[] _rings;
    private readonly ZmqSocket[] _publishers;
    private readonly List<StdDaq.Shared.Hosting.RoleLock> _roles = [];
    private readonly byte[] _notice = new byte[ModuleFrameNotice.Size];

    /// <summary>
    /// Takes every module's receiver role, creates or attaches its FrameBuffer and binds its notice
    /// endpoint (an XPUB, to see subscribers); throws if a receiver of the detector runs.
    /// </summary>
    public ModuleFrameSource(DetectorConfig config)
    {
        _config = config;
        _rings = new ShmRing[config.NModules];
        _publishers = new ZmqSocket[config.NModules];
        try
        {
            for (int m = 0; m < config.NModules; m++)
            {
                // It stands in for the module's receiver, so it takes the receiver's role.
                _roles.Add(StdDaq.Shared.Hosting.ServiceRoles.Receiver(config, m));
                _rings[m] = ShmRing.CreateOrAttach(config.FrameBufferName(m), RingKind.FrameBuffer, config.Module.FrameBytes, config.FrameBufferSlots);
                _publishers[m] = ZmqSocket.Publisher(config.ModuleFrameEndpoint(m), seeSubscriptions: true);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Module <paramref name="module"/>'s FrameBuffer, e.g. to pre-fill slots.</summary>
    public ShmRing Ring(int module) => _rings[module];

    /// <summary>Waits until every module's endpoint has a subscriber (zmq drops what is sent before).</summary>
    public void WaitForSubscribers(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var message = new byte[256];
        for (int m = 0; m < _publishers.Length; m++)
        {
            _publishers[m].SetInt(Zmq.RCVTIMEO, 20);
            while (true)
            {
                if (_publishers[m].Receive(message) > 0 && message[0] == 1)
                    break;
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"no subscriber on {_config.ModuleFrameEndpoint(m)} within {timeout.TotalSeconds:F1} s");
            }
        }
    }

    /// <summary>
    /// Writes frame <paramref name="imageId"/> of module <paramref name="module"/> into its slot:
    /// <paramref name="fill"/> writes the pixels (null keeps the slot's bytes: a pre-filled frame),
    /// and packets not in <paramref name="received"/> (null: all) are marked missing. Returns the
    /// notice, not yet published.
    /// </summary>
    public ModuleFrameNotice Write(int module, ulong imageId, SpanAction? fill = null, Func<int, bool>? received = null)
    {
        var ring = _rings[module];
        var g = _config.Module;
        int slot = ring.SlotOf(imageId);
        ring.BeginWrite(slot);
        fill?.Invoke(ring.SlotSpan(slot)[..checked((int)g.FrameBytes)]);
        ref SlotHeader h = ref ring.Slot(slot);
        h.ReceivedBitmap = default;
        int got = 0;
        for (int k = 0; k < g.PacketsPerFrame; k++)
            if (received == null || received(k))
            {
                h.MarkPacket(k);
                got++;
            }
        int missing = g.PacketsPerFrame - got;
        h.ImageId = imageId;
        h.FrameIndex = imageId;
        h.NReceivedPackets = (uint)got;
        h.NMissingPackets = (uint)missing;
        h.Detector1 = imageId;
        h.Detector2 = 0;
        long now = Libc.RealtimeNs();
        h.ReceiveTimeNs = now;
        h.ModuleId = (ushort)module;
        h.BitDepth = (ushort)g.BitDepth;
        h.Status = missing == 0 ? SlotStatus.Good : SlotStatus.Incomplete;
        h.NMissingModules = 0;
        ulong seq = ring.EndWrite(slot);
        return new ModuleFrameNotice(imageId, (ulong)missing, (ushort)module, (ushort)g.BitDepth, (uint)got, imageId,
            imageId, 0, seq, (ulong)now);
    }

    /// <summary>Writes frame <paramref name="imageId"/> of <paramref name="module"/> with the simulator's pixel pattern, whole.</summary>
    public ModuleFrameNotice WritePattern(int module, ulong imageId) =>
        Write(module, imageId, frame => PixelPattern.Fill(_config.Module, imageId, module, frame));

    /// <summary>
    /// Sends the notice on its module's endpoint. Always true in practice: at the high-water mark
    /// a PUB drops the message for that subscriber and reports success (<see cref="ZmqSocket.TrySend"/>).
    /// </summary>
    public bool Publish(in ModuleFrameNotice notice)
    {
        notice.Write(_notice);
        return _publishers[notice.ModuleId].TrySend(_notice);
    }

    /// <summary>Writes a frame's pixels into <paramref name="frame"/>, FrameBytes long, in packet order.</summary>
    public delegate void SpanAction(Span<byte> frame);

    /// <summary>Closes the endpoints, unmaps the rings (they stay) and gives the roles back.</summary>
    public void Dispose()
    {
        foreach (var p in _publishers)
            p?.Dispose();
        foreach (var r in _rings)
            r?.Dispose();
        foreach (var r in _roles)
            r.Dispose();
    }
}
