using StdDaq.Shared.Files;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;

namespace StdDaq.Agent;

/// <summary>One share's file as the master file maps it: its rows are master rows First, First + N, ...</summary>
/// <param name="File">The share file's path (the master names it relative to its own folder).</param>
/// <param name="First">The master row of the share file's row 0.</param>
/// <param name="Rows">Rows the share file holds (its data's first dimension), at most the rows it was given.</param>
public sealed record ShareFileRows(string File, long First, long Rows);

/// <summary>
/// The master file of a request written by N servers (scale-out writing): an HDF5 1.10 file whose
/// <c>/entry/data/data</c> [n, H, W] and per-image <c>image_id</c>, <c>status</c>,
/// <c>frame_index</c>, <c>receive_time</c> are virtual datasets (VDS) over the share files, row
/// <c>First + k·N</c> of the master being row k of a share, so a reader sees one dataset in image
/// order. Rows no share file holds read as fill values: pixels 0, status 0xFFFF (not written).
/// The share files are named relative to the master's folder, so the set can be moved together.
/// Root attributes as in a single server's file (<c>n_images_requested</c>, <c>n_images_written</c>,
/// <c>interrupted</c>, <c>interrupted_reason</c>, ...) plus <c>shares</c> and <c>share_files</c>.
/// </summary>
public static class ShareMasterFile
{
    public static void Write(string path, IReadOnlyList<string> roots, bool overwrite, long n, int shares, int height, int width,
        ImageDtype dtype, IReadOnlyList<ShareFileRows> files, IReadOnlyList<KeyValuePair<string, string>> attributes, long written,
        string? interrupted)
    {
        using var created = OutputPath.Create(path, roots, overwrite);
        try
        {
            Hdf5.Quiet();
            using var fapl = new H5PropertyHandle(Hdf5.Check(Hdf5.H5Pcreate(Hdf5.P.FILE_ACCESS), $"{path}: H5Pcreate(H5P_FILE_ACCESS)"));
            Hdf5.Check(Hdf5.H5Pset_fclose_degree(fapl.Id, Hdf5.F.CLOSE_STRONG), $"{path}: H5Pset_fclose_degree");
            Hdf5.Check(Hdf5.H5Pset_libver_bounds(fapl.Id, Hdf5.F.LIBVER_V110, Hdf5.F.LIBVER_V110), $"{path}: H5Pset_libver_bounds(v110)");
            long id = Hdf5.H5Fcreate(created.ProcPath, Hdf5.F.ACC_TRUNC, Hdf5.P.DEFAULT, fapl.Id);
            if (id < 0)
                throw new Hdf5Exception($"{path}: H5Fcreate(H5F_ACC_TRUNC) failed: {Hdf5.TakeErrorStack()}");
            using var file = new H5FileHandle(id);
            int fd = Hdf5Writing.CloseOnExec(id, fapl.Id, path);
            if (!created.IsSameFile(fd))
                throw new Hdf5Exception($"{path}: libhdf5 opened another file than the one created");
            string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            var mapped = files.Where(f => f.Rows > 0).ToList();
            using (var entry = Hdf5Writing.CreateGroup(id, "entry", path))
            {
                Hdf5Writing.WriteAttribute(entry.Id, "NX_class", "NXentry", path);
                Hdf5Writing.WriteAttribute(entry.Id, "default", "data", path);
                using var group = Hdf5Writing.CreateGroup(entry.Id, "data", path);
                Hdf5Writing.WriteAttribute(group.Id, "NX_class", "NXdata", path);
                Hdf5Writing.WriteAttribute(group.Id, "signal", "data", path);
                using (var data = Virtual(group.Id, "data", Hdf5Writing.TypeOf(dtype), [(ulong)n, (ulong)height, (ulong)width], [],
                    mapped, shares, folder, path))
                    Hdf5Writing.WriteAttribute(data.Id, "interpretation", "image", path);
                Virtual(group.Id, "image_id", Hdf5.NATIVE_UINT64, [(ulong)n], [], mapped, shares, folder, path).Dispose();
                Virtual(group.Id, "status", Hdf5.NATIVE_UINT16, [(ulong)n], BitConverter.GetBytes((ushort)ImageStatus.NotWritten),
                    mapped, shares, folder, path).Dispose();
                Virtual(group.Id, "frame_index", Hdf5.NATIVE_UINT64, [(ulong)n], [], mapped, shares, folder, path).Dispose();
                using (var times = Virtual(group.Id, "receive_time", Hdf5.NATIVE_INT64, [(ulong)n], [], mapped, shares, folder, path))
                    Hdf5Writing.WriteAttribute(times.Id, "units", "ns", path);
                Hdf5Writing.WriteDataset(group.Id, "n_images_written", written, null, path).Dispose();
            }
            foreach (var (name, value) in attributes)
                Hdf5Writing.WriteAttribute(id, name, value, path);
            Hdf5Writing.WriteAttribute(id, "default", "entry", path);
            Hdf5Writing.WriteAttribute(id, "file_name", Path.GetFileName(path), path);
            Hdf5Writing.WriteAttribute(id, "file_time", DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"), path);
            Hdf5Writing.WriteAttribute(id, "n_images_requested", n, path);
            Hdf5Writing.WriteAttribute(id, "n_images_written", written, path);
            Hdf5Writing.WriteAttribute(id, "shares", (long)shares, path);
            Hdf5Writing.WriteAttribute(id, "share_files", string.Join("\n", files.Select(f => Relative(folder, f.File))), path);
            Hdf5Writing.WriteAttribute(id, "interrupted", (byte)(interrupted != null ? 1 : 0), path);
            Hdf5Writing.WriteAttribute(id, "interrupted_reason", interrupted ?? "", path);
            Hdf5.Check(Hdf5.H5Fflush(id, 1), $"{path}: H5Fflush");
        }
        catch
        {
            created.Remove();
            throw;
        }
    }

    /// <summary>
    /// A virtual dataset of <paramref name="dims"/>: each share file's dataset of the same name
    /// (under /entry/data) mapped to rows First, First + N, ... (all of each row's other dimensions).
    /// </summary>
    private static H5DatasetHandle Virtual(long group, string name, long type, ulong[] dims, ReadOnlySpan<byte> fill,
        List<ShareFileRows> files, int shares, string folder, string what)
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
            start[0] = (ulong)f.First;
            stride[0] = (ulong)shares;
            count[0] = (ulong)f.Rows;
            block[0] = 1;
            using var vspace = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(dims.Length, dims, dims), $"{what}: H5Screate_simple({name})"));
            Hdf5.Check(Hdf5.H5Sselect_hyperslab(vspace.Id, Hdf5.S.SELECT_SET, start, stride, count, block), $"{what}: H5Sselect_hyperslab({name})");
            var sourceDims = (ulong[])dims.Clone();
            sourceDims[0] = (ulong)f.Rows;
            using var source = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(dims.Length, sourceDims, sourceDims), $"{what}: H5Screate_simple({name})"));
            Hdf5.Check(Hdf5.H5Pset_virtual(dcpl.Id, vspace.Id, Relative(folder, f.File), $"/entry/data/{name}", source.Id),
                $"{what}: H5Pset_virtual({name}, {f.File})");
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
