using System.Runtime.InteropServices;
using System.Text;

namespace StdDaq.Shared.Interop;

/// <summary>
/// The few composite libhdf5 steps a file writer repeats: groups, attributes (scalars, strings,
/// float64 vectors), datasets of a given shape, scalar and small datasets with their units, soft
/// links, and the metadata cache setting. <c>what</c> arguments prefix error messages
/// (normally the file's path), so a failure reads "path: H5Acreate2(name) failed: …". <c>loc</c> is
/// the id of the file or group the object goes in. Failures throw <see cref="Hdf5Exception"/>.
/// Call <see cref="Hdf5.Quiet"/> on the thread first, or libhdf5 also prints its error stack.
/// </summary>
public static unsafe class Hdf5Writing
{
    /// <summary>
    /// The descriptor libhdf5 (sec2 driver) holds for <paramref name="fileId"/>, marked close-on-exec:
    /// libhdf5 opens files without O_CLOEXEC, so a process started meanwhile (a broker, a helper)
    /// would inherit the descriptor and its lock and keep the file locked after we closed it.
    /// </summary>
    public static int CloseOnExec(long fileId, long faplId, string path)
    {
        void* handle;
        Hdf5.Check(Hdf5.H5Fget_vfd_handle(fileId, faplId, &handle), $"{path}: H5Fget_vfd_handle");
        int fd = *(int*)handle;
        if (Libc.fcntl(fd, Libc.F_SETFD, Libc.FD_CLOEXEC) != 0)
            throw new Hdf5Exception($"{path}: fcntl(FD_CLOEXEC) failed: errno {Marshal.GetLastPInvokeError()}");
        return fd;
    }

    /// <summary>The native HDF5 type of an image dtype.</summary>
    public static long TypeOf(Streams.ImageDtype dtype) => dtype switch
    {
        Streams.ImageDtype.UInt8 => Hdf5.NATIVE_UINT8,
        Streams.ImageDtype.UInt16 => Hdf5.NATIVE_UINT16,
        Streams.ImageDtype.UInt32 => Hdf5.NATIVE_UINT32,
        Streams.ImageDtype.UInt64 => Hdf5.NATIVE_UINT64,
        Streams.ImageDtype.Float32 => Hdf5.NATIVE_FLOAT,
        Streams.ImageDtype.Float64 => Hdf5.NATIVE_DOUBLE,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "no HDF5 type for this dtype"),
    };

    /// <summary>A new group <paramref name="name"/> in <paramref name="loc"/>, default property lists; an existing one is an error.</summary>
    public static H5GroupHandle CreateGroup(long loc, string name, string what) =>
        new(Hdf5.Check(Hdf5.H5Gcreate2(loc, name, Hdf5.P.DEFAULT, Hdf5.P.DEFAULT, Hdf5.P.DEFAULT), $"{what}: H5Gcreate2({name})"));

    /// <summary>The existing dataset <paramref name="name"/> in <paramref name="loc"/>.</summary>
    public static H5DatasetHandle OpenDataset(long loc, string name, string what) =>
        new(Hdf5.Check(Hdf5.H5Dopen2(loc, name, Hdf5.P.DEFAULT), $"{what}: H5Dopen2({name})"));

    /// <summary>A chunked dataset of <paramref name="type"/>, <paramref name="dims"/> now, growable up to <paramref name="maxDims"/>.</summary>
    public static H5DatasetHandle CreateDataset(long loc, string name, long type, ReadOnlySpan<ulong> dims, ReadOnlySpan<ulong> maxDims,
        H5PropertyHandle dcpl, string what)
    {
        using var space = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(dims.Length, dims, maxDims), $"{what}: H5Screate_simple({name})"));
        return new(Hdf5.Check(Hdf5.H5Dcreate2(loc, name, type, space.Id, Hdf5.P.DEFAULT, dcpl.Id, Hdf5.P.DEFAULT), $"{what}: H5Dcreate2({name})"));
    }

    /// <summary>
    /// A 1-d chunked dataset of <paramref name="type"/>, empty, growable up to <paramref name="max"/>
    /// elements (chunks of at most <paramref name="chunk"/>), with <paramref name="fill"/> as its
    /// fill value unless empty. It grows with <see cref="Append{T}"/>.
    /// </summary>
    public static H5DatasetHandle CreateGrowable(long loc, string name, long type, long max, int chunk, ReadOnlySpan<byte> fill, string what)
    {
        using var dcpl = new H5PropertyHandle(Hdf5.Check(Hdf5.H5Pcreate(Hdf5.P.DATASET_CREATE), $"{what}: H5Pcreate(H5P_DATASET_CREATE)"));
        ReadOnlySpan<ulong> chunkDims = [(ulong)Math.Min(max, chunk)];
        Hdf5.Check(Hdf5.H5Pset_chunk(dcpl.Id, 1, chunkDims), $"{what}: H5Pset_chunk({name})");
        if (!fill.IsEmpty)
            Hdf5.Check(Hdf5.H5Pset_fill_value(dcpl.Id, type, fill), $"{what}: H5Pset_fill_value({name})");
        return CreateDataset(loc, name, type, [0], [(ulong)max], dcpl, what);
    }

    /// <summary>Sets a 1-d dataset's extent to <paramref name="start"/> + the values and writes them at <paramref name="start"/>.</summary>
    public static void Append<T>(H5DatasetHandle ds, long memType, long start, ReadOnlySpan<T> values, string what) where T : unmanaged
    {
        long end = start + values.Length;
        ReadOnlySpan<ulong> dims = [(ulong)end];
        Hdf5.Check(Hdf5.H5Dset_extent(ds.Id, dims), $"{what}: H5Dset_extent({end})");
        WriteSlice(ds, memType, start, values, what);
    }

    /// <summary>Writes <paramref name="values"/> into elements [start, start + count) of a 1-d dataset.</summary>
    public static void WriteSlice<T>(H5DatasetHandle ds, long memType, long start, ReadOnlySpan<T> values, string what) where T : unmanaged
    {
        if (values.IsEmpty)
            return;
        ReadOnlySpan<ulong> offset = [(ulong)start], count = [(ulong)values.Length];
        WriteBlock(ds, memType, offset, count, values, $"{what}: H5Dwrite([{start}, {start + values.Length}))");
    }

    /// <summary>
    /// Writes <paramref name="values"/> (row-major, as many as <paramref name="count"/> spans) into the
    /// block of the dataset that starts at <paramref name="start"/>; <c>what</c> names the call in errors.
    /// </summary>
    public static void WriteBlock<T>(H5DatasetHandle ds, long memType, ReadOnlySpan<ulong> start, ReadOnlySpan<ulong> count,
        ReadOnlySpan<T> values, string what) where T : unmanaged
    {
        using var file = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Dget_space(ds.Id), $"{what}: H5Dget_space"));
        Hdf5.Check(Hdf5.H5Sselect_hyperslab(file.Id, Hdf5.S.SELECT_SET, start, default, count, default), $"{what}: H5Sselect_hyperslab");
        using var mem = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(count.Length, count, count), $"{what}: H5Screate_simple"));
        Hdf5.Check(Hdf5.H5Dwrite(ds.Id, memType, mem.Id, file.Id, Hdf5.P.DEFAULT, MemoryMarshal.AsBytes(values)), what);
    }

    /// <summary>A scalar dataset holding a fixed-length UTF-8 string (null-padded, like the string attributes).</summary>
    public static H5DatasetHandle WriteDataset(long loc, string name, string value, string what)
    {
        byte[] bytes = Utf8(value);
        using var type = StringType(bytes.Length, what);
        return Scalar(loc, name, type.Id, bytes, what);
    }

    /// <summary>
    /// A scalar fixed-length UTF-8 string dataset of <paramref name="capacity"/> bytes (null-padded)
    /// holding <paramref name="value"/>, for a value that changes later in place
    /// (<see cref="Overwrite(H5DatasetHandle, string, string)"/>): a file written in SWMR mode can
    /// no longer create objects.
    /// </summary>
    public static H5DatasetHandle WriteDataset(long loc, string name, string value, int capacity, string what)
    {
        using var type = StringType(capacity, what);
        return Scalar(loc, name, type.Id, Padded(value, capacity), what);
    }

    /// <summary>Overwrites a scalar fixed-length string dataset in place, the value cut to its size (at a character boundary).</summary>
    public static void Overwrite(H5DatasetHandle ds, string value, string what)
    {
        using var type = new H5TypeHandle(Hdf5.Check(Hdf5.H5Dget_type(ds.Id), $"{what}: H5Dget_type"));
        byte[] bytes = Padded(value, checked((int)Hdf5.H5Tget_size(type.Id)));
        Hdf5.Check(Hdf5.H5Dwrite(ds.Id, type.Id, Hdf5.S.ALL, Hdf5.S.ALL, Hdf5.P.DEFAULT, bytes), $"{what}: H5Dwrite");
    }

    /// <summary>Overwrites a scalar int64 dataset in place.</summary>
    public static void Overwrite(H5DatasetHandle ds, long value, string what) =>
        Hdf5.Check(Hdf5.H5Dwrite(ds.Id, Hdf5.NATIVE_INT64, Hdf5.S.ALL, Hdf5.S.ALL, Hdf5.P.DEFAULT,
            MemoryMarshal.AsBytes(new ReadOnlySpan<long>(in value))), $"{what}: H5Dwrite");

    /// <summary>A scalar float64 dataset with a <c>units</c> attribute (none when <paramref name="units"/> is null).</summary>
    public static H5DatasetHandle WriteDataset(long loc, string name, double value, string? units, string what)
    {
        var ds = Scalar(loc, name, Hdf5.NATIVE_DOUBLE, MemoryMarshal.AsBytes(new ReadOnlySpan<double>(in value)), what);
        return WithUnits(ds, units, what);
    }

    /// <summary>A scalar int64 dataset with a <c>units</c> attribute (none when <paramref name="units"/> is null).</summary>
    public static H5DatasetHandle WriteDataset(long loc, string name, long value, string? units, string what)
    {
        var ds = Scalar(loc, name, Hdf5.NATIVE_INT64, MemoryMarshal.AsBytes(new ReadOnlySpan<long>(in value)), what);
        return WithUnits(ds, units, what);
    }

    /// <summary>A scalar uint8 dataset of 0 or 1: a NeXus NX_BOOLEAN as C writers store it.</summary>
    public static H5DatasetHandle WriteBoolean(long loc, string name, bool value, string what)
    {
        byte b = value ? (byte)1 : (byte)0;
        return Scalar(loc, name, Hdf5.NATIVE_UINT8, new ReadOnlySpan<byte>(in b), what);
    }

    /// <summary>A 1-d int32 dataset of <paramref name="values"/> (contiguous, not growable).</summary>
    public static H5DatasetHandle WriteDataset(long loc, string name, ReadOnlySpan<int> values, string what)
    {
        ReadOnlySpan<ulong> dims = [(ulong)values.Length];
        using var space = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(1, dims, dims), $"{what}: H5Screate_simple({name})"));
        return CreateWritten(loc, name, Hdf5.NATIVE_INT32, space, MemoryMarshal.AsBytes(values), what);
    }

    /// <summary>A soft link <paramref name="name"/> in <paramref name="loc"/> to the absolute path <paramref name="target"/>.</summary>
    public static void CreateSoftLink(long loc, string name, string target, string what) =>
        Hdf5.Check(Hdf5.H5Lcreate_soft(target, loc, name, Hdf5.P.DEFAULT, Hdf5.P.DEFAULT), $"{what}: H5Lcreate_soft({name} -> {target})");

    private static H5DatasetHandle Scalar(long loc, string name, long type, ReadOnlySpan<byte> value, string what)
    {
        using var space = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate(Hdf5.S.SCALAR), $"{what}: H5Screate"));
        return CreateWritten(loc, name, type, space, value, what);
    }

    /// <summary>A contiguous dataset of <paramref name="space"/>'s shape holding <paramref name="value"/>; nothing is left open on error.</summary>
    private static H5DatasetHandle CreateWritten(long loc, string name, long type, H5SpaceHandle space, ReadOnlySpan<byte> value, string what)
    {
        var ds = new H5DatasetHandle(Hdf5.Check(Hdf5.H5Dcreate2(loc, name, type, space.Id, Hdf5.P.DEFAULT, Hdf5.P.DEFAULT, Hdf5.P.DEFAULT),
            $"{what}: H5Dcreate2({name})"));
        try
        {
            Hdf5.Check(Hdf5.H5Dwrite(ds.Id, type, Hdf5.S.ALL, Hdf5.S.ALL, Hdf5.P.DEFAULT, value), $"{what}: H5Dwrite({name})");
            return ds;
        }
        catch
        {
            ds.Dispose();
            throw;
        }
    }

    private static H5DatasetHandle WithUnits(H5DatasetHandle ds, string? units, string what)
    {
        try
        {
            if (units != null)
                WriteAttribute(ds.Id, "units", units, what);
            return ds;
        }
        catch
        {
            ds.Dispose();
            throw;
        }
    }

    /// <summary>A scalar fixed-length UTF-8 string attribute (null-padded, as h5py writes them), replacing one of that name.</summary>
    public static void WriteAttribute(long loc, string name, string value, string what)
    {
        byte[] bytes = Utf8(value);
        using var type = StringType(bytes.Length, what);
        DeleteAttribute(loc, name, what);
        Write(loc, name, type.Id, bytes, create: true, what);
    }

    /// <summary>
    /// A scalar fixed-length UTF-8 string attribute of <paramref name="capacity"/> bytes
    /// (null-padded) holding <paramref name="value"/>, replacing one of that name; for a value that
    /// changes later in place (<see cref="OverwriteAttribute"/>).
    /// </summary>
    public static void WriteAttribute(long loc, string name, string value, int capacity, string what)
    {
        using var type = StringType(capacity, what);
        DeleteAttribute(loc, name, what);
        Write(loc, name, type.Id, Padded(value, capacity), create: true, what);
    }

    /// <summary>Overwrites a fixed-length string attribute in place (no object is created), the value cut to its size.</summary>
    public static void OverwriteAttribute(long loc, string name, string value, string what)
    {
        using var attr = new H5AttributeHandle(Hdf5.Check(Hdf5.H5Aopen(loc, name, Hdf5.P.DEFAULT), $"{what}: H5Aopen({name})"));
        using var type = new H5TypeHandle(Hdf5.Check(Hdf5.H5Aget_type(attr.Id), $"{what}: H5Aget_type({name})"));
        byte[] bytes = Padded(value, checked((int)Hdf5.H5Tget_size(type.Id)));
        Hdf5.Check(Hdf5.H5Awrite(attr.Id, type.Id, bytes), $"{what}: H5Awrite({name})");
    }

    /// <summary><paramref name="value"/> in UTF-8, cut to <paramref name="capacity"/> bytes at a character boundary, NUL-padded to it.</summary>
    private static byte[] Padded(string value, int capacity)
    {
        var bytes = new byte[capacity];
        var encoder = Encoding.UTF8.GetEncoder();
        encoder.Convert(value.AsSpan(), bytes, flush: true, out _, out _, out _);
        return bytes;
    }

    /// <summary>A 1-d float64 attribute (a NeXus vector or offset), replacing one of that name.</summary>
    public static void WriteAttribute(long loc, string name, ReadOnlySpan<double> values, string what)
    {
        DeleteAttribute(loc, name, what);
        ReadOnlySpan<ulong> dims = [(ulong)values.Length];
        using var space = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(1, dims, dims), $"{what}: H5Screate_simple({name})"));
        using var attr = new H5AttributeHandle(Hdf5.Check(Hdf5.H5Acreate2(loc, name, Hdf5.NATIVE_DOUBLE, space.Id, Hdf5.P.DEFAULT, Hdf5.P.DEFAULT),
            $"{what}: H5Acreate2({name})"));
        Hdf5.Check(Hdf5.H5Awrite(attr.Id, Hdf5.NATIVE_DOUBLE, MemoryMarshal.AsBytes(values)), $"{what}: H5Awrite({name})");
    }

    private static byte[] Utf8(string value)
    {
        int n = Encoding.UTF8.GetByteCount(value);
        var bytes = new byte[Math.Max(n, 1)]; // a zero-size string type does not exist; "" is one NUL
        Encoding.UTF8.GetBytes(value, bytes);
        return bytes;
    }

    /// <summary>A fixed-length, null-padded UTF-8 string type of <paramref name="bytes"/> bytes.</summary>
    private static H5TypeHandle StringType(int bytes, string what)
    {
        var type = new H5TypeHandle(Hdf5.Check(Hdf5.H5Tcopy(Hdf5.T.C_S1), $"{what}: H5Tcopy(H5T_C_S1)"));
        try
        {
            Hdf5.Check(Hdf5.H5Tset_cset(type.Id, Hdf5.T.CSET_UTF8), $"{what}: H5Tset_cset");
            Hdf5.Check(Hdf5.H5Tset_strpad(type.Id, Hdf5.T.STR_NULLPAD), $"{what}: H5Tset_strpad");
            Hdf5.Check(Hdf5.H5Tset_size(type.Id, (nuint)bytes), $"{what}: H5Tset_size({bytes})");
            return type;
        }
        catch
        {
            type.Dispose();
            throw;
        }
    }

    /// <summary>A scalar int64 attribute, created or overwritten in place.</summary>
    public static void WriteAttribute(long loc, string name, long value, string what) =>
        Write(loc, name, Hdf5.NATIVE_INT64, MemoryMarshal.AsBytes(new ReadOnlySpan<long>(in value)), create: !Exists(loc, name, what), what);

    /// <summary>A scalar uint8 attribute, created or overwritten in place.</summary>
    public static void WriteAttribute(long loc, string name, byte value, string what) =>
        Write(loc, name, Hdf5.NATIVE_UINT8, new ReadOnlySpan<byte>(in value), create: !Exists(loc, name, what), what);

    /// <summary>Removes the attribute <paramref name="name"/> of <paramref name="loc"/>, if it has one.</summary>
    public static void DeleteAttribute(long loc, string name, string what)
    {
        if (Exists(loc, name, what))
            Hdf5.Check(Hdf5.H5Adelete(loc, name), $"{what}: H5Adelete({name})");
    }

    private static bool Exists(long loc, string name, string what) =>
        Hdf5.Check(Hdf5.H5Aexists(loc, name), $"{what}: H5Aexists({name})") > 0;

    private static void Write(long loc, string name, long type, ReadOnlySpan<byte> value, bool create, string what)
    {
        long id;
        if (create)
        {
            using var space = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate(Hdf5.S.SCALAR), $"{what}: H5Screate"));
            id = Hdf5.Check(Hdf5.H5Acreate2(loc, name, type, space.Id, Hdf5.P.DEFAULT, Hdf5.P.DEFAULT), $"{what}: H5Acreate2({name})");
        }
        else
        {
            id = Hdf5.Check(Hdf5.H5Aopen(loc, name, Hdf5.P.DEFAULT), $"{what}: H5Aopen({name})");
        }
        using var attr = new H5AttributeHandle(id);
        Hdf5.Check(Hdf5.H5Awrite(attr.Id, type, value), $"{what}: H5Awrite({name})");
    }

    /// <summary>
    /// Clears the superblock's status flags of a 1.10-format file, as <c>h5clear -s</c> does: opens it
    /// read-write with the file access property "clear_status_flags" and closes it. For a file whose
    /// writer died while it was open for (SWMR) writing; never for a file a live process writes.
    /// </summary>
    public static void ClearStatusFlags(string path)
    {
        Hdf5.Quiet();
        using var fapl = new H5PropertyHandle(Hdf5.Check(Hdf5.H5Pcreate(Hdf5.P.FILE_ACCESS), $"{path}: H5Pcreate(H5P_FILE_ACCESS)"));
        int clear = 1; // hbool_t; little-endian, so its first byte is 1 whatever its size
        Hdf5.Check(Hdf5.H5Pset(fapl.Id, "clear_status_flags", &clear), $"{path}: H5Pset(clear_status_flags)");
        long id = -1;
        string error = "";
        // A lock held by someone else (a reader, or a process that inherited a reader's descriptor)
        // is usually let go within moments: try for up to 3 s.
        for (int attempt = 0; attempt < 30 && id < 0; attempt++)
        {
            if (attempt > 0)
                Thread.Sleep(100);
            id = Hdf5.H5Fopen(path, Hdf5.F.ACC_RDWR, fapl.Id);
            if (id < 0 && !(error = Hdf5.TakeErrorStack()).Contains("unable to lock file", StringComparison.Ordinal))
                break;
        }
        if (id < 0)
            throw new Hdf5Exception($"{path}: H5Fopen(H5F_ACC_RDWR, clear_status_flags) failed: {error}");
        if (Hdf5.H5Fclose(id) < 0)
            throw new Hdf5Exception($"{path}: H5Fclose failed: {Hdf5.TakeErrorStack()}");
    }

    /// <summary>
    /// Turns the file's metadata cache evictions off (which requires its automatic resizing off):
    /// changed metadata then reaches the file only when the file is flushed or closed, never halfway
    /// between two flushes. The cache grows with what changes between flushes.
    /// </summary>
    public static void DisableMetadataEvictions(H5FileHandle file, string what)
    {
        Hdf5.CacheConfig config = default;
        config.Version = Hdf5.AC.CURR_CACHE_CONFIG_VERSION;
        Hdf5.Check(Hdf5.H5Fget_mdc_config(file.Id, &config), $"{what}: H5Fget_mdc_config");
        config.RptFcnEnabled = 0;
        config.OpenTraceFile = 0;
        config.CloseTraceFile = 0;
        config.EvictionsEnabled = 0;
        config.IncrMode = Hdf5.AC.INCR_OFF;
        config.FlashIncrMode = Hdf5.AC.FLASH_INCR_OFF;
        config.DecrMode = Hdf5.AC.DECR_OFF;
        Hdf5.Check(Hdf5.H5Fset_mdc_config(file.Id, &config), $"{what}: H5Fset_mdc_config(evictions off)");
    }
}
