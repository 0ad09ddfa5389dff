using System.Runtime.InteropServices;
using System.Text;

namespace StdDaq.Shared.Interop;

// Declarations and constants keep libhdf5's C names (a nested class stands for the H5x_ prefix), structs mirror its C structs field by field: its reference manual documents them; our own wrappers (after the restore) are documented here.
#pragma warning disable CS1591

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

        /// <summary>Open for SWMR reading: a file another process writes in SWMR mode.</summary>
        public const uint ACC_SWMR_READ = 0x0040;

        /// <summary>H5F_scope_t.</summary>
        public const int SCOPE_LOCAL = 0, SCOPE_GLOBAL = 1;

        /// <summary>H5F_close_degree_t: STRONG closes the file's objects that are still open.</summary>
        public const int CLOSE_STRONG = 3;

        /// <summary>H5F_libver_t: the 1.8 format (superblock 2, object headers 2 with checksums).</summary>
        public const int LIBVER_V18 = 1;

        /// <summary>H5F_libver_t: the 1.10 format (superblock 3 with its status flags), which SWMR writing needs.</summary>
        public const int LIBVER_V110 = 2;
    }

    public static class S
    {
        public const long ALL = 0;

        /// <summary>H5S_class_t.</summary>
        public const int SCALAR = 0;

        /// <summary>H5S_seloper_t.</summary>
        public const int SELECT_SET = 0;
    }

    public static class P
    {
        public const long DEFAULT = 0;

        /// <summary>The property list classes (the C macros read a global after H5open).</summary>
        public static long DATASET_CREATE => Global("H5P_CLS_DATASET_CREATE_ID_g");
        public static long FILE_ACCESS => Global("H5P_CLS_FILE_ACCESS_ID_g");
    }

    public static class Z
    {
        /// <summary>An optional filter: datasets using it can be created while the filter is not available.</summary>
        public const uint FLAG_OPTIONAL = 0x0001;
    }

    /// <summary>Metadata cache (H5AC / H5C).</summary>
    public static class AC
    {
        public const int CURR_CACHE_CONFIG_VERSION = 1;

        /// <summary>H5C_cache_incr_mode, H5C_cache_flash_incr_mode, H5C_cache_decr_mode: off.</summary>
        public const int INCR_OFF = 0, FLASH_INCR_OFF = 0, DECR_OFF = 0;
    }

    public static class E
    {
        public const long DEFAULT = 0;
        public const int WALK_DOWNWARD = 1;
    }

    public static class T
    {
        /// <summary>H5T_class_t values.</summary>
        public const int INTEGER = 0, FLOAT = 1, STRING = 3, COMPOUND = 6, ENUM = 8;

        /// <summary>H5T_cset_t, H5T_str_t.</summary>
        public const int CSET_UTF8 = 1, STR_NULLPAD = 1;

        /// <summary>The fixed-length C string type (H5T_C_S1), to copy and size.</summary>
        public static long C_S1 => Global("H5T_C_S1_g");
    }

    [LibraryImport(Lib, EntryPoint = "H5open")]
    public static partial int H5open();

    [LibraryImport(Lib, EntryPoint = "H5Fopen", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long H5Fopen(string name, uint flags, long faplId);

    [LibraryImport(Lib, EntryPoint = "H5Fcreate", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long H5Fcreate(string name, uint flags, long fcplId, long faplId);

    /// <summary>The file driver's handle: for the default sec2 driver a pointer to the int fd.</summary>
    [LibraryImport(Lib, EntryPoint = "H5Fget_vfd_handle")]
    public static partial int H5Fget_vfd_handle(long fileId, long faplId, void** fileHandle);

    [LibraryImport(Lib, EntryPoint = "H5Fclose")]
    public static partial int H5Fclose(long fileId);

    /// <summary>Switches a file opened read-write in the 1.10 format to SWMR writing: from now on it only grows datasets and writes in place.</summary>
    [LibraryImport(Lib, EntryPoint = "H5Fstart_swmr_write")]
    public static partial int H5Fstart_swmr_write(long fileId);

    [LibraryImport(Lib, EntryPoint = "H5Fflush")]
    public static partial int H5Fflush(long objectId, int scope);

    [LibraryImport(Lib, EntryPoint = "H5Fget_mdc_config")]
    public static partial int H5Fget_mdc_config(long fileId, CacheConfig* config);

    [LibraryImport(Lib, EntryPoint = "H5Fset_mdc_config")]
    public static partial int H5Fset_mdc_config(long fileId, CacheConfig* config);

    [LibraryImport(Lib, EntryPoint = "H5Gcreate2", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long H5Gcreate2(long locId, string name, long lcplId, long gcplId, long gaplId);

    [LibraryImport(Lib, EntryPoint = "H5Gclose")]
    public static partial int H5Gclose(long groupId);

    [LibraryImport(Lib, EntryPoint = "H5Pcreate")]
    public static partial long H5Pcreate(long classId);

    [LibraryImport(Lib, EntryPoint = "H5Pclose")]
    public static partial int H5Pclose(long plistId);

    [LibraryImport(Lib, EntryPoint = "H5Pset_chunk")]
    public static partial int H5Pset_chunk(long plistId, int ndims, ReadOnlySpan<ulong> dims);

    [LibraryImport(Lib, EntryPoint = "H5Pset_filter")]
    public static partial int H5Pset_filter(long plistId, int filter, uint flags, nuint cdNelmts, ReadOnlySpan<uint> cdValues);

    /// <summary>The deflate (gzip, zlib format) filter at <paramref name="level"/> 0-9; chunked datasets only.</summary>
    [LibraryImport(Lib, EntryPoint = "H5Pset_deflate")]
    public static partial int H5Pset_deflate(long plistId, uint level);

    [LibraryImport(Lib, EntryPoint = "H5Pset_fill_value")]
    public static partial int H5Pset_fill_value(long plistId, long typeId, ReadOnlySpan<byte> value);

    /// <summary>
    /// Maps the selection <paramref name="vspaceId"/> of a virtual dataset (its dataset creation
    /// list) to the selection <paramref name="srcSpaceId"/> of dataset <paramref name="srcDset"/> in
    /// file <paramref name="srcFile"/> (a relative name is looked for next to the virtual dataset's file).
    /// </summary>
    [LibraryImport(Lib, EntryPoint = "H5Pset_virtual", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int H5Pset_virtual(long dcplId, long vspaceId, string srcFile, string srcDset, long srcSpaceId);

    [LibraryImport(Lib, EntryPoint = "H5Pset_evict_on_close")]
    public static partial int H5Pset_evict_on_close(long faplId, [MarshalAs(UnmanagedType.U1)] bool evictOnClose);

    /// <summary>Sets a registered property of a list by name (e.g. a file access list's "clear_status_flags", as h5clear -s does).</summary>
    [LibraryImport(Lib, EntryPoint = "H5Pset", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int H5Pset(long plistId, string name, void* value);

    /// <summary>Whether opens through this file access list take libhdf5's flock on the file (hbool_t: one byte).</summary>
    [LibraryImport(Lib, EntryPoint = "H5Pset_file_locking")]
    public static partial int H5Pset_file_locking(long faplId, [MarshalAs(UnmanagedType.U1)] bool useFileLocking, [MarshalAs(UnmanagedType.U1)] bool ignoreWhenDisabled);

    [LibraryImport(Lib, EntryPoint = "H5Pset_libver_bounds")]
    public static partial int H5Pset_libver_bounds(long faplId, int low, int high);

    [LibraryImport(Lib, EntryPoint = "H5Pset_fclose_degree")]
    public static partial int H5Pset_fclose_degree(long faplId, int degree);

    [LibraryImport(Lib, EntryPoint = "H5Lexists", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int H5Lexists(long locId, string name, long laplId);

    /// <summary>A soft link <paramref name="linkName"/> in <paramref name="linkLocId"/> to the path <paramref name="linkTarget"/> (need not exist yet).</summary>
    [LibraryImport(Lib, EntryPoint = "H5Lcreate_soft", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int H5Lcreate_soft(string linkTarget, long linkLocId, string linkName, long lcplId, long laplId);

    [LibraryImport(Lib, EntryPoint = "H5Dopen2", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long H5Dopen2(long locId, string name, long daplId);

    [LibraryImport(Lib, EntryPoint = "H5Dcreate2", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long H5Dcreate2(long locId, string name, long typeId, long spaceId, long lcplId, long dcplId, long daplId);

    [LibraryImport(Lib, EntryPoint = "H5Dclose")]
    public static partial int H5Dclose(long datasetId);

    [LibraryImport(Lib, EntryPoint = "H5Dwrite")]
    public static partial int H5Dwrite(long datasetId, long memTypeId, long memSpaceId, long fileSpaceId, long xferPlistId, ReadOnlySpan<byte> buffer);

    /// <summary>Writes one whole chunk as stored bytes, bypassing the filter pipeline (HDF5 ≥ 1.10.3).</summary>
    [LibraryImport(Lib, EntryPoint = "H5Dwrite_chunk")]
    public static partial int H5Dwrite_chunk(long datasetId, long dxplId, uint filterMask, ReadOnlySpan<ulong> offset, nuint dataSize, ReadOnlySpan<byte> buffer);

    [LibraryImport(Lib, EntryPoint = "H5Dset_extent")]
    public static partial int H5Dset_extent(long datasetId, ReadOnlySpan<ulong> size);

    [LibraryImport(Lib, EntryPoint = "H5Dget_space")]
    public static partial long H5Dget_space(long datasetId);

    [LibraryImport(Lib, EntryPoint = "H5Dget_type")]
    public static partial long H5Dget_type(long datasetId);

    [LibraryImport(Lib, EntryPoint = "H5Dread")]
    public static partial int H5Dread(long datasetId, long memTypeId, long memSpaceId, long fileSpaceId, long xferPlistId, void* buffer);

    [LibraryImport(Lib, EntryPoint = "H5Screate")]
    public static partial long H5Screate(int type);

    [LibraryImport(Lib, EntryPoint = "H5Screate_simple")]
    public static partial long H5Screate_simple(int rank, ReadOnlySpan<ulong> dims, ReadOnlySpan<ulong> maxDims);

    /// <summary>An empty span for stride or block passes NULL (all 1).</summary>
    [LibraryImport(Lib, EntryPoint = "H5Sselect_hyperslab")]
    public static partial int H5Sselect_hyperslab(long spaceId, int op, ReadOnlySpan<ulong> start, ReadOnlySpan<ulong> stride, ReadOnlySpan<ulong> count, ReadOnlySpan<ulong> block);

    [LibraryImport(Lib, EntryPoint = "H5Sget_simple_extent_ndims")]
    public static partial int H5Sget_simple_extent_ndims(long spaceId);

    [LibraryImport(Lib, EntryPoint = "H5Sget_simple_extent_dims")]
    public static partial int H5Sget_simple_extent_dims(long spaceId, ulong* dims, ulong* maxDims);

    [LibraryImport(Lib, EntryPoint = "H5Sclose")]
    public static partial int H5Sclose(long spaceId);

    [LibraryImport(Lib, EntryPoint = "H5Tget_size")]
    public static partial nuint H5Tget_size(long typeId);

    /// <summary>H5T_sign_t: 0 unsigned, 1 two's complement, -1 error.</summary>
    [LibraryImport(Lib, EntryPoint = "H5Tget_sign")]
    public static partial int H5Tget_sign(long typeId);

    [LibraryImport(Lib, EntryPoint = "H5Tget_class")]
    public static partial int H5Tget_class(long typeId);

    [LibraryImport(Lib, EntryPoint = "H5Tclose")]
    public static partial int H5Tclose(long typeId);

    [LibraryImport(Lib, EntryPoint = "H5Tcopy")]
    public static partial long H5Tcopy(long typeId);

    [LibraryImport(Lib, EntryPoint = "H5Tset_size")]
    public static partial int H5Tset_size(long typeId, nuint size);

    [LibraryImport(Lib, EntryPoint = "H5Tset_cset")]
    public static partial int H5Tset_cset(long typeId, int cset);

    [LibraryImport(Lib, EntryPoint = "H5Tset_strpad")]
    public static partial int H5Tset_strpad(long typeId, int strpad);

    [LibraryImport(Lib, EntryPoint = "H5Acreate2", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long H5Acreate2(long locId, string name, long typeId, long spaceId, long acplId, long aaplId);

    [LibraryImport(Lib, EntryPoint = "H5Aopen", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long H5Aopen(long objectId, string name, long aaplId);

    [LibraryImport(Lib, EntryPoint = "H5Awrite")]
    public static partial int H5Awrite(long attributeId, long memTypeId, ReadOnlySpan<byte> buffer);

    [LibraryImport(Lib, EntryPoint = "H5Aread")]
    public static partial int H5Aread(long attributeId, long memTypeId, Span<byte> buffer);

    [LibraryImport(Lib, EntryPoint = "H5Aget_type")]
    public static partial long H5Aget_type(long attributeId);

    [LibraryImport(Lib, EntryPoint = "H5Tis_variable_str")]
    public static partial int H5Tis_variable_str(long typeId);

    [LibraryImport(Lib, EntryPoint = "H5Aclose")]
    public static partial int H5Aclose(long attributeId);

    [LibraryImport(Lib, EntryPoint = "H5Aexists", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int H5Aexists(long objectId, string name);

    [LibraryImport(Lib, EntryPoint = "H5Adelete", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int H5Adelete(long locId, string name);

    /// <summary>Whether a filter is available (registered or loadable as a plugin): 1, 0, or negative on error.</summary>
    [LibraryImport(Lib, EntryPoint = "H5Zfilter_avail")]
    public static partial int H5Zfilter_avail(int filterId);

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

    /// <summary>
    /// H5AC_cache_config_t (1.10, version 1): 1216 bytes, natural C alignment; hbool_t is C bool
    /// (1 byte), enums are int, size_t is 8 bytes.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct CacheConfig
    {
        public const int Size = 1216;

        public int Version;                   // @0
        public byte RptFcnEnabled;            // @4
        public byte OpenTraceFile;            // @5
        public byte CloseTraceFile;           // @6
        public fixed byte TraceFileName[1025]; // @7
        public byte EvictionsEnabled;         // @1032
        public byte SetInitialSize;           // @1033
        public nuint InitialSize;             // @1040
        public double MinCleanFraction;       // @1048
        public nuint MaxSize;                 // @1056
        public nuint MinSize;                 // @1064
        public long EpochLength;              // @1072
        public int IncrMode;                  // @1080
        public double LowerHrThreshold;       // @1088
        public double Increment;              // @1096
        public byte ApplyMaxIncrement;        // @1104
        public nuint MaxIncrement;            // @1112
        public int FlashIncrMode;             // @1120
        public double FlashMultiple;          // @1128
        public double FlashThreshold;         // @1136
        public int DecrMode;                  // @1144
        public double UpperHrThreshold;       // @1152
        public double Decrement;              // @1160
        public byte ApplyMaxDecrement;        // @1168
        public nuint MaxDecrement;            // @1176
        public int EpochsBeforeEviction;      // @1184
        public byte ApplyEmptyReserve;        // @1188
        public double EmptyReserve;           // @1192
        public nuint DirtyBytesThreshold;     // @1200
        public int MetadataWriteStrategy;     // @1208
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
    public static long NATIVE_UINT8 => Global("H5T_NATIVE_UCHAR_g");
    public static long NATIVE_INT64 => Global("H5T_NATIVE_LLONG_g");
    public static long NATIVE_INT32 => Global("H5T_NATIVE_INT_g");

#pragma warning restore CS1591

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
        // Some descriptions (the sec2 driver's) span lines; the exception message stays one line.
        string desc = Marshal.PtrToStringUTF8((nint)e->Desc) ?? "";
        sb.Append(Marshal.PtrToStringUTF8((nint)e->FuncName)).Append(": ").Append(desc.ReplaceLineEndings(" "));
        return 0;
    }
}

/// <summary>A failed libhdf5 call, with the HDF5 error stack's text.</summary>
public sealed class Hdf5Exception(string message) : Exception(message);
