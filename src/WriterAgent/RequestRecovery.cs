using System.Text.Json.Nodes;
using StdDaq.Shared.Interop;

namespace StdDaq.Agent;

/// <summary>
/// A request the broker delivers again (redelivered) may have been begun by an agent that died:
/// then its output file exists and carries its request id. Such a request is not written a second
/// time (the images it asked for are gone from the buffer by now): it ends with what the file says,
/// read once the writer has closed it (the writer closes a run whose agent went away at once; while
/// it writes the file, the file's SWMR flag keeps readers without SWMR out).
/// </summary>
public static class RequestRecovery
{
    /// <summary>The outcome from the file the request began; null when no agent began it (no file of this request).</summary>
    public static RunOutcome? Recover(WriteRequest request, string requestId, TimeSpan waitClosed, CancellationToken ct,
        TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        string path = request.OutputFile;
        long start = time.GetTimestamp();
        while (true)
        {
            if (!File.Exists(path))
                return null;
            try
            {
                using var f = Hdf5File.OpenRead(path);
                if (f.StringAttribute("request_id") != requestId)
                    return null; // another request's file (overwrite), or not ours: this request never began
                return Outcome(request, f);
            }
            catch (Hdf5Exception e) when (e.Message.Contains("lock", StringComparison.OrdinalIgnoreCase)
                || e.Message.Contains("already open for write", StringComparison.Ordinal))
            {
                // The writer still has it open (closing it; SWMR writing flags the file as open for
                // write, and refuses readers without SWMR until it closes): wait, at most waitClosed.
                if (time.GetElapsedTime(start) >= waitClosed)
                    return new RunOutcome(false,
                        $"the writer agent restarted during this request, and '{path}' is still open in the writer after " +
                        $"{waitClosed.TotalSeconds:F0} s: what it holds is not known", 0);
                Task.Delay(TimeSpan.FromMilliseconds(200), time, ct).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is Hdf5Exception or InvalidDataException)
            {
                return null; // not an HDF5 file of ours: this request never began it
            }
        }
    }

    private static RunOutcome Outcome(WriteRequest request, Hdf5File f)
    {
        long requested = f.Int64Attribute("n_images_requested") ?? request.NImages;
        long written = f.Int64Attribute("n_images_written") ?? 0;
        bool interrupted = (f.Int64Attribute("interrupted") ?? 1) != 0;
        string? reason = f.StringAttribute("interrupted_reason");
        var summary = new JsonObject
        {
            ["output_file"] = request.OutputFile,
            ["n_images_requested"] = requested,
            ["n_images_written"] = written,
            ["n_images_missing"] = Math.Max(0, requested - written),
            ["agent_restarted"] = true,
        };
        if (f.StringAttribute("run_id") is { } run && long.TryParse(run, out long runId))
            summary["run_id"] = runId;
        if (!interrupted)
            // The writer had closed the file as complete; only the final status was lost with the agent.
            return new RunOutcome(true, summary.ToJsonString(), written);
        summary["interrupted"] = reason ?? "interrupted";
        return new RunOutcome(false,
            $"the writer agent restarted during this request: '{request.OutputFile}' holds {written} of {requested} images " +
            $"and is marked interrupted ({reason ?? "no reason recorded"}); " + summary.ToJsonString(), written);
    }
}
