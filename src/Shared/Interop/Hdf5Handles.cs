using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>An HDF5 id (hid_t) we own, closed with the close call of its type.</summary>
public abstract class H5Handle : SafeHandle
{
    /// <summary>Takes ownership of <paramref name="id"/>; a negative id (a failed call's result) is an invalid handle.</summary>
    protected H5Handle(long id) : base(-1, ownsHandle: true) => SetHandle((nint)id);

    /// <summary>The hid_t to pass to libhdf5; closed, and meaningless, once the handle is disposed.</summary>
    public long Id => (long)handle;

    /// <summary>Negative ids are libhdf5's failure value.</summary>
    public override bool IsInvalid => (long)handle < 0;
}

/// <summary>A file id (H5Fcreate, H5Fopen), closed with H5Fclose.</summary>
/// <param name="id">The id to own; negative: an invalid handle.</param>
public sealed class H5FileHandle(long id) : H5Handle(id)
{
    /// <summary>H5Fclose; false if it failed.</summary>
    protected override bool ReleaseHandle() => Hdf5.H5Fclose(Id) >= 0;
}

/// <summary>A dataset id (H5Dcreate2, H5Dopen2), closed with H5Dclose.</summary>
/// <param name="id">The id to own; negative: an invalid handle.</param>
public sealed class H5DatasetHandle(long id) : H5Handle(id)
{
    /// <summary>H5Dclose; false if it failed.</summary>
    protected override bool ReleaseHandle() => Hdf5.H5Dclose(Id) >= 0;
}

/// <summary>A dataspace id (H5Screate, H5Screate_simple, H5Dget_space), closed with H5Sclose.</summary>
/// <param name="id">The id to own; negative: an invalid handle.</param>
public sealed class H5SpaceHandle(long id) : H5Handle(id)
{
    /// <summary>H5Sclose; false if it failed.</summary>
    protected override bool ReleaseHandle() => Hdf5.H5Sclose(Id) >= 0;
}

/// <summary>A datatype id (H5Tcopy, H5Dget_type, H5Aget_type), closed with H5Tclose.</summary>
/// <param name="id">The id to own; negative: an invalid handle.</param>
public sealed class H5TypeHandle(long id) : H5Handle(id)
{
    /// <summary>H5Tclose; false if it failed.</summary>
    protected override bool ReleaseHandle() => Hdf5.H5Tclose(Id) >= 0;
}

/// <summary>A group id (H5Gcreate2), closed with H5Gclose.</summary>
/// <param name="id">The id to own; negative: an invalid handle.</param>
public sealed class H5GroupHandle(long id) : H5Handle(id)
{
    /// <summary>H5Gclose; false if it failed.</summary>
    protected override bool ReleaseHandle() => Hdf5.H5Gclose(Id) >= 0;
}

/// <summary>A property list id (H5Pcreate), closed with H5Pclose.</summary>
/// <param name="id">The id to own; negative: an invalid handle.</param>
public sealed class H5PropertyHandle(long id) : H5Handle(id)
{
    /// <summary>H5Pclose; false if it failed.</summary>
    protected override bool ReleaseHandle() => Hdf5.H5Pclose(Id) >= 0;
}

/// <summary>An attribute id (H5Acreate2, H5Aopen), closed with H5Aclose.</summary>
/// <param name="id">The id to own; negative: an invalid handle.</param>
public sealed class H5AttributeHandle(long id) : H5Handle(id)
{
    /// <summary>H5Aclose; false if it failed.</summary>
    protected override bool ReleaseHandle() => Hdf5.H5Aclose(Id) >= 0;
}
