using System.Runtime.CompilerServices;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;

namespace StdDaq.UdpRecv;

// Aiming the receive batch's messages at the places the next packets will take (see the remarks on FrameTracker).
public sealed partial class FrameTracker
{
    /// <summary>
    /// Aims the batch's buffers before a receive (see remarks). The next frame is only prepared
    /// while packets keep coming (the last one less than <paramref name="timeoutTicks"/> ago).
    /// </summary>
    public void AimBatch(long nowTicks, long timeoutTicks)
    {
        int slide = _slide;
        _slide = 0;
        if (!_aim)
            return; // every message stays aimed at its scratch buffer
        int start = _batch.Start;
        int end = start + _batch.Capacity;
        if (slide > 0 && !_reaim && _aimEnd == end && end + slide <= _batch.MessageCount)
        {
            _batch.MoveWindow(start + slide);
            if (ExtendAims(end, end + slide, nowTicks, timeoutTicks))
                return;
        }
        _batch.MoveWindow(0);
        AimWindow(nowTicks, timeoutTicks);
        _reaim = false;
    }

    /// <summary>Aims the whole window: the open frame's places after the highest packet received, then the next frame's.</summary>
    private void AimWindow(long nowTicks, long timeoutTicks)
    {
        int i = _batch.Start;
        int end = i + _batch.Capacity;
        if (_open)
            i = AimFrame(_slot, _id, _highest + 1, i, end, skipReceived: true);
        // The next frame is predictable when the last two frames came the same step apart
        // (1 for frame numbers; JUNGFRAU bunch ids may step by more).
        if (i < end && Predictable(nowTicks, timeoutTicks))
        {
            ulong next = (_open ? _id : _lastClosedId) + _step;
            if (_tentative && _tentId != next)
                GiveUpTentative();
            if (!_tentative)
                OpenTentative(next);
            i = AimFrame(_tentSlot, next, 0, i, end, skipReceived: false);
        }
        _aimEnd = i;
        AimRestAtScratch(i, end);
    }

    private bool Predictable(long nowTicks, long timeoutTicks) =>
        _stepSeenTwice && (_open || _hasClosed) && nowTicks - _lastPacketTicks < timeoutTicks;

    /// <summary>
    /// Aims messages <paramref name="from"/> to <paramref name="to"/> - 1, which entered the window,
    /// at the places after the one message <paramref name="from"/> - 1 is aimed at: the rest of that
    /// frame (skipping packets received, if it is the open frame), then the next frame's. Returns
    /// false if that frame is no longer open or prepared (the caller re-aims the whole window).
    /// </summary>
    private bool ExtendAims(int from, int to, long nowTicks, long timeoutTicks)
    {
        int slot = _aimSlot[from - 1];
        ulong id = _aimId[from - 1];
        int k = _aimPacket[from - 1] + 1;
        int j = from;
        while (j < to)
        {
            if (k == _nPackets)
            {
                // That frame ends; the places go on in the frame after it, the prepared one.
                if (_tentative && id == _tentId)
                    break; // only one frame ahead is prepared
                ulong next = id + _step;
                if (_tentative)
                {
                    if (_tentId != next)
                        return false;
                }
                else
                {
                    if (!Predictable(nowTicks, timeoutTicks) || id != (_open ? _id : _lastClosedId))
                        break;
                    OpenTentative(next);
                }
                slot = _tentSlot;
                id = next;
                k = 0;
                continue;
            }
            if (_open && id == _id)
            {
                if (_ring.Slot(slot).HasPacket(k))
                {
                    k++;
                    continue;
                }
            }
            else if (!_tentative || id != _tentId)
            {
                return false;
            }
            AimAt(j, slot, id, k);
            j++;
            k++;
        }
        _aimEnd = j;
        AimRestAtScratch(j, to);
        return true;
    }

    private int AimFrame(int slot, ulong id, int fromPacket, int i, int end, bool skipReceived)
    {
        ref SlotHeader h = ref _ring.Slot(slot);
        for (int k = fromPacket; k < _nPackets && i < end; k++)
        {
            if (skipReceived && h.HasPacket(k))
                continue;
            AimAt(i, slot, id, k);
            i++;
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AimAt(int i, int slot, ulong id, int k)
    {
        _batch.Aim(i, _ring, slot, (long)k * _g.PayloadBytes, _g.PayloadBytesOf(k));
        _aimSlot[i] = slot;
        _aimId[i] = id;
        _aimPacket[i] = k;
    }

    /// <summary>Messages <paramref name="from"/> to <paramref name="to"/> - 1 go to their scratch buffers (most already do).</summary>
    private void AimRestAtScratch(int from, int to)
    {
        for (int j = from; j < to; j++)
        {
            if (_aimSlot[j] >= 0)
            {
                _batch.AimAtScratch(j);
                _aimSlot[j] = -1;
            }
        }
    }
}
