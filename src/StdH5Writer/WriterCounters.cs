using StdDaq.Shared.Metrics;

namespace StdDaq.Writer;

/// <summary>The writer's counters (<see cref="CounterSet{TName}"/>; one stats line per stats_collection_period).</summary>
public enum WriterCounter
{
    FilesOpened,
    FilesClosed,
    FilesInterrupted,
    FilesFailed,
    ImagesWritten,
    ImagesMissing,
    BytesWritten,
    StreamGaps,
    MalformedMessages,
    AcksDropped,
    /// <summary>Runs closed because their agent went away.</summary>
    RunsOrphaned,
}

/// <summary>The writer's counter set, named like the other services' (meter StdDaq.Writer).</summary>
public static class WriterStats
{
    public static CounterSet<WriterCounter> Create(string detector) =>
        new("StdDaq.Writer", "writer", [new("detector", detector)]);
}
