using System.Runtime.InteropServices;
using System.Text;

namespace StdDaq.Shared.Interop;

/// <summary>
/// The system libhdf5 (Debian's libhdf5-dev 1.10, serial, thread-safe build) through [LibraryImport].
/// C names are kept. Ids are <c>hid_t</c> (int64); every id we own lives in an <see cref="H5Handle"/>.
/// Errors: the automatic printing of the error stack is turned off (per thread, which is where a
/// thread-safe libhdf5 keeps it) and a failing call throws <see cref="Hdf5Exception"/> with the
/// stack's text instead.
/// </summary>
public static unsafe partial class Hdf5
{
    private const string Lib = "libhdf5_serial.so.103";

    public static class F
    {
        public const uint ACC_RDONLY = 0x0000, ACC_RDWR = 0x0001, ACC_TRUNC = 0x0002, ACC_EXCL = 0x0004;
    }

    public static class S
    {
        public const long ALL = 0;
    }

    public static class P
    {
        public const long DEFAULT = 0;
    }

    public static class E
    {
        public const long DEFAULT = 0;
        public const int WALK_DOWNWARD = 1;
    }

    public static class T
    {
        /// <summary>H5T_class_t values.</summary>
        public const int INTEGER = 0, FLOAT = 1;
    }

    [LibraryImport(Lib, EntryPoint = "H5open")]
    public static partial int H5open();

    [LibraryImport(Lib, EntryPoint = "H5Fopen", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long H5Fopen(string name, uint flags, long faplId);

    [LibraryImport(Lib, EntryPoint = "H5Fclose")]
    public static partial int H5Fclose(long fileId);

    [LibraryImport(Lib, EntryPoint = "H5Lexists", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int H5Lexists(long locId, string name, long laplId);

    [LibraryImport(Lib, EntryPoint = "H5Dopen2", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long H5Dopen2(long locId, string name, long daplId);

    [LibraryImport(Lib, EntryPoint = "H5Dclose")]
    public static partial int H5Dclose(long datasetId);

    [LibraryImport(Lib, EntryPoint = "H5Dget_space")]
    public static partial long H5Dget_space(long datasetId);

    [LibraryImport(Lib, EntryPoint = "H5Dget_type")]
    public static partial long H5Dget_type(long datasetId);

    [LibraryImport(Lib, EntryPoint = "H5Dread")]
    public static partial int H5Dread(long datasetId, long memTypeId, long memSpaceId, long fileSpaceId, long xferPlistId, void* buffer);

    [LibraryImport(Lib, EntryPoint = "H5Sget_simple_extent_ndims")]
    public static partial int H5Sget_simple_extent_ndims(long spaceId);

    [LibraryImport(Lib, EntryPoint = "H5Sget_simple_extent_dims")]
    public static partial int H5Sget_simple_extent_dims(long spaceId, ulong* dims, ulong* maxDims);

    [LibraryImport(Lib, EntryPoint = "H5Sclose")]
    public static partial int H5Sclose(long spaceId);

    [LibraryImport(Lib, EntryPoint = "H5Tget_class")]
    public static partial int H5Tget_class(long typeId);

    [LibraryImport(Lib, EntryPoint = "H5Tclose")]
    public static partial int H5Tclose(long typeId);

    [LibraryImport(Lib, EntryPoint = "H5Eset_auto2")]
    public static partial int H5Eset_auto2(long estackId, nint func, nint clientData);

    [LibraryImport(Lib, EntryPoint = "H5Ewalk2")]
    public static partial int H5Ewalk2(long estackId, int direction, delegate* unmanaged<uint, ErrorRecord*, void*, int> func, void* clientData);

    [LibraryImport(Lib, EntryPoint = "H5Eclear2")]
    public static partial int H5Eclear2(long estackId);

    /// <summary>H5E_error2_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ErrorRecord
    {
        public long ClassId;
        public long MajorId;
        public long MinorId;
        public uint Line;
        public byte* FuncName;
        public byte* FileName;
        public byte* Desc;
    }

    private static readonly nint s_library = NativeLibrary.Load(Lib, typeof(Hdf5).Assembly, null);

    [ThreadStatic]
    private static bool t_quiet;

    /// <summary>A predefined type id (the C macros H5T_NATIVE_* read a global after H5open).</summary>
    private static long Global(string symbol)
    {
        Check(H5open(), "H5open");
        return *(long*)NativeLibrary.GetExport(s_library, symbol);
    }

    public static long NATIVE_FLOAT => Global("H5T_NATIVE_FLOAT_g");
    public static long NATIVE_DOUBLE => Global("H5T_NATIVE_DOUBLE_g");
    public static long NATIVE_UINT32 => Global("H5T_NATIVE_UINT_g");
    public static long NATIVE_UINT16 => Global("H5T_NATIVE_USHORT_g");
    public static long NATIVE_UINT64 => Global("H5T_NATIVE_ULLONG_g");

    /// <summary>Turns the error stack's printing to stderr off on this thread (once per thread).</summary>
    public static void Quiet()
    {
        if (t_quiet)
            return;
        H5open();
        H5Eset_auto2(E.DEFAULT, 0, 0);
        t_quiet = true;
    }

    /// <summary>Throws <see cref="Hdf5Exception"/> for a negative herr_t / hid_t.</summary>
    public static long Check(long result, string call)
    {
        if (result < 0)
            throw new Hdf5Exception($"{call} failed: {TakeErrorStack()}");
        return result;
    }

    /// <summary>The current thread's error stack as one line (innermost call last), then cleared.</summary>
    public static string TakeErrorStack()
    {
        var sb = new StringBuilder();
        var handle = GCHandle.Alloc(sb);
        try
        {
            H5Ewalk2(E.DEFAULT, E.WALK_DOWNWARD, &Walk, (void*)GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
        H5Eclear2(E.DEFAULT);
        return sb.Length > 0 ? sb.ToString() : "no HDF5 error stack";
    }

    [UnmanagedCallersOnly]
    private static int Walk(uint n, ErrorRecord* e, void* data)
    {
        var sb = (StringBuilder)GCHandle.FromIntPtr((nint)data).Target!;
        if (sb.Length > 0)
            sb.Append("; ");
        sb.Append(Marshal.PtrToStringUTF8((nint)e->FuncName)).Append(": ").Append(Marshal.PtrToStringUTF8((nint)e->Desc));
        return 0;
    }
}

/// <summary>A failed libhdf5 call, with the HDF5 error stack's text.</summary>
public sealed class Hdf5Exception(string message) : Exception(message);
