using StdDaq.Shared.Files;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;

namespace StdDaq.Writer;

/// <summary>
/// The master file of a request written by N servers (scale-out writing): a NeXus NXmx file like a
/// single server's (<see cref="NexusImageFile"/>: the same detector, beam, sample and omega for all
/// n images, the same root attributes), whose <c>/entry/data/data</c> [n, H, W] and per-image
/// <c>image_id</c>, <c>status</c>, <c>frame_index</c>, <c>receive_time</c> are virtual datasets
/// (VDS) over the share files: row k of the share whose row 0 is master row f is master row f + k·N.
/// Readers (h5py, silx, DIALS) see one dataset in image order; rows no share file holds read as
/// pixels 0 and status 0xFFFF (not written). The share files are named relative to the master's
/// folder when they lie in it or below, so the set can be moved together; they are listed in the
/// root attribute <c>share_files</c>, with <c>shares</c> = N. Written at once, after every share
/// file was closed (not in SWMR writing: nothing in it changes later).
/// </summary>
public static class NexusMasterFile
{
    /// <summary>What the master says of itself: the share files' images written and rows.</summary>
    public sealed record Result(long ImagesWritten, IReadOnlyList<long> Rows);

    /// <summary>
    /// Creates the master file <paramref name="path"/> (as <see cref="NexusImageFile.Create"/>
    /// creates a file: roots, overwrite only of a regular HDF5 file) over <paramref name="spec"/>'s
    /// share files, each mapped with the rows it holds; <paramref name="interrupted"/>: why the
    /// request did not end whole (a share interrupted or failed), else null.
    /// </summary>
    public static Result Write(string path, NexusFileOptions o, MasterSpec spec, string? interrupted, bool overwrite,
        IReadOnlyList<string>? roots = null)
    {
        if (spec.Shares < 1 || spec.Files.Any(f => f.FirstRow < 0 || f.FirstRow >= spec.Shares))
            throw new ArgumentException($"master of {spec.Shares} shares: every share file's first row must be in 0 .. N - 1");
        // Each share file's rows and images written, read before anything is created.
        var rows = new List<long>();
        long written = 0;
        foreach (var f in spec.Files)
        {
            using var share = Hdf5File.OpenRead(f.File);
            long[] shape = share.Shape("/entry/data/data");
            if (shape.Length != 3 || shape[1] != o.Height || shape[2] != o.Width)
                throw new InvalidDataException($"{f.File}: images of [{string.Join(", ", shape.Skip(1))}], not [{o.Height}, {o.Width}]");
            rows.Add(Math.Min(shape[0], (o.NImages - f.FirstRow + spec.Shares - 1) / spec.Shares));
            written += share.Int64Attribute("n_images_written") ?? 0;
        }

        using var created = OutputPath.Create(path, roots ?? [], overwrite);
        try
        {
            using var file = NexusImageFile.CreateHdf5(created, path);
            string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            var mapped = spec.Files.Select((f, i) => (Name: Relative(folder, f.File), f.FirstRow, Rows: rows[i])).Where(f => f.Rows > 0).ToList();
            ulong n = (ulong)o.NImages;
            using (var entry = Hdf5Writing.CreateGroup(file.Id, "entry", path))
            {
                Hdf5Writing.WriteAttribute(entry.Id, "NX_class", "NXentry", path);
                Hdf5Writing.WriteAttribute(entry.Id, "default", "data", path);
                using var group = Hdf5Writing.CreateGroup(entry.Id, "data", path);
                Hdf5Writing.WriteAttribute(group.Id, "NX_class", "NXdata", path);
                Hdf5Writing.WriteAttribute(group.Id, "signal", "data", path);
                using var data = Virtual(group.Id, "data", Hdf5Writing.TypeOf((ImageDtype)o.Dtype), [n, (ulong)o.Height, (ulong)o.Width], [],
                    mapped, spec.Shares, path);
                Virtual(group.Id, "image_id", Hdf5.NATIVE_UINT64, [n], [], mapped, spec.Shares, path).Dispose();
                Virtual(group.Id, "status", Hdf5.NATIVE_UINT16, [n], BitConverter.GetBytes((ushort)ImageStatus.NotWritten), mapped, spec.Shares, path).Dispose();
                Virtual(group.Id, "frame_index", Hdf5.NATIVE_UINT64, [n], [], mapped, spec.Shares, path).Dispose();
                using (var times = Virtual(group.Id, "receive_time", Hdf5.NATIVE_INT64, [n], [], mapped, spec.Shares, path))
                    Hdf5Writing.WriteAttribute(times.Id, "units", "ns", path);
                Hdf5Writing.WriteDataset(group.Id, "n_images_written", written, null, path).Dispose();
                var now = DateTimeOffset.UtcNow;
                using var nxmx = NxmxLayout.Write(file, entry, data, o, path, now);
                nxmx.Grow(0, o.NImages);
                nxmx.WriteEndTime(now);
            }
            foreach (var (name, value) in o.Attributes)
                Hdf5Writing.WriteAttribute(file.Id, name, value, path);
            Hdf5Writing.WriteAttribute(file.Id, "n_images_requested", o.NImages, path);
            Hdf5Writing.WriteAttribute(file.Id, "n_images_written", written, path);
            Hdf5Writing.WriteAttribute(file.Id, "shares", (long)spec.Shares, path);
            Hdf5Writing.WriteAttribute(file.Id, "share_files", string.Join("\n", spec.Files.Select(f => Relative(folder, f.File))), path);
            Hdf5Writing.WriteAttribute(file.Id, "interrupted", (byte)(interrupted != null ? 1 : 0), path);
            Hdf5Writing.WriteAttribute(file.Id, "interrupted_reason", interrupted ?? "", NexusImageFile.ReasonCapacity, path);
            Hdf5.Check(Hdf5.H5Fflush(file.Id, 1), $"{path}: H5Fflush");
        }
        catch
        {
            created.Remove();
            throw;
        }
        return new Result(written, rows);
    }

    /// <summary>
    /// A virtual dataset of <paramref name="dims"/>: each share file's dataset of the same name
    /// (under /entry/data) mapped to rows First, First + N, ... (all of each row's other dimensions).
    /// </summary>
    private static H5DatasetHandle Virtual(long group, string name, long type, ulong[] dims, ReadOnlySpan<byte> fill,
        List<(string Name, long FirstRow, long Rows)> files, int shares, string what)
    {
        using var dcpl = new H5PropertyHandle(Hdf5.Check(Hdf5.H5Pcreate(Hdf5.P.DATASET_CREATE), $"{what}: H5Pcreate(H5P_DATASET_CREATE)"));
        if (!fill.IsEmpty)
            Hdf5.Check(Hdf5.H5Pset_fill_value(dcpl.Id, type, fill), $"{what}: H5Pset_fill_value({name})");
        foreach (var f in files)
        {
            var start = new ulong[dims.Length];
            var stride = Enumerable.Repeat(1UL, dims.Length).ToArray();
            var count = Enumerable.Repeat(1UL, dims.Length).ToArray();
            var block = (ulong[])dims.Clone();
            start[0] = (ulong)f.FirstRow;
            stride[0] = (ulong)shares;
            count[0] = (ulong)f.Rows;
            block[0] = 1;
            using var vspace = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(dims.Length, dims, dims), $"{what}: H5Screate_simple({name})"));
            Hdf5.Check(Hdf5.H5Sselect_hyperslab(vspace.Id, Hdf5.S.SELECT_SET, start, stride, count, block), $"{what}: H5Sselect_hyperslab({name})");
            var sourceDims = (ulong[])dims.Clone();
            sourceDims[0] = (ulong)f.Rows;
            using var source = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(dims.Length, sourceDims, sourceDims), $"{what}: H5Screate_simple({name})"));
            Hdf5.Check(Hdf5.H5Pset_virtual(dcpl.Id, vspace.Id, f.Name, $"/entry/data/{name}", source.Id), $"{what}: H5Pset_virtual({name}, {f.Name})");
        }
        using var space = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(dims.Length, dims, dims), $"{what}: H5Screate_simple({name})"));
        return new(Hdf5.Check(Hdf5.H5Dcreate2(group, name, type, space.Id, Hdf5.P.DEFAULT, dcpl.Id, Hdf5.P.DEFAULT), $"{what}: H5Dcreate2({name})"));
    }

    /// <summary>The share file's name as the master keeps it: relative to the master's folder when it lies there or below.</summary>
    private static string Relative(string folder, string file)
    {
        string full = Path.GetFullPath(file);
        string rel = Path.GetRelativePath(folder, full);
        return rel.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(rel) ? full : rel;
    }
}
