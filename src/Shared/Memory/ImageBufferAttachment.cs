using StdDaq.Shared.Config;

namespace StdDaq.Shared.Memory;

/// <summary>
/// A reader's hold on the detector's ImageBuffer (the writer's, a stream sender's), which the
/// assembler or a replica makes: waited for at start (<see cref="Wait"/>, at most wait_for_peers_s,
/// saying once that it waits); if it does not come, attached when an image first needs it
/// (<see cref="Ring"/>). A failure to attach is reported once, not per image.
/// </summary>
public sealed class ImageBufferAttachment(DetectorConfig config, Action<string> waiting, Action<string> unavailable) : IDisposable
{
    private ShmRing? _ring;
    private bool _warned;

    /// <summary>Waits for the ImageBuffer, at most the config's wait_for_peers_s or until <paramref name="ct"/>; goes on without it.</summary>
    public void Wait(CancellationToken ct)
    {
        try
        {
            _ring ??= ShmRing.WaitAttach(config.ImageBufferName, RingKind.ImageBuffer, config.ImageBytes, null, writable: false,
                config.WaitForPeers, $"StdAssembler of detector '{config.DetectorName}'", waiting, ct);
        }
        catch (RingBufferException e)
        {
            Unavailable(e.Message);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The ImageBuffer, attached now if it was not yet; null while it is not there.</summary>
    public ShmRing? Ring
    {
        get
        {
            if (_ring != null)
                return _ring;
            try
            {
                _ring = ShmRing.Attach(config.ImageBufferName, RingKind.ImageBuffer, slotBytes: config.ImageBytes);
            }
            catch (RingBufferException e)
            {
                Unavailable(e.Message);
            }
            return _ring;
        }
    }

    private void Unavailable(string message)
    {
        if (!_warned)
            unavailable(message);
        _warned = true;
    }

    /// <summary>Unmaps the ImageBuffer, if it was attached.</summary>
    public void Dispose() => _ring?.Dispose();
}
