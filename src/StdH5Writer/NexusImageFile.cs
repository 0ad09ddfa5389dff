using System.Buffers.Binary;
using StdDaq.Shared.Files;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;

namespace StdDaq.Writer;

/// <summary>What one image file holds.</summary>
/// <param name="NImages">Images requested: the most the file can take.</param>
/// <param name="Dtype">ImageMetadata dtype code: 1 uint8, 2 uint16, 4 uint32, 8 uint64, 14 float32, 18 float64.</param>
/// <param name="BitshuffleLz4">Chunks arrive compressed as HDF5 filter 32008 (bitshuffle + LZ4) stores them.</param>
/// <param name="Attributes">File (root) attributes, written as UTF-8 strings (detector_name, run_id, request_id, config, user metadata).</param>
public sealed record NexusFileOptions(
    long NImages, int Height, int Width, ushort Dtype, bool BitshuffleLz4,
    IReadOnlyList<KeyValuePair<string, string>> Attributes)
{
    /// <summary>The detector the NXmx description shows; null: <see cref="NxmxDetector.WholeImage"/> of the image size.</summary>
    public NxmxDetector? Detector { get; init; }
    /// <summary>The run's geometry and sample from the request; unset values take their defaults.</summary>
    public NxmxRun Run { get; init; } = NxmxRun.None;
}

/// <summary>
/// One NeXus image file, written through libhdf5 with direct chunk writes:
/// <c>/entry</c> (NX_class NXentry) → <c>/entry/data</c> (NX_class NXdata, signal "data") →
/// <c>data</c> [n, H, W] in the image dtype, one chunk [1, H, W] per image (raw, or with filter 32008
/// bitshuffle-LZ4, cd_values {0, 3, elem_size, 0, 2}), <c>@interpretation</c> "image";
/// <c>image_id</c> uint64 [n]; <c>status</c> uint16 [n] (0 good, 1 incomplete, 2 id mismatch,
/// 0xFFFF not written, whose pixels read as 0); <c>frame_index</c> uint64 [n] (the detector's frame
/// number) and <c>receive_time</c> int64 [n] (@units "ns": CLOCK_REALTIME since the Unix epoch when
/// the first of the image's module frames was received whole), both 0 for an image not written. Around them the NeXus NXmx description of the
/// detector, beam and sample (<see cref="NxmxLayout"/>), whose omega [n] grows with the images.
/// Root attributes: the given strings, NeXus's <c>default</c> ("entry"), <c>file_name</c>,
/// <c>file_time</c> and <c>creator</c>, <c>n_images_requested</c>, <c>n_images_written</c> (int64),
/// <c>interrupted</c> (uint8 0/1) and <c>interrupted_reason</c> (string of at most
/// <see cref="ReasonCapacity"/> bytes, empty when the file was closed complete).
/// <para>
/// Images come in increasing index order (gaps allowed: they read as not written). n is the
/// highest index handled + 1 (written or marked missing), not the number requested.
/// </para>
/// <para>
/// Readers may open the file while it is written: it is in the HDF5 1.10 format and in SWMR
/// writing from its creation (<c>H5Fstart_swmr_write</c>), so a SWMR reader (h5py
/// <c>swmr=True</c>, silx) sees it as at the last <see cref="Flush"/>. Everything exists before
/// SWMR writing starts (it cannot create or delete objects): what changes later is written in
/// place (<c>interrupted</c>, <c>interrupted_reason</c>, <c>/entry/end_time</c>, empty until the
/// close) or grows (<c>data</c>, one image at a time, never ahead of the images; the per-image
/// datasets and omega at each flush). A live reader follows the count in the dataset
/// <c>/entry/data/n_images_written</c> (attributes it does not see change). Readers without SWMR
/// (h5py's default, h5dump, DIALS, XDS) are refused ("already open for write") until the file is
/// closed.
/// </para>
/// <para>
/// A file whose writer died (SIGKILL, power) reads as it was at the last <see cref="Flush"/>: n is
/// the count handled then, image_id/status/pixels are those images', <c>n_images_written</c> is the
/// count then, and <c>interrupted</c> = 1 with reason "not closed", which the file says from
/// <see cref="Create"/> until <see cref="Close"/>. SWMR readers read it at once; the others once
/// its "open for write" flag is cleared (<see cref="Recover"/>, which the next writer runs, or
/// <c>h5clear -s</c>). How: metadata cache evictions are off, so changed metadata (chunk index,
/// extents, attributes) reaches the disk only inside a flush, never half-way between two, and
/// SWMR writing orders each flush so that a reader never sees an object before what it points to;
/// images after the last flush go to space the flushed metadata does not reference; image_id/status
/// are written from memory at each flush. A kill during a flush itself can leave the file
/// unreadable. The file is opened with evict-on-close, and <c>data</c> is re-opened after each
/// flush, which drops its chunk index from the cache: the cache holds what one flush interval adds
/// (~60 bytes per image), not the whole run's.
/// </para>
/// <para>
/// Errors throw <see cref="Hdf5Exception"/> naming the file and the call; after one, writes and
/// flushes refuse, and <see cref="Close"/> / <see cref="Dispose"/> only release the file.
/// Not thread-safe: one writer thread per file.
/// </para>
/// </summary>
public sealed class NexusImageFile : IDisposable
{
    private const ushort StatusNotWritten = (ushort)ImageStatus.NotWritten;
    public const int BitshuffleFilterId = 32008;
    public const string NotClosedReason = "not closed: the writer stopped after its last flush";

    /// <summary>bitshuffle's cd_values: filter major/minor version (Debian's 0.3.5), element size, block size 0 (default), 2 = LZ4.</summary>
    private const uint BitshuffleMajor = 0, BitshuffleMinor = 3, BitshuffleLz4Code = 2;
    /// <summary>Images by which <c>data</c>'s extent grows ahead of the writes between flushes.</summary>
    private const int IdChunk = 4096;
    /// <summary>Bytes kept for <c>interrupted_reason</c>, which changes in place (SWMR writing creates nothing); longer reasons are cut.</summary>
    public const int ReasonCapacity = 1024;

    private readonly string _path;
    private readonly long _n;
    private readonly int _height, _width, _imageBytes;
    private readonly bool _compressed;
    private readonly H5FileHandle _file;
    private readonly H5GroupHandle _entry, _group;
    private readonly H5DatasetHandle _ids, _statuses, _frameIndices, _receiveTimes, _writtenCount;
    private readonly NxmxLayout _nxmx;
    private H5DatasetHandle _data;

    private readonly ImageRecords _records = new(); // since the last flush; End = n
    private long _extent; // data's current dims[0]: the highest index written + 1 between flushes, n at a flush
    private string? _fault;
    private bool _closed;

    /// <summary>Images written with <see cref="WriteImage"/> (not those marked missing).</summary>
    public long ImagesWritten { get; private set; }

    private NexusImageFile(string path, NexusFileOptions o, H5FileHandle file)
    {
        _path = path;
        _n = o.NImages;
        _height = o.Height;
        _width = o.Width;
        _imageBytes = o.Height * o.Width * ImageMetadata.BytesPerPixel((ImageDtype)o.Dtype);
        _compressed = o.BitshuffleLz4;
        _file = file;
        try
        {
            Hdf5Writing.DisableMetadataEvictions(file, path);
            _entry = Hdf5Writing.CreateGroup(file.Id, "entry", path);
            Hdf5Writing.WriteAttribute(_entry.Id, "NX_class", "NXentry", path);
            Hdf5Writing.WriteAttribute(_entry.Id, "default", "data", path);
            _group = Hdf5Writing.CreateGroup(_entry.Id, "data", path);
            Hdf5Writing.WriteAttribute(_group.Id, "NX_class", "NXdata", path);
            Hdf5Writing.WriteAttribute(_group.Id, "signal", "data", path);
            _data = CreateImages(o);
            _ids = Create1d("image_id", Hdf5.NATIVE_UINT64, fill: null);
            _statuses = Create1d("status", Hdf5.NATIVE_UINT16, fill: BitConverter.GetBytes(StatusNotWritten));
            _frameIndices = Create1d("frame_index", Hdf5.NATIVE_UINT64, fill: null);
            _receiveTimes = Create1d("receive_time", Hdf5.NATIVE_INT64, fill: null);
            Hdf5Writing.WriteAttribute(_receiveTimes.Id, "units", "ns", path);
            _writtenCount = Hdf5Writing.WriteDataset(_group.Id, "n_images_written", 0L, null, path);
            _nxmx = NxmxLayout.Write(file, _entry, _data, o, path, DateTimeOffset.UtcNow);
            foreach (var (name, value) in o.Attributes)
                Hdf5Writing.WriteAttribute(file.Id, name, value, path);
            Hdf5Writing.WriteAttribute(file.Id, "n_images_requested", o.NImages, path);
            Hdf5Writing.WriteAttribute(file.Id, "n_images_written", 0L, path);
            Hdf5Writing.WriteAttribute(file.Id, "interrupted", (byte)1, path);
            Hdf5Writing.WriteAttribute(file.Id, "interrupted_reason", NotClosedReason, ReasonCapacity, path);
            // Everything exists now: SWMR writing only grows datasets and writes in place. It flushes
            // the file first, so even a writer killed at once leaves a readable empty file.
            Hdf5.Check(Hdf5.H5Fstart_swmr_write(file.Id), $"{path}: H5Fstart_swmr_write");
        }
        catch
        {
            Release();
            throw;
        }
    }

    /// <summary>
    /// Creates the file (replacing one only when <paramref name="overwrite"/>, and then only a
    /// regular HDF5 file), writes its layout and attributes and flushes, so even a writer killed at
    /// once leaves a readable empty file. With <paramref name="roots"/>, the path must lie beneath
    /// one of them with no symbolic link below the root (<see cref="OutputPath"/>). The file is
    /// created empty and exclusively first; libhdf5 then opens that very file through
    /// /proc/self/fd, so a path changed meanwhile cannot send the writes elsewhere.
    /// </summary>
    public static NexusImageFile Create(string path, NexusFileOptions options, bool overwrite, IReadOnlyList<string>? roots = null)
    {
        Validate(options);
        using var created = OutputPath.Create(path, roots ?? [], overwrite);
        var file = CreateHdf5(created, path);
        try
        {
            return new NexusImageFile(path, options, file);
        }
        catch
        {
            created.Remove(); // half a layout is no file to keep
            throw;
        }
    }

    /// <summary>
    /// The HDF5 1.10 file on the file <paramref name="created"/> made (opened through /proc/self/fd,
    /// checked to be that very file), with evict-on-close and strong close; removed on failure.
    /// </summary>
    internal static H5FileHandle CreateHdf5(CreatedFile created, string path)
    {
        try
        {
            Hdf5.Quiet();
            using var fapl = new H5PropertyHandle(Hdf5.Check(Hdf5.H5Pcreate(Hdf5.P.FILE_ACCESS), $"{path}: H5Pcreate(H5P_FILE_ACCESS)"));
            Hdf5.Check(Hdf5.H5Pset_evict_on_close(fapl.Id, true), $"{path}: H5Pset_evict_on_close");
            Hdf5.Check(Hdf5.H5Pset_fclose_degree(fapl.Id, Hdf5.F.CLOSE_STRONG), $"{path}: H5Pset_fclose_degree");
            Hdf5.Check(Hdf5.H5Pset_libver_bounds(fapl.Id, Hdf5.F.LIBVER_V110, Hdf5.F.LIBVER_V110), $"{path}: H5Pset_libver_bounds(v110)");
            long id = Hdf5.H5Fcreate(created.ProcPath, Hdf5.F.ACC_TRUNC, Hdf5.P.DEFAULT, fapl.Id);
            if (id < 0)
                throw new Hdf5Exception($"{path}: H5Fcreate(H5F_ACC_TRUNC) failed: {Hdf5.TakeErrorStack()}");
            try
            {
                CheckOpened(id, fapl.Id, path, created);
            }
            catch
            {
                Hdf5.H5Fclose(id);
                throw;
            }
            return new H5FileHandle(id);
        }
        catch
        {
            created.Remove();
            throw;
        }
    }

    /// <summary>
    /// Makes the file of a writer that died (SIGKILL, power) open in every HDF5 reader again, as
    /// <c>h5clear -s</c> does: a file in SWMR writing is flagged "open for write" in its superblock
    /// until it is closed, and readers without SWMR (DIALS, h5dump, XDS, h5py's default) refuse it.
    /// It then reads as at its writer's last flush, <c>interrupted</c> = 1 and "not closed".
    /// Only for a file no process writes any more (the writer's role says so: a writer that died
    /// left it noted in the role lock). Returns false when the file needed nothing (closed
    /// normally). Refuses a symbolic link, a file that is not HDF5 and one this writer did not
    /// make (its <c>creator</c>).
    /// </summary>
    public static bool Recover(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget != null)
            throw new InvalidDataException($"{path}: is a symbolic link, not a file the writer made");
        Hdf5.Quiet();
        long id = Hdf5.H5Fopen(path, Hdf5.F.ACC_RDONLY, Hdf5.P.DEFAULT);
        if (id >= 0)
        {
            Hdf5.H5Fclose(id);
            return false;
        }
        string why = Hdf5.TakeErrorStack();
        if (!why.Contains("already open for write", StringComparison.Ordinal))
            throw new Hdf5Exception($"{path}: not a file left open for writing: {why}");
        using (var f = Hdf5File.OpenRead(path, swmr: true))
            if (f.StringAttribute("creator") is not { } creator || !creator.StartsWith(NxmxLayout.CreatorName, StringComparison.Ordinal))
                throw new InvalidDataException($"{path}: not written by {NxmxLayout.CreatorName}");
        Hdf5Writing.ClearStatusFlags(path);
        return true;
    }

    /// <summary>
    /// Writes image <paramref name="index"/> (above every index handled so far, below NImages) as one
    /// chunk at [index, 0, 0]: <paramref name="chunk"/> is the raw image (H × W × element size bytes)
    /// or, with BitshuffleLz4, the compressed chunk (12-byte big-endian header, then LZ4 blocks).
    /// <paramref name="frameIndex"/> and <paramref name="receiveTimeNs"/> go to frame_index and
    /// receive_time (from the image's slot header).
    /// </summary>
    public void WriteImage(long index, ReadOnlySpan<byte> chunk, ulong imageId, ushort status, ulong frameIndex = 0, long receiveTimeNs = 0)
    {
        CheckWritable(index);
        if (status == StatusNotWritten)
            throw new ArgumentOutOfRangeException(nameof(status), "ImageStatus.NotWritten is the status of images not written");
        WriteChunk(index, chunk);
        _records.Add(index, imageId, status, StatusNotWritten, frameIndex, receiveTimeNs);
        ImagesWritten++;
    }

    /// <summary>
    /// Takes back the image just written at <paramref name="index"/> (the last one handled, not yet
    /// flushed): its chunk is overwritten with <paramref name="replacement"/> (zeros, in the chunk
    /// format of the file) and its status becomes not written. For a writer that learns only after
    /// the write that its source was overwritten meanwhile (torn).
    /// </summary>
    public void Unwrite(long index, ReadOnlySpan<byte> replacement)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        ThrowIfFaulted();
        if (index != _records.End - 1 || index < _records.Start)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"only the last image written since the last flush ({_records.End - 1}) can be taken back");
        WriteChunk(index, replacement);
        _records.SetNotWritten(index, StatusNotWritten);
        ImagesWritten--;
    }

    /// <summary>One chunk at [index, 0, 0], growing the extent first if needed; an error faults the file.</summary>
    private void WriteChunk(long index, ReadOnlySpan<byte> chunk)
    {
        CheckChunk(chunk);
        Hdf5.Quiet();
        try
        {
            // Exactly to this image: SWMR datasets only grow, so the extent never runs ahead to be trimmed.
            if (index >= _extent)
                SetDataExtent(index + 1);
            ReadOnlySpan<ulong> offset = [(ulong)index, 0, 0];
            Hdf5.Check(Hdf5.H5Dwrite_chunk(_data.Id, Hdf5.P.DEFAULT, 0, offset, (nuint)chunk.Length, chunk),
                $"{_path}: H5Dwrite_chunk(image {index}, {chunk.Length} bytes)");
        }
        catch (Hdf5Exception e)
        {
            _fault = e.Message;
            throw;
        }
    }

    /// <summary>Records an image that is not in the file (e.g. overwritten in the ring): status <see cref="ImageStatus.NotWritten"/>, pixels 0.</summary>
    public void MarkMissing(long index, ulong imageId)
    {
        CheckWritable(index);
        _records.Add(index, imageId, StatusNotWritten, StatusNotWritten);
    }

    /// <summary>Makes every image handled so far readable, also if the writer dies before <see cref="Close"/>.</summary>
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        ThrowIfFaulted();
        Hdf5.Quiet();
        try
        {
            FlushCore();
            // Evict-on-close: closing data drops its chunk index from the cache (all of it clean now).
            _data.Dispose();
            _data = Hdf5Writing.OpenDataset(_group.Id, "data", _path);
        }
        catch (Hdf5Exception e)
        {
            _fault = e.Message;
            throw;
        }
    }

    /// <summary>
    /// Writes the last image_id/status and the final attributes (interrupted 0/1 and its reason) and
    /// closes the file. Idempotent. After an earlier error it only tries, and releases the file
    /// without throwing (that error was thrown already).
    /// </summary>
    public void Close(bool interrupted, string? reason)
    {
        if (_closed)
            return;
        _closed = true;
        Hdf5.Quiet();
        Hdf5Exception? error = null;
        try
        {
            // In place only: the file is in SWMR writing, which cannot create or delete anything.
            FlushCore(); // the images and their counts first, as at every flush
            _nxmx.WriteEndTime(DateTimeOffset.UtcNow);
            Hdf5Writing.WriteAttribute(_file.Id, "interrupted", interrupted ? (byte)1 : (byte)0, _path);
            Hdf5Writing.OverwriteAttribute(_file.Id, "interrupted_reason", interrupted ? reason ?? "" : "", _path);
        }
        catch (Hdf5Exception e)
        {
            error = e;
        }
        string? closeError = Release();
        if (_fault != null)
            return;
        if (error != null)
            throw error;
        if (closeError != null)
            throw new Hdf5Exception($"{_path}: H5Fclose failed: {closeError}");
    }

    /// <summary>Closes as interrupted ("not closed") if <see cref="Close"/> was not called; never throws.</summary>
    public void Dispose()
    {
        try
        {
            Close(interrupted: true, "not closed: the writer disposed the file without closing it");
        }
        catch (Hdf5Exception)
        {
            // Dispose runs on error paths; the file is released either way.
        }
    }

    private H5DatasetHandle CreateImages(NexusFileOptions o)
    {
        using var dcpl = new H5PropertyHandle(Hdf5.Check(Hdf5.H5Pcreate(Hdf5.P.DATASET_CREATE), $"{_path}: H5Pcreate(H5P_DATASET_CREATE)"));
        ReadOnlySpan<ulong> chunk = [1, (ulong)_height, (ulong)_width];
        Hdf5.Check(Hdf5.H5Pset_chunk(dcpl.Id, 3, chunk), $"{_path}: H5Pset_chunk");
        if (_compressed)
        {
            uint elemSize = (uint)ImageMetadata.BytesPerPixel((ImageDtype)o.Dtype);
            // With the plugin loadable, H5Dcreate2 runs its set_local, which takes the user's
            // {block_size, compression} and puts version and element size in front; without it,
            // the optional filter is stored with the values as given, so give all five.
            ReadOnlySpan<uint> cd = Hdf5.H5Zfilter_avail(BitshuffleFilterId) > 0
                ? [0, BitshuffleLz4Code]
                : [BitshuffleMajor, BitshuffleMinor, elemSize, 0, BitshuffleLz4Code];
            Hdf5.TakeErrorStack(); // a plugin search that found nothing leaves a stack
            Hdf5.Check(Hdf5.H5Pset_filter(dcpl.Id, BitshuffleFilterId, Hdf5.Z.FLAG_OPTIONAL, (nuint)cd.Length, cd), $"{_path}: H5Pset_filter(32008)");
        }
        ReadOnlySpan<ulong> dims = [0, (ulong)_height, (ulong)_width];
        ReadOnlySpan<ulong> max = [(ulong)_n, (ulong)_height, (ulong)_width];
        return Hdf5Writing.CreateDataset(_group.Id, "data", Hdf5Writing.TypeOf((ImageDtype)o.Dtype), dims, max, dcpl, _path);
    }

    private H5DatasetHandle Create1d(string name, long type, byte[]? fill) =>
        Hdf5Writing.CreateGrowable(_group.Id, name, type, _n, IdChunk, fill, _path);

    private static void Validate(NexusFileOptions o)
    {
        if (o.NImages <= 0 || o.Height <= 0 || o.Width <= 0)
            throw new ArgumentOutOfRangeException(nameof(o), $"n_images {o.NImages}, height {o.Height}, width {o.Width}: all must be positive");
        if (o.Dtype is not (1 or 2 or 4 or 8 or 14 or 18))
            throw new ArgumentOutOfRangeException(nameof(o), o.Dtype, "dtype must be 1, 2, 4, 8 (uint), 14 or 18 (float)");
        if ((long)o.Height * o.Width * ImageMetadata.BytesPerPixel((ImageDtype)o.Dtype) > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(o), $"a {o.Height} × {o.Width} image is over 2 GiB");
        var seen = new HashSet<string>(StoreStreamMessage.ReservedAttributes);
        foreach (var (name, _) in o.Attributes)
            if (string.IsNullOrEmpty(name) || !seen.Add(name))
                throw new ArgumentException($"attribute name '{name}' is empty, repeated or reserved ({string.Join(", ", StoreStreamMessage.ReservedAttributes)})", nameof(o));
        if (o.Run.Check() is { } problem)
            throw new ArgumentException(problem, nameof(o));
        foreach (var m in o.Detector is { } d ? d.Modules.Concat(d.Sensors) : [])
            if (m.Left < 0 || m.Top < 0 || m.Right >= o.Width || m.Bottom >= o.Height)
                throw new ArgumentException($"detector module {m} lies outside the {o.Width}x{o.Height} image", nameof(o));
    }

    private void CheckWritable(long index)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        ThrowIfFaulted();
        if (index < _records.End || index >= _n)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"must be in [{_records.End}, {_n}): above every index handled so far, below n_images");
    }

    private void CheckChunk(ReadOnlySpan<byte> chunk)
    {
        if (!_compressed)
        {
            if (chunk.Length != _imageBytes)
                throw new ArgumentException($"a raw image is {_imageBytes} bytes, got {chunk.Length}", nameof(chunk));
            return;
        }
        // bitshuffle-LZ4 chunk: u64 BE uncompressed bytes, u32 BE block bytes, then the blocks.
        if (chunk.Length < 12 || BinaryPrimitives.ReadUInt64BigEndian(chunk) != (ulong)_imageBytes)
            throw new ArgumentException($"not a bitshuffle-LZ4 chunk of a {_imageBytes}-byte image", nameof(chunk));
    }

    private void ThrowIfFaulted()
    {
        if (_fault != null)
            throw new InvalidOperationException($"{_path}: not writable after an earlier error: {_fault}");
    }

    /// <summary>Extents to n, image_id/status/omega of the images since the last flush, n_images_written, H5Fflush.</summary>
    private void FlushCore()
    {
        WritePending();
        Hdf5Writing.WriteAttribute(_file.Id, "n_images_written", ImagesWritten, _path);
        Hdf5.Check(Hdf5.H5Fflush(_file.Id, Hdf5.F.SCOPE_LOCAL), $"{_path}: H5Fflush");
        // The count's dataset only once the images it counts are in the file: its raw value can
        // reach the disk at any moment, the metadata that shows the images only in a flush. A
        // second flush writes it out (it is all that changed).
        Hdf5Writing.Overwrite(_writtenCount, ImagesWritten, $"{_path}: n_images_written");
        Hdf5.Check(Hdf5.H5Fflush(_file.Id, Hdf5.F.SCOPE_LOCAL), $"{_path}: H5Fflush");
        _records.Clear();
    }

    private void WritePending()
    {
        long n = _records.End;
        if (n == _records.Start && _extent == n)
            return;
        if (_extent < n)
            SetDataExtent(n); // images marked missing after the last one written
        Hdf5Writing.Append(_ids, Hdf5.NATIVE_UINT64, _records.Start, _records.Ids, $"{_path}: image_id");
        Hdf5Writing.Append(_statuses, Hdf5.NATIVE_UINT16, _records.Start, _records.Statuses, $"{_path}: status");
        Hdf5Writing.Append(_frameIndices, Hdf5.NATIVE_UINT64, _records.Start, _records.FrameIndices, $"{_path}: frame_index");
        Hdf5Writing.Append(_receiveTimes, Hdf5.NATIVE_INT64, _records.Start, _records.ReceiveTimes, $"{_path}: receive_time");
        _nxmx.Grow(_records.Start, n); // after data: dxtbx counts the images by omega's length
    }

    private void SetDataExtent(long n)
    {
        ReadOnlySpan<ulong> dims = [(ulong)n, (ulong)_height, (ulong)_width];
        Hdf5.Check(Hdf5.H5Dset_extent(_data.Id, dims), $"{_path}: H5Dset_extent({n})");
        _extent = n;
    }

    /// <summary>Closes every id, the file last; returns the H5Fclose error, if any.</summary>
    private string? Release()
    {
        _data?.Dispose();
        _ids?.Dispose();
        _statuses?.Dispose();
        _frameIndices?.Dispose();
        _receiveTimes?.Dispose();
        _writtenCount?.Dispose();
        _nxmx?.Dispose();
        _group?.Dispose();
        _entry?.Dispose();
        if (_file.IsClosed || _file.IsInvalid)
            return null;
        long id = _file.Id;
        _file.SetHandleAsInvalid();
        // CLOSE_STRONG: also closes anything an error left open, so the descriptor is released.
        return Hdf5.H5Fclose(id) < 0 ? Hdf5.TakeErrorStack() : null;
    }

    /// <summary>
    /// libhdf5 opens the file without O_CLOEXEC: a process started meanwhile (a broker, a helper)
    /// would inherit the descriptor and its lock, and keep the file locked after we closed it; so
    /// set it. And check libhdf5 holds the file created (the /proc/self/fd link guarantees it; a
    /// change there would be caught here rather than write elsewhere).
    /// </summary>
    private static void CheckOpened(long fileId, long faplId, string path, CreatedFile created)
    {
        int fd = Hdf5Writing.CloseOnExec(fileId, faplId, path);
        if (!created.IsSameFile(fd))
            throw new Hdf5Exception($"{path}: libhdf5 opened another file than the one created");
    }
}
