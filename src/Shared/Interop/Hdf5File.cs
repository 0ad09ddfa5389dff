namespace StdDaq.Shared.Interop;

/// <summary>An HDF5 file opened read-only, with the dataset reads the services need.</summary>
public sealed unsafe class Hdf5File : IDisposable
{
    private readonly H5FileHandle _file;

    /// <summary>The path it was opened with; error messages start with it.</summary>
    public string Path { get; }

    private Hdf5File(string path, H5FileHandle file)
    {
        Path = path;
        _file = file;
    }

    /// <summary>
    /// Opens <paramref name="path"/> read-only. A missing file is a <see cref="FileNotFoundException"/>,
    /// a folder or empty file an <see cref="InvalidDataException"/>, anything libhdf5 cannot open an
    /// <see cref="Hdf5Exception"/> with its error stack.
    /// </summary>
    public static Hdf5File OpenRead(string path) => OpenRead(path, swmr: false);

    /// <summary>
    /// As <see cref="OpenRead(string)"/>; with <paramref name="swmr"/> as a SWMR reader, which also
    /// opens a file another process writes in SWMR mode (or left so when it died).
    /// </summary>
    public static Hdf5File OpenRead(string path, bool swmr)
    {
        if (Directory.Exists(path))
            throw new InvalidDataException($"'{path}': is a directory, not an HDF5 file");
        if (File.Exists(path) && new FileInfo(path).Length == 0)
            throw new InvalidDataException($"'{path}': the file is empty, not an HDF5 file");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such file", path);
        Hdf5.Quiet();
        long id;
        if (swmr)
        {
            // A SWMR reader needs no flock (the SWMR writer holds none either); without one, a child
            // process that inherits the descriptor (libhdf5 opens without O_CLOEXEC) holds no lock
            // that would keep the file from being opened for writing later.
            using var fapl = new H5PropertyHandle(Hdf5.Check(Hdf5.H5Pcreate(Hdf5.P.FILE_ACCESS), $"{path}: H5Pcreate(H5P_FILE_ACCESS)"));
            Hdf5.Check(Hdf5.H5Pset_file_locking(fapl.Id, false, true), $"{path}: H5Pset_file_locking");
            id = Hdf5.H5Fopen(path, Hdf5.F.ACC_RDONLY | Hdf5.F.ACC_SWMR_READ, fapl.Id);
        }
        else
        {
            id = Hdf5.H5Fopen(path, Hdf5.F.ACC_RDONLY, Hdf5.P.DEFAULT);
        }
        if (id < 0)
            throw new Hdf5Exception($"{path}: not a readable HDF5 file ({Hdf5.TakeErrorStack()})");
        return new Hdf5File(path, new H5FileHandle(id));
    }

    /// <summary>
    /// A root attribute that is a fixed-length string (as our writer stores them), trailing NULs
    /// removed; null when the file has no such attribute. Other types are an error naming them.
    /// </summary>
    public string? StringAttribute(string name)
    {
        if (OpenAttribute(name) is not { } a)
            return null;
        using (a)
        {
            using var type = new H5TypeHandle(Hdf5.Check(Hdf5.H5Aget_type(a.Id), $"{Path}: H5Aget_type({name})"));
            if (Hdf5.H5Tget_class(type.Id) != Hdf5.T.STRING || Hdf5.H5Tis_variable_str(type.Id) != 0)
                throw new InvalidDataException($"{Path}: attribute {name} is not a fixed-length string");
            var bytes = new byte[(int)Hdf5.H5Tget_size(type.Id)];
            Hdf5.Check(Hdf5.H5Aread(a.Id, type.Id, bytes), $"{Path}: H5Aread({name})");
            return System.Text.Encoding.UTF8.GetString(bytes).TrimEnd('\0');
        }
    }

    /// <summary>A numeric root attribute converted to int64; null when the file has no such attribute.</summary>
    public long? Int64Attribute(string name)
    {
        if (OpenAttribute(name) is not { } a)
            return null;
        using (a)
        {
            long value = 0;
            Hdf5.Check(Hdf5.H5Aread(a.Id, Hdf5.NATIVE_INT64, System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<long>(ref value))),
                $"{Path}: H5Aread({name}) as int64");
            return value;
        }
    }

    private H5AttributeHandle? OpenAttribute(string name)
    {
        Hdf5.Quiet();
        if (Hdf5.Check(Hdf5.H5Aexists(_file.Id, name), $"{Path}: H5Aexists({name})") <= 0)
            return null;
        return new H5AttributeHandle(Hdf5.Check(Hdf5.H5Aopen(_file.Id, name, Hdf5.P.DEFAULT), $"{Path}: H5Aopen({name})"));
    }

    /// <summary>Whether a link (dataset or group) of that absolute name exists.</summary>
    public bool Exists(string name)
    {
        Hdf5.Quiet();
        // H5Lexists fails (rather than returning 0) when an intermediate group is missing.
        int r = Hdf5.H5Lexists(_file.Id, name, Hdf5.P.DEFAULT);
        if (r < 0)
            Hdf5.TakeErrorStack();
        return r > 0;
    }

    /// <summary>The dataset's dimensions.</summary>
    public long[] Shape(string name)
    {
        using var ds = OpenDataset(name);
        return ShapeOf(ds, name);
    }

    /// <summary>
    /// Reads a whole numeric dataset converted to float32 (libhdf5 converts from float64 or any
    /// integer type) into <paramref name="destination"/>, whose length must equal the element count.
    /// </summary>
    public void ReadFloat32(string name, Span<float> destination) => Read(name, destination, Hdf5.NATIVE_FLOAT, "float32");

    /// <summary>Reads a whole numeric dataset converted to uint32.</summary>
    public void ReadUInt32(string name, Span<uint> destination) => Read(name, destination, Hdf5.NATIVE_UINT32, "uint32");

    /// <summary>Reads a whole numeric dataset converted to uint16.</summary>
    public void ReadUInt16(string name, Span<ushort> destination) => Read(name, destination, Hdf5.NATIVE_UINT16, "uint16");

    /// <summary>Reads a whole numeric dataset converted to uint64.</summary>
    public void ReadUInt64(string name, Span<ulong> destination) => Read(name, destination, Hdf5.NATIVE_UINT64, "uint64");

    /// <summary>The dataset's element type in numpy's words (uint16, float32, ..., string).</summary>
    public string TypeName(string name)
    {
        using var ds = OpenDataset(name);
        using var type = new H5TypeHandle(Hdf5.Check(Hdf5.H5Dget_type(ds.Id), $"H5Dget_type({name})"));
        int bits = (int)Hdf5.H5Tget_size(type.Id) * 8;
        return Hdf5.H5Tget_class(type.Id) switch
        {
            Hdf5.T.FLOAT => $"float{bits}",
            Hdf5.T.INTEGER => Hdf5.H5Tget_sign(type.Id) == 0 ? $"uint{bits}" : $"int{bits}",
            Hdf5.T.STRING => "string",
            Hdf5.T.COMPOUND => "compound",
            Hdf5.T.ENUM => "enum",
            int c => $"class {c}, {bits} bits",
        };
    }

    /// <summary>
    /// Reads image <paramref name="index"/> (the slab [index, :, :]) of a 3-D dataset, in the type it
    /// is stored in, into <paramref name="destination"/> (exactly one image's bytes). Filters
    /// (bitshuffle-LZ4) are applied by libhdf5 through its plugins.
    /// </summary>
    public void ReadImage(string name, long index, Span<byte> destination)
    {
        using var ds = OpenDataset(name);
        long[] shape = ShapeOf(ds, name);
        if (shape.Length != 3 || index < 0 || index >= shape[0])
            throw new Hdf5Exception($"{Path}: {name} [{string.Join(", ", shape)}] has no image {index}");
        using var type = new H5TypeHandle(Hdf5.Check(Hdf5.H5Dget_type(ds.Id), $"H5Dget_type({name})"));
        long bytes = shape[1] * shape[2] * (long)Hdf5.H5Tget_size(type.Id);
        if (bytes != destination.Length)
            throw new Hdf5Exception($"{Path}: an image of {name} is {bytes} bytes, the buffer {destination.Length}");
        using var file = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Dget_space(ds.Id), $"H5Dget_space({name})"));
        ReadOnlySpan<ulong> start = [(ulong)index, 0, 0], count = [1, (ulong)shape[1], (ulong)shape[2]];
        Hdf5.Check(Hdf5.H5Sselect_hyperslab(file.Id, Hdf5.S.SELECT_SET, start, default, count, default), $"H5Sselect_hyperslab({name})");
        using var memory = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Screate_simple(3, count, default), "H5Screate_simple"));
        fixed (byte* p = destination)
            Hdf5.Check(Hdf5.H5Dread(ds.Id, type.Id, memory.Id, file.Id, Hdf5.P.DEFAULT, p), $"H5Dread({Path}:{name}[{index}])");
    }

    private void Read<T>(string name, Span<T> destination, long memType, string typeName) where T : unmanaged
    {
        using var ds = OpenDataset(name);
        long count = 1;
        foreach (long d in ShapeOf(ds, name))
            count *= d;
        if (count != destination.Length)
            throw new Hdf5Exception($"{Path}: {name} has {count} elements, expected {destination.Length}");
        using (var type = new H5TypeHandle(Hdf5.Check(Hdf5.H5Dget_type(ds.Id), $"H5Dget_type({name})")))
        {
            int cls = Hdf5.H5Tget_class(type.Id);
            if (cls is not (Hdf5.T.INTEGER or Hdf5.T.FLOAT))
                throw new Hdf5Exception($"{Path}: {name} is not numeric, cannot read it as {typeName}");
        }
        fixed (T* p = destination)
            Hdf5.Check(Hdf5.H5Dread(ds.Id, memType, Hdf5.S.ALL, Hdf5.S.ALL, Hdf5.P.DEFAULT, p), $"H5Dread({Path}:{name})");
    }

    private H5DatasetHandle OpenDataset(string name)
    {
        if (!Exists(name))
            throw new Hdf5Exception($"{Path}: no dataset {name}");
        long id = Hdf5.H5Dopen2(_file.Id, name, Hdf5.P.DEFAULT);
        return new H5DatasetHandle(Hdf5.Check(id, $"H5Dopen2({Path}:{name})"));
    }

    private long[] ShapeOf(H5DatasetHandle ds, string name)
    {
        using var space = new H5SpaceHandle(Hdf5.Check(Hdf5.H5Dget_space(ds.Id), $"H5Dget_space({name})"));
        int n = (int)Hdf5.Check(Hdf5.H5Sget_simple_extent_ndims(space.Id), $"H5Sget_simple_extent_ndims({name})");
        var dims = stackalloc ulong[Math.Max(n, 1)];
        Hdf5.Check(Hdf5.H5Sget_simple_extent_dims(space.Id, dims, null), $"H5Sget_simple_extent_dims({name})");
        var shape = new long[n];
        for (int i = 0; i < n; i++)
            shape[i] = (long)dims[i];
        return shape;
    }

    /// <summary>Closes the file (H5Fclose).</summary>
    public void Dispose() => _file.Dispose();
}
