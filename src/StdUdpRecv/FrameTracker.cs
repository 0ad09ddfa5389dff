using StdDaq.Shared.Metrics;
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
/// <remarks>
/// <para><b>Receiving in place.</b> Before each recvmmsg, <see cref="AimBatch"/> aims the batch's
/// payload buffers at the places the next packets will most likely take: the open frame's packets
/// after the highest one received (skipping those already in), then the next frame's packets from
/// 0. The next frame's slot is opened for writing (odd sequence) before anything is aimed into it;
/// until its first packet arrives it is "tentative", and if a different frame comes instead (or
/// nothing comes for the timeout) it is given up: restored untouched if nothing landed in it, else
/// zeroed and published as <see cref="SlotStatus.Empty"/>. Only places whose packet is not yet
/// received are aimed at, so a datagram that lands in the wrong place only ever overwrites bytes
/// that are still to come or to be zeroed.</para>
/// <para>A datagram that landed where its header says it belongs needs no copy. Any other is
/// first rescued into its scratch buffer and copied into place from there. Before anything writes
/// into a slot (a copy, zeroing lost packets, opening a slot for an unexpected frame), the batch's
/// datagrams not yet processed that landed there are rescued the same way, so nothing is
/// overwritten before it is looked at. Packets are processed in arrival order either way, so the
/// counts and frames do not depend on where datagrams landed.</para>
/// <para><b>Aiming only what is new.</b> When every datagram of a batch was a valid packet that
/// landed where it was aimed, the messages aimed after them are still aimed right: the receive
/// window slides past the batch (<see cref="RecvBatch.MoveWindow"/>) and only the messages that
/// enter it are aimed, continuing from the place of the last one aimed. Anything else (a datagram
/// that landed elsewhere, a malformed or duplicate one, a frame closed incomplete, a prepared frame
/// given up, an empty receive, the end of the message array) re-aims the whole window as above.</para>
/// </remarks>
public sealed partial class FrameTracker
{
    private readonly ShmRing _ring;
    private readonly ModuleGeometry _g;
    private readonly CounterSet<ReceiverCounter> _counters;
    private readonly Func<ModuleFrameNotice, bool> _publish;
    private readonly RecvBatch _batch;
    private readonly bool _aim;
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

    // The next frame's slot, opened for writing before its first packet (see remarks).
    private bool _tentative;
    private ulong _tentId;
    private int _tentSlot;
    private ulong _tentPreviousSequence;
    private bool _tentDirty;

    // Where each message of the batch's array is aimed (slot -1: its scratch buffer).
    private readonly int[] _aimSlot;
    private readonly ulong[] _aimId;
    private readonly int[] _aimPacket;
    // The messages of the batch being processed, and the one being processed.
    private int _batchStart;
    private int _batchEnd;
    private int _current;
    // Messages from the window's start to _aimEnd - 1 are aimed into slots, the rest of the window at scratch.
    private int _aimEnd;
    // Datagrams of the batch being processed placed where they were aimed.
    private int _inPlace;
    // The last batch's size if all of it landed where aimed (the window may slide past it), else 0.
    private int _slide;
    // The frames changed other than by packets landing where aimed: re-aim the whole window.
    private bool _reaim;

    // The id step between the last frames opened, and whether the step before was the same.
    private ulong _step;
    private bool _stepSeenTwice;

    /// <param name="batch">The receive batch whose datagrams <see cref="OnPacket"/> places.</param>
    /// <param name="receiveInPlace">Aim receives at the packets' places in the slots (else every packet is copied once).</param>
    public FrameTracker(ShmRing ring, ModuleGeometry geometry, int moduleId, CounterSet<ReceiverCounter> counters,
        Func<ModuleFrameNotice, bool> publish, RecvBatch batch, bool receiveInPlace = true)
    {
        if (geometry.PacketsPerFrame > ModuleGeometry.MaxPacketsPerFrame)
            throw new ArgumentException($"{geometry.PacketsPerFrame} packets per frame exceed the slot bitmap ({ModuleGeometry.MaxPacketsPerFrame})");
        if (ring.SlotBytes < geometry.FrameBytes)
            throw new ArgumentException($"ring '{ring.Name}' slots of {ring.SlotBytes} bytes cannot hold a {geometry.FrameBytes}-byte frame");
        if (batch.HeaderBytes != geometry.HeaderBytes || batch.MaxPayloadBytes < geometry.PayloadBytes)
            throw new ArgumentException("the receive batch does not fit the module's packets");
        _ring = ring;
        _g = geometry;
        _moduleId = (ushort)moduleId;
        _counters = counters;
        _publish = publish;
        _batch = batch;
        // In place needs the next frame's slot to differ from the open one's.
        _aim = receiveInPlace && ring.SlotCount >= 2;
        _nPackets = geometry.PacketsPerFrame;
        _aimSlot = new int[batch.MessageCount];
        _aimId = new ulong[batch.MessageCount];
        _aimPacket = new int[batch.MessageCount];
        for (int i = 0; i < batch.MessageCount; i++)
        {
            batch.AimAtScratch(i);
            _aimSlot[i] = -1;
        }
    }

    public bool HasOpenFrame => _open;
    /// <summary>The image id of the last frame closed (0 before the first); read by the metrics from another thread, a little stale.</summary>
    public ulong LastClosedId => _lastClosedId;
    public ulong OpenImageId => _id;

    /// <summary>After a receive of <paramref name="count"/> datagrams, before they are processed.</summary>
    /// <remarks>The batch is the batch's messages <see cref="RecvBatch.Start"/> to Start + <paramref name="count"/> - 1.</remarks>
    public void BeginBatch(int count)
    {
        _batchStart = _batch.Start;
        _batchEnd = _batchStart + count;
        _current = _batchStart;
        _inPlace = 0;
        if (_tentative)
        {
            for (int i = _batchStart; i < _batchEnd; i++)
                if (_aimSlot[i] == _tentSlot)
                    _tentDirty = true;
        }
    }

    /// <summary>After the batch's datagrams were processed.</summary>
    public void EndBatch()
    {
        int count = _batchEnd - _batchStart;
        _slide = _inPlace == count ? count : 0;
        _batchStart = _batchEnd = _current = 0;
    }

    /// <summary>Places the batch's datagram in message <paramref name="index"/>, a valid packet described by <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void OnPacket(in PacketInfo p, int index, long nowTicks)
    {
        _current = index;
        int k = p.PacketNumber;
        if (_aimSlot[index] >= 0 && (_aimId[index] != p.ImageId || _aimPacket[index] != k))
            _batch.Rescue(index); // landed elsewhere: keep it safe from what happens to that place
        if (!_open || p.ImageId != _id)
        {
            if (!NewFrameFor(in p))
                return;
        }
        ref SlotHeader header = ref _ring.Slot(_slot);
        if (header.HasPacket(k))
        {
            _counters[ReceiverCounter.DuplicatePackets]++;
            return;
        }
        if (k < _highest)
            _counters[ReceiverCounter.OutOfOrderPackets]++;
        else
            _highest = k;
        if (_batch.InScratch(index))
        {
            RescueLandedAt(_slot, k);
            _batch.Payload(index).CopyTo(_ring.SlotSpan(_slot).Slice(k * _g.PayloadBytes, _g.PayloadBytesOf(k)));
            _counters[ReceiverCounter.CopiedPackets]++;
        }
        else
        {
            _inPlace++;
        }
        header.MarkPacket(k);
        _counters[ReceiverCounter.Packets]++;
        _counters[ReceiverCounter.Bytes] += _g.HeaderBytes + _g.PayloadBytesOf(k);
        _lastPacketTicks = nowTicks;
        if (++_received == _nPackets)
            Close();
    }

    /// <summary>
    /// Closes the open frame if no packet came for <paramref name="timeoutTicks"/>, and gives up
    /// the prepared next frame then too.
    /// </summary>
    public void OnIdle(long nowTicks, long timeoutTicks)
    {
        if (nowTicks - _lastPacketTicks < timeoutTicks)
            return;
        if (_open)
            Close();
        if (_tentative)
            GiveUpTentative();
    }

    /// <summary>Closes the open frame and gives up the prepared one (e.g. at shutdown).</summary>
    public void Flush()
    {
        if (_open)
            Close();
        if (_tentative)
            GiveUpTentative();
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
                    _counters[ReceiverCounter.DuplicatePackets]++;
                else
                    _counters[ReceiverCounter.LatePackets]++;
                return false;
            }
            // Far behind: the detector restarted its frame numbering.
            _counters[ReceiverCounter.FrameIdResets]++;
        }
        if (_open)
            Close();
        Open(in p);
        return true;
    }

    private void Open(in PacketInfo p)
    {
        if (_open || _hasClosed)
        {
            ulong previous = _open ? _id : _lastClosedId;
            ulong step = p.ImageId - previous;
            bool usable = p.ImageId > previous && step < (ulong)_ring.SlotCount;
            _stepSeenTwice = usable && step == _step;
            _step = usable ? step : 0;
        }
        _id = p.ImageId;
        if (_tentative && _tentId == p.ImageId)
        {
            // The expected next frame: its slot is open already and may hold its packets.
            _slot = _tentSlot;
            _tentative = false;
        }
        else
        {
            if (_tentative)
                GiveUpTentative();
            _slot = _ring.SlotOf(p.ImageId);
            RescueLandedIn(_slot);
            _ring.BeginWrite(_slot);
            _reaim = true;
        }
        ((Span<byte>)_ring.Slot(_slot).ReceivedBitmap).Clear();
        _received = 0;
        _highest = -1;
        _first = p;
        _open = true;
    }

    private void OpenTentative(ulong id)
    {
        _tentId = id;
        _tentSlot = _ring.SlotOf(id);
        _tentPreviousSequence = _ring.ReadSequence(_tentSlot);
        _tentDirty = false;
        _ring.BeginWrite(_tentSlot);
        _tentative = true;
    }

    /// <summary>
    /// The prepared next frame did not come. If nothing landed in its slot, the slot is restored as
    /// it was; otherwise it is zeroed and published as <see cref="SlotStatus.Empty"/>.
    /// </summary>
    private void GiveUpTentative()
    {
        _tentative = false;
        _reaim = true;
        if (!_tentDirty && _ring.CancelWrite(_tentSlot, _tentPreviousSequence))
            return;
        RescueLandedIn(_tentSlot);
        _ring.SlotSpan(_tentSlot)[..checked((int)_g.FrameBytes)].Clear();
        ((Span<byte>)_ring.Slot(_tentSlot).ReceivedBitmap).Clear();
        WriteHeader(_tentSlot, 0, default, 0, 0, SlotStatus.Empty);
        _ring.EndWrite(_tentSlot);
    }

    /// <summary>Fills a slot's header before it is published; returns the receive time written.</summary>
    private long WriteHeader(int slot, ulong id, in PacketInfo first, int received, int missing, uint status)
    {
        ref SlotHeader h = ref _ring.Slot(slot);
        h.ImageId = id;
        h.FrameIndex = first.FrameIndex;
        h.NReceivedPackets = (uint)received;
        h.NMissingPackets = (uint)missing;
        h.Detector1 = first.Detector1;
        h.Detector2 = first.Detector2;
        long now = Libc.RealtimeNs();
        h.ReceiveTimeNs = now;
        h.ModuleId = _moduleId;
        h.BitDepth = (ushort)_g.BitDepth;
        h.Status = status;
        h.NMissingModules = 0;
        return now;
    }

    /// <summary>Rescues the batch's unprocessed datagrams that landed in <paramref name="slot"/>.</summary>
    private void RescueLandedIn(int slot)
    {
        for (int j = _current; j < _batchEnd; j++)
            if (_aimSlot[j] == slot)
                _batch.Rescue(j);
    }

    /// <summary>Rescues the batch's unprocessed datagrams that landed at packet <paramref name="k"/>'s place in <paramref name="slot"/>.</summary>
    private void RescueLandedAt(int slot, int k)
    {
        for (int j = _current; j < _batchEnd; j++)
            if (_aimSlot[j] == slot && _aimPacket[j] == k)
                _batch.Rescue(j);
    }

    private void Close()
    {
        int missing = _nPackets - _received;
        if (missing > 0)
        {
            RescueLandedIn(_slot);
            ZeroMissing();
            _reaim = true;
        }
        long now = WriteHeader(_slot, _id, _first, _received, missing, missing == 0 ? SlotStatus.Good : SlotStatus.Incomplete);
        ulong seq = _ring.EndWrite(_slot);
        _open = false;
        _hasClosed = true;
        _lastClosedId = _id;
        _lastClosedSlot = _slot;
        if (missing == 0)
            _counters[ReceiverCounter.FramesComplete]++;
        else
        {
            _counters[ReceiverCounter.FramesIncomplete]++;
            _counters[ReceiverCounter.MissingPackets] += missing;
        }
        var notice = new ModuleFrameNotice(_id, (ulong)missing, _moduleId, (ushort)_g.BitDepth, (uint)_received,
            _first.FrameIndex, _first.Detector1, _first.Detector2, seq, (ulong)now);
        if (!_publish(notice))
            _counters[ReceiverCounter.NoticesDropped]++;
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
