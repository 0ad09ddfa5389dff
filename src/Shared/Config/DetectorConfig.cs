using StdDaq.Shared.Streams;
using StdDaq.Shared.Detectors;

namespace StdDaq.Shared.Config;

/// <summary>
/// The std-daq detector config: one JSON file per detector, shared by all services. Key names are
/// std-daq's (snake_case); the properties below are named after them. Load with
/// <see cref="DetectorConfigLoader"/>, which validates strictly.
/// </summary>
public sealed record DetectorConfig
{
    /// <summary>detector_name: 1-64 of A-Z a-z 0-9 _ . -; it names the shared memory, sockets and role locks.</summary>
    public required string DetectorName { get; init; }
    /// <summary>detector_type as spelled in the config: jungfrau-raw, jungfrau-converted, eiger or gigafrost (<see cref="Kind"/>).</summary>
    public required string DetectorType { get; init; }
    /// <summary>n_modules: UDP streams, one receiver each, 1-1024 (an EIGER port is one; GigaFRoST is always 8).</summary>
    public required int NModules { get; init; }
    /// <summary>
    /// bit_depth: bits per pixel on the wire. It picks EIGER's packet layout and image dtype (8, 16
    /// or 32); for JUNGFRAU (16; converted also 32) and GigaFRoST (12 or 16) it is checked, not used:
    /// their streams have one format.
    /// </summary>
    public required int BitDepth { get; init; }
    /// <summary>image_pixel_height: rows of the assembled image, gaps included.</summary>
    public required int ImagePixelHeight { get; init; }
    /// <summary>image_pixel_width: columns of the assembled image, gaps included.</summary>
    public required int ImagePixelWidth { get; init; }
    /// <summary>start_udp_port: module m is received on this port + m (<see cref="UdpPort"/>).</summary>
    public required int StartUdpPort { get; init; }
    /// <summary>
    /// module_positions, indexed by module id: where each module's frame goes in the image, inside
    /// it, of the module's placed size, not overlapping another (GigaFRoST's two links of a quadrant
    /// share one).
    /// </summary>
    public required IReadOnlyList<ModulePosition> ModulePositions { get; init; }

    /// <summary>The services' log level from here on (log_level: trace, debug, info, warning, error, critical).</summary>
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Information;
    /// <summary>Seconds between two stats lines of a service (stats_collection_period).</summary>
    public double StatsCollectionPeriod { get; init; } = 10;
    /// <summary>GiB (2^30 bytes) of images the ImageBuffer holds (ram_buffer_gb); null: <see cref="ImageBufferSlots"/> decides.</summary>
    public double? RamBufferGb { get; init; }
    /// <summary>
    /// Images the assembler keeps waiting for their modules (module_sync_queue_size); one more and
    /// the oldest goes out as it is. Null: max(16, <see cref="FrameBufferSlots"/> / 2).
    /// </summary>
    public int? ModuleSyncQueueSize { get; init; }
    /// <summary>number_of_writers: accepted for std-daq's configs, not used (one StdH5Writer writes every run; above 1 draws a warning).</summary>
    public int? NumberOfWriters { get; init; }
    /// <summary>The JUNGFRAU gains-and-pedestals HDF5 file (gains_and_pedestals); the assembler needs it for jungfrau-converted.</summary>
    public string? GainsAndPedestals { get; init; }

    // Our additions (documented in the README with these defaults).

    /// <summary>Slots of each module's FrameBuffer (frame_buffer_slots).</summary>
    public int FrameBufferSlots { get; init; } = 1000;
    /// <summary>Requested SO_RCVBUF of each receiver socket (udp_receive_buffer_bytes).</summary>
    public long UdpReceiveBufferBytes { get; init; } = 256L << 20;
    /// <summary>A frame with missing packets is closed this long after its last packet (udp_frame_timeout_ms).</summary>
    public double UdpFrameTimeoutMs { get; init; } = 50;
    /// <summary>Datagrams per recvmmsg call (udp_batch_size).</summary>
    public int UdpBatchSize { get; init; } = 64;
    /// <summary>
    /// Receive each datagram straight into its predicted place in the frame slot, copying only the
    /// ones that land elsewhere (udp_receive_in_place); false copies every payload once.
    /// </summary>
    public bool UdpReceiveInPlace { get; init; } = true;
    /// <summary>Slots of the ImageBuffer when ram_buffer_gb is not given (image_buffer_slots).</summary>
    public int ImageBufferSlots { get; init; } = 128;
    /// <summary>
    /// The assembler publishes an image with a module missing this long after its first module
    /// arrived, if no newer image of the missing module came first (assembler_timeout_ms).
    /// </summary>
    public double AssemblerTimeoutMs { get; init; } = 200;
    /// <summary>
    /// How long a service waits at start for what its peers make: the assembler for every module's
    /// FrameBuffer, the writer for the ImageBuffer (wait_for_peers_s). Then it fails (exit 1).
    /// </summary>
    public double WaitForPeersS { get; init; } = 60;
    /// <summary><see cref="WaitForPeersS"/> as a time span.</summary>
    public TimeSpan WaitForPeers => TimeSpan.FromSeconds(WaitForPeersS);
    /// <summary>Assembler worker threads converting modules in parallel (assembler_workers; 0: automatic).</summary>
    public int AssemblerWorkers { get; init; }
    /// <summary>JUNGFRAU image id (jungfrau_image_id: bunch_id, falling back to the frame number when 0, or frame_number).</summary>
    public JungfrauImageIdSource JungfrauImageId { get; init; } = JungfrauImageIdSource.BunchId;

    /// <summary>
    /// Folders a write request may write under (writer_output_roots); empty: any absolute path.
    /// </summary>
    public IReadOnlyList<string> WriterOutputRoots { get; init; } = [];
    /// <summary>The writer flushes its open file at least this often (writer_flush_interval_s).</summary>
    public double WriterFlushIntervalS { get; init; } = 1;
    /// <summary>Compression when a request does not name one (writer_compression: none or bitshuffle-lz4).</summary>
    public ImageCompression WriterCompression { get; init; } = ImageCompression.None;
    /// <summary>What the agent does with a request that comes while it is busy (writer_busy_policy: queue or reject).</summary>
    public WriterBusyPolicy WriterBusyPolicy { get; init; } = WriterBusyPolicy.Queue;
    /// <summary>
    /// How a request whose file holds incomplete images ends (writer_incomplete_policy): succeed
    /// (request_success, with the counts) or fail (request_fail, with the same counts).
    /// </summary>
    public WriterIncompletePolicy WriterIncompletePolicy { get; init; } = WriterIncompletePolicy.Succeed;

    /// <summary>What every file's NeXus NXmx description says about the detector and beamline (nexus; defaults per detector type).</summary>
    public NexusConfig Nexus { get; init; } = new();

    /// <summary>The HTTP ports of each role's /metrics and /stats (metrics; every one off unless named).</summary>
    public MetricsConfig Metrics { get; init; } = new();

    /// <summary><see cref="DetectorType"/> parsed; throws <see cref="ArgumentException"/> for a type the loader would have refused.</summary>
    public DetectorKind Kind => ModuleGeometry.ParseKind(DetectorType);

    /// <summary>The pixel type of assembled images.</summary>
    public ImageDtype ImageDtype => Kind switch
    {
        DetectorKind.JungfrauConverted => ImageDtype.Float32,
        DetectorKind.Eiger => BitDepth switch { 8 => ImageDtype.UInt8, 16 => ImageDtype.UInt16, _ => ImageDtype.UInt32 },
        _ => ImageDtype.UInt16,
    };

    /// <summary>The geometry of one module's UDP stream.</summary>
    public ModuleGeometry Module => Kind switch
    {
        DetectorKind.JungfrauRaw => ModuleGeometry.Jungfrau(converted: false),
        DetectorKind.JungfrauConverted => ModuleGeometry.Jungfrau(converted: true),
        DetectorKind.Eiger => ModuleGeometry.Eiger(BitDepth),
        DetectorKind.Gigafrost => ModuleGeometry.Gigafrost(ImagePixelWidth, ImagePixelHeight),
        _ => throw new InvalidOperationException(DetectorType),
    };

    /// <summary>The UDP port module <paramref name="moduleId"/> sends to: <see cref="StartUdpPort"/> + id.</summary>
    public int UdpPort(int moduleId) => StartUdpPort + moduleId;

    /// <summary>Shared-memory name of module m's FrameBuffer.</summary>
    public string FrameBufferName(int moduleId) => $"{DetectorName}-{moduleId}";

    /// <summary>Shared-memory name of the detector's ImageBuffer.</summary>
    public string ImageBufferName => $"{DetectorName}-image";

    /// <summary>ZMQ endpoint of the assembler's ImageMetadata stream.</summary>
    public string AssemblerEndpoint => $"ipc:///tmp/std-daq-{DetectorName}-assembler";

    /// <summary>ZMQ endpoint where the WriterAgent publishes StoreStream messages to the writer.</summary>
    public string WriterAgentEndpoint => $"ipc:///tmp/std-daq-{DetectorName}-writer_agent";

    /// <summary>ZMQ endpoint where the writer pushes its acknowledgements to the WriterAgent.</summary>
    public string WriterStatusEndpoint => $"ipc:///tmp/std-daq-{DetectorName}-writer_status";

    /// <summary>Bytes of one assembled image, the ImageBuffer's slot size: height x width x bytes per pixel of <see cref="ImageDtype"/>.</summary>
    public long ImageBytes => (long)ImagePixelHeight * ImagePixelWidth * ImageMetadata.BytesPerPixel(ImageDtype);

    /// <summary>Slots of the ImageBuffer of this config: <see cref="ImageBufferSlotsFor"/> of <see cref="ImageBytes"/>.</summary>
    public int ImageBufferSlotCount => ImageBufferSlotsFor(ImageBytes);

    /// <summary>
    /// Slots of the ImageBuffer: ram_buffer_gb worth of images if given, else image_buffer_slots.
    /// </summary>
    public int ImageBufferSlotsFor(long imageBytes)
    {
        if (RamBufferGb is { } gb)
            return (int)Math.Clamp((long)(gb * (1L << 30)) / Math.Max(1, imageBytes), 2, 1 << 20);
        return ImageBufferSlots;
    }

    /// <summary>ZMQ endpoint of module m's ModuleFrame notices.</summary>
    public string ModuleFrameEndpoint(int moduleId) => $"ipc:///tmp/{DetectorName}-{moduleId}";
}
