using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>An HDF5 id (hid_t) we own, closed with the close call of its type.</summary>
public abstract class H5Handle : SafeHandle
{
    protected H5Handle(long id) : base(-1, ownsHandle: true) => SetHandle((nint)id);

    public long Id => (long)handle;

    public override bool IsInvalid => (long)handle < 0;
}

public sealed class H5FileHandle(long id) : H5Handle(id)
{
    protected override bool ReleaseHandle() => Hdf5.H5Fclose(Id) >= 0;
}

public sealed class H5DatasetHandle(long id) : H5Handle(id)
{
    protected override bool ReleaseHandle() => Hdf5.H5Dclose(Id) >= 0;
}

public sealed class H5SpaceHandle(long id) : H5Handle(id)
{
    protected override bool ReleaseHandle() => Hdf5.H5Sclose(Id) >= 0;
}

public sealed class H5TypeHandle(long id) : H5Handle(id)
{
    protected override bool ReleaseHandle() => Hdf5.H5Tclose(Id) >= 0;
}

public sealed class H5GroupHandle(long id) : H5Handle(id)
{
    protected override bool ReleaseHandle() => Hdf5.H5Gclose(Id) >= 0;
}

public sealed class H5PropertyHandle(long id) : H5Handle(id)
{
    protected override bool ReleaseHandle() => Hdf5.H5Pclose(Id) >= 0;
}

public sealed class H5AttributeHandle(long id) : H5Handle(id)
{
    protected override bool ReleaseHandle() => Hdf5.H5Aclose(Id) >= 0;
}
