using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StdDaq.Shared.Detectors;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;

namespace StdDaq.UdpRecv;

/// <summary>
/// Turns a module's valid packets into frames in its FrameBuffer. One frame is open at a time
/// (its slot's sequence lock is odd while open). A frame closes when all its packets are in, when
/// a packet of a newer frame arrives, or when no packet came for the timeout. On close, lost
/// packets' bytes are zeroed (never stale data), the slot header is filled, the slot is published
/// (even sequence) and a <see cref="ModuleFrameNotice"/> goes out.
/// </summary>
public sealed class FrameTracker
{
    private readonly ShmRing _ring;
    private readonly ModuleGeometry _g;
    private readonly ReceiverCounters _counters;
    private readonly Func<ModuleFrameNotice, bool> _publish;
    private readonly ushort _moduleId;
    private readonly int _nPackets;

    private bool _open;
    private ulong _id;
    private int _slot;
    private int _received;
    private int _highest;
    private long _lastPacketTicks;
    private PacketInfo _first;

    private bool _hasClosed;
    private ulong _lastClosedId;
    private int _lastClosedSlot;

    public FrameTracker(ShmRing ring, ModuleGeometry geometry, int moduleId, ReceiverCounters counters,
        Func<ModuleFrameNotice, bool> publish)
    {
        if (geometry.PacketsPerFrame > ModuleGeometry.MaxPacketsPerFrame)
            throw new ArgumentException($"{geometry.PacketsPerFrame} packets per frame exceed the slot bitmap ({ModuleGeometry.MaxPacketsPerFrame})");
        if (ring.SlotBytes < geometry.FrameBytes)
            throw new ArgumentException($"ring '{ring.Name}' slots of {ring.SlotBytes} bytes cannot hold a {geometry.FrameBytes}-byte frame");
        _ring = ring;
        _g = geometry;
        _moduleId = (ushort)moduleId;
        _counters = counters;
        _publish = publish;
        _nPackets = geometry.PacketsPerFrame;
    }

    public bool HasOpenFrame => _open;
    public ulong OpenImageId => _id;

    /// <summary>Places one validated packet. <paramref name="payload"/> is its data after the header.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void OnPacket(in PacketInfo p, ReadOnlySpan<byte> payload, long nowTicks)
    {
        if (!_open || p.ImageId != _id)
        {
            if (!NewFrameFor(in p))
                return;
        }
        int k = p.PacketNumber;
        ref SlotHeader header = ref _ring.Slot(_slot);
        if (header.HasPacket(k))
        {
            _counters.DuplicatePackets++;
            return;
        }
        if (k < _highest)
            _counters.OutOfOrderPackets++;
        else
            _highest = k;
        payload.CopyTo(_ring.SlotSpan(_slot).Slice(k * _g.PayloadBytes));
        header.MarkPacket(k);
        _counters.Packets++;
        _counters.Bytes += payload.Length + _g.HeaderBytes;
        _lastPacketTicks = nowTicks;
        if (++_received == _nPackets)
            Close();
    }

    /// <summary>Closes the open frame if no packet came for <paramref name="timeoutTicks"/>.</summary>
    public void OnIdle(long nowTicks, long timeoutTicks)
    {
        if (_open && nowTicks - _lastPacketTicks >= timeoutTicks)
            Close();
    }

    /// <summary>Closes the open frame (e.g. at shutdown).</summary>
    public void Flush()
    {
        if (_open)
            Close();
    }

    /// <summary>
    /// A packet whose image id is not the open frame's. Returns false if it must be dropped
    /// (a late or duplicate packet of a frame already closed).
    /// </summary>
    private bool NewFrameFor(in PacketInfo p)
    {
        ulong newest = _open ? _id : _lastClosedId;
        bool anyFrame = _open || _hasClosed;
        if (anyFrame && p.ImageId <= newest)
        {
            ulong behind = newest - p.ImageId;
            if (behind < (ulong)_ring.SlotCount)
            {
                // A packet of a frame already closed. If that frame is the last one closed and it
                // has this packet, it is a duplicate; otherwise it is late and its frame went out
                // without it.
                if (!_open && p.ImageId == _lastClosedId && _ring.Slot(_lastClosedSlot).HasPacket(p.PacketNumber))
                    _counters.DuplicatePackets++;
                else
                    _counters.LatePackets++;
                return false;
            }
            // Far behind: the detector restarted its frame numbering.
            _counters.FrameIdResets++;
        }
        if (_open)
            Close();
        Open(in p);
        return true;
    }

    private void Open(in PacketInfo p)
    {
        _id = p.ImageId;
        _slot = _ring.SlotOf(p.ImageId);
        _ring.BeginWrite(_slot);
        ((Span<byte>)_ring.Slot(_slot).ReceivedBitmap).Clear();
        _received = 0;
        _highest = -1;
        _first = p;
        _open = true;
    }

    private void Close()
    {
        int missing = _nPackets - _received;
        if (missing > 0)
            ZeroMissing();
        ref SlotHeader h = ref _ring.Slot(_slot);
        h.ImageId = _id;
        h.FrameIndex = _first.FrameIndex;
        h.NReceivedPackets = (uint)_received;
        h.NMissingPackets = (uint)missing;
        h.Detector1 = _first.Detector1;
        h.Detector2 = _first.Detector2;
        long now = Libc.RealtimeNs();
        h.ReceiveTimeNs = now;
        h.ModuleId = _moduleId;
        h.BitDepth = (ushort)_g.BitDepth;
        h.Status = missing == 0 ? 0u : 1u;
        h.MissingModules = 0;
        ulong seq = _ring.EndWrite(_slot);
        _open = false;
        _hasClosed = true;
        _lastClosedId = _id;
        _lastClosedSlot = _slot;
        if (missing == 0)
            _counters.FramesComplete++;
        else
        {
            _counters.FramesIncomplete++;
            _counters.MissingPackets += missing;
        }
        var notice = new ModuleFrameNotice(_id, (ulong)missing, _moduleId, (ushort)_g.BitDepth, (uint)_received,
            _first.FrameIndex, _first.Detector1, _first.Detector2, seq, (ulong)now);
        if (!_publish(notice))
            _counters.NoticesDropped++;
    }

    private void ZeroMissing()
    {
        var words = MemoryMarshal.Cast<byte, ulong>(_ring.Slot(_slot).ReceivedBitmap);
        var data = _ring.SlotSpan(_slot);
        for (int word = 0; word * 64 < _nPackets; word++)
        {
            ulong bits = ~words[word];
            while (bits != 0)
            {
                int k = word * 64 + BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                if (k >= _nPackets)
                    break;
                data.Slice(k * _g.PayloadBytes, _g.PayloadBytesOf(k)).Clear();
            }
        }
    }
}
