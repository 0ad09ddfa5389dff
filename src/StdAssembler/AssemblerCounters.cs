using System.Text;

namespace StdDaq.Assembler;

/// <summary>The assembler's counters: written by its loop thread, read as a <see cref="Snapshot"/>.</summary>
public sealed class AssemblerCounters
{
    internal long ImagesGood;
    internal long ImagesIncomplete;
    internal long ImagesIdMismatch;
    internal long ImagesDiscarded;
    internal long ModulesMissing;
    internal long FramesWithLostPackets;
    internal long FramesOverrun;
    internal long FramesLate;
    internal long NoticesDuplicate;
    internal long NoticesMalformed;
    internal long MetadataDropped;
    internal long ImageIdResets;
    internal long PixelsInvalidGain;
    internal long PixelsSaturated;
    internal long PixelsLostPackets;

    public Snapshot Read() => new(
        Volatile.Read(ref ImagesGood), Volatile.Read(ref ImagesIncomplete), Volatile.Read(ref ImagesIdMismatch),
        Volatile.Read(ref ImagesDiscarded), Volatile.Read(ref ModulesMissing), Volatile.Read(ref FramesWithLostPackets),
        Volatile.Read(ref FramesOverrun), Volatile.Read(ref FramesLate), Volatile.Read(ref NoticesDuplicate),
        Volatile.Read(ref NoticesMalformed), Volatile.Read(ref MetadataDropped), Volatile.Read(ref ImageIdResets),
        Volatile.Read(ref PixelsInvalidGain), Volatile.Read(ref PixelsSaturated), Volatile.Read(ref PixelsLostPackets));

    /// <summary>
    /// Counter values at one moment. Images published = good + incomplete + id_mismatch;
    /// discarded images (--discard-incomplete) were not published. The pixel counts are JUNGFRAU
    /// converted sentinels: invalid gain code, saturated, and pixels of lost packets.
    /// </summary>
    public readonly record struct Snapshot(
        long ImagesGood, long ImagesIncomplete, long ImagesIdMismatch, long ImagesDiscarded, long ModulesMissing,
        long FramesWithLostPackets, long FramesOverrun, long FramesLate, long NoticesDuplicate, long NoticesMalformed,
        long MetadataDropped, long ImageIdResets, long PixelsInvalidGain, long PixelsSaturated, long PixelsLostPackets)
    {
        public long ImagesPublished => ImagesGood + ImagesIncomplete + ImagesIdMismatch;

        public static Snapshot operator -(Snapshot a, Snapshot b) => new(
            a.ImagesGood - b.ImagesGood, a.ImagesIncomplete - b.ImagesIncomplete, a.ImagesIdMismatch - b.ImagesIdMismatch,
            a.ImagesDiscarded - b.ImagesDiscarded, a.ModulesMissing - b.ModulesMissing,
            a.FramesWithLostPackets - b.FramesWithLostPackets, a.FramesOverrun - b.FramesOverrun,
            a.FramesLate - b.FramesLate, a.NoticesDuplicate - b.NoticesDuplicate, a.NoticesMalformed - b.NoticesMalformed,
            a.MetadataDropped - b.MetadataDropped, a.ImageIdResets - b.ImageIdResets,
            a.PixelsInvalidGain - b.PixelsInvalidGain, a.PixelsSaturated - b.PixelsSaturated,
            a.PixelsLostPackets - b.PixelsLostPackets);

        public string Format(double seconds)
        {
            var sb = new StringBuilder();
            sb.Append($"images_good={ImagesGood} images_incomplete={ImagesIncomplete} images_id_mismatch={ImagesIdMismatch}");
            sb.Append($" images_discarded={ImagesDiscarded} modules_missing={ModulesMissing} frames_with_lost_packets={FramesWithLostPackets}");
            sb.Append($" frames_overrun={FramesOverrun} frames_late={FramesLate} notices_duplicate={NoticesDuplicate}");
            sb.Append($" notices_malformed={NoticesMalformed} metadata_dropped={MetadataDropped}");
            if (PixelsInvalidGain != 0 || PixelsSaturated != 0 || PixelsLostPackets != 0)
                sb.Append($" pixels_invalid_gain={PixelsInvalidGain} pixels_saturated={PixelsSaturated} pixels_lost_packets={PixelsLostPackets}");
            if (ImageIdResets != 0)
                sb.Append($" image_id_resets={ImageIdResets}");
            if (seconds > 0)
                sb.Append($" image_rate_hz={ImagesPublished / seconds:F1}");
            return sb.ToString();
        }
    }
}
