using StdDaq.Shared.Metrics;

namespace StdDaq.Assembler;

/// <summary>
/// The assembler's counters (<see cref="CounterSet{TName}"/>), written by its loop thread. Images
/// published = good + incomplete + id_mismatch; discarded images (--discard-incomplete) were not
/// published. The pixel counts are JUNGFRAU converted sentinels: invalid gain code, saturated, and
/// pixels of lost packets.
/// </summary>
public enum AssemblerCounter
{
    ImagesGood,
    ImagesIncomplete,
    ImagesIdMismatch,
    ImagesDiscarded,
    ModulesMissing,
    FramesWithLostPackets,
    FramesOverrun,
    FramesLate,
    NoticesDuplicate,
    NoticesMalformed,
    MetadataDropped,
    /// <summary>Shown only when not 0, like the pixel counts.</summary>
    PixelsInvalidGain,
    PixelsSaturated,
    PixelsLostPackets,
    ImageIdResets,
}

/// <summary>What the assembler's stats line and tests derive from its counters.</summary>
public static class AssemblerStats
{
    public static CounterSet<AssemblerCounter> Create(string detector) =>
        new("StdDaq.Assembler", "assembler", [new("detector", detector)]);

    extension(CounterSnapshot<AssemblerCounter> s)
    {
        public long ImagesPublished => s[AssemblerCounter.ImagesGood] + s[AssemblerCounter.ImagesIncomplete] + s[AssemblerCounter.ImagesIdMismatch];

        /// <summary>The stats line: key=value pairs (the period's values for a difference), then the image rate over <paramref name="seconds"/>.</summary>
        public string Format(double seconds) =>
            s.Format(n => n >= AssemblerCounter.PixelsInvalidGain) + (seconds > 0 ? $" image_rate_hz={s.ImagesPublished / seconds:F1}" : "");
    }
}
