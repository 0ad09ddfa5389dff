using System.Diagnostics;
using System.Text.Json;
using StdDaq.Shared.Config;
using StdDaq.Shared.Memory;
using StdDaq.Testing;

namespace StdDaq.StreamChild;

/// <summary>
/// Checks the replica's ImageBuffer (a ring of at least as many slots as the source sent images,
/// so nothing published was overwritten): waits up to wait_ms until the slot of last_id holds it,
/// then takes every slot holding an image (even sequence, not empty) and checks it against the
/// source's pattern. Prints one JSON line: images (how many), ids (as ranges "1-9,11-20"), bad
/// (ids whose pixels or header differ), problems (the first few), odd (slots left being written).
/// </summary>
public static class Verify
{
    public static int Run(string configPath, ulong lastId, int waitMs)
    {
        var config = DetectorConfigLoader.Load(configPath);
        using var ring = ShmRing.Attach(config.ImageBufferName, RingKind.ImageBuffer);
        using var lease = ring.Lease();
        int lastSlot = ring.SlotOf(lastId);
        var wait = Stopwatch.StartNew();
        while (!(ring.Slot(lastSlot).ImageId == lastId && (ring.ReadSequence(lastSlot) & 1) == 0) && wait.ElapsedMilliseconds < waitMs)
            Thread.Sleep(20);
        var ids = new List<ulong>();
        var bad = new List<ulong>();
        var problems = new List<string>();
        int odd = 0;
        for (int slot = 0; slot < ring.SlotCount; slot++)
        {
            ulong seq = ring.ReadSequence(slot);
            ref var h = ref ring.Slot(slot);
            if ((seq & 1) != 0)
            {
                odd++;
                continue;
            }
            if (h.Status == SlotStatus.Empty || h.ImageId == 0)
                continue;
            ulong id = h.ImageId;
            ids.Add(id);
            if (ImagePattern.Problem(ring, slot) is { } problem)
            {
                bad.Add(id);
                if (problems.Count < 5)
                    problems.Add(problem);
            }
        }
        ids.Sort();
        bad.Sort();
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["images"] = ids.Count,
            ["ids"] = Ranges(ids),
            ["bad"] = bad,
            ["problems"] = problems,
            ["odd"] = odd,
        }));
        return 0;
    }

    private static string Ranges(List<ulong> ids)
    {
        var parts = new List<string>();
        for (int i = 0; i < ids.Count;)
        {
            int j = i;
            while (j + 1 < ids.Count && ids[j + 1] == ids[j] + 1)
                j++;
            parts.Add(i == j ? $"{ids[i]}" : $"{ids[i]}-{ids[j]}");
            i = j + 1;
        }
        return string.Join(',', parts);
    }
}
