using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Packets;
using StdDaq.Shared.Streams;

namespace StdDaq.Tests.Shared;

public class WireFormatTests
{
    [Fact]
    public void Sizes_MatchTheWireFormats()
    {
        Assert.Equal(SlsHeader.Size, Unsafe.SizeOf<SlsHeader>());
        Assert.Equal(48, SlsHeader.Size);
        Assert.Equal(GigafrostHeader.Size, Unsafe.SizeOf<GigafrostHeader>());
        Assert.Equal(32, GigafrostHeader.Size);
        Assert.Equal(ModuleFrameNotice.Size, Unsafe.SizeOf<ModuleFrameNotice>());
        Assert.Equal(64, ModuleFrameNotice.Size);
        Assert.Equal(RingHeader.Size, Unsafe.SizeOf<RingHeader>());
        Assert.Equal(SlotHeader.Size, Unsafe.SizeOf<SlotHeader>());
    }

    /// <summary>H5AC_cache_config_t of libhdf5 1.10 (offsets from gcc's offsetof on Debian's H5ACpublic.h).</summary>
    [Theory]
    [InlineData(nameof(Hdf5.CacheConfig.EvictionsEnabled), 1032)]
    [InlineData(nameof(Hdf5.CacheConfig.InitialSize), 1040)]
    [InlineData(nameof(Hdf5.CacheConfig.IncrMode), 1080)]
    [InlineData(nameof(Hdf5.CacheConfig.FlashIncrMode), 1120)]
    [InlineData(nameof(Hdf5.CacheConfig.DecrMode), 1144)]
    [InlineData(nameof(Hdf5.CacheConfig.MetadataWriteStrategy), 1208)]
    public void Hdf5CacheConfig_FieldOffsets(string field, int offset)
    {
        Assert.Equal(offset, (int)Marshal.OffsetOf<Hdf5.CacheConfig>(field));
        Assert.Equal(Hdf5.CacheConfig.Size, Unsafe.SizeOf<Hdf5.CacheConfig>());
    }

    [Theory]
    [InlineData(nameof(SlsHeader.FrameNumber), 0)]
    [InlineData(nameof(SlsHeader.ExpLength), 8)]
    [InlineData(nameof(SlsHeader.PacketNumber), 12)]
    [InlineData(nameof(SlsHeader.DetSpec1), 16)]
    [InlineData(nameof(SlsHeader.Timestamp), 24)]
    [InlineData(nameof(SlsHeader.ModuleId), 32)]
    [InlineData(nameof(SlsHeader.Row), 34)]
    [InlineData(nameof(SlsHeader.Column), 36)]
    [InlineData(nameof(SlsHeader.DetSpec2), 38)]
    [InlineData(nameof(SlsHeader.DetSpec3), 40)]
    [InlineData(nameof(SlsHeader.RoundRobin), 44)]
    [InlineData(nameof(SlsHeader.DetectorType), 46)]
    [InlineData(nameof(SlsHeader.HeaderVersion), 47)]
    public void SlsHeader_FieldOffsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<SlsHeader>(field));

    [Theory]
    [InlineData(nameof(GigafrostHeader.ProtocolId), 0)]
    [InlineData(nameof(GigafrostHeader.ScanId), 4)]
    [InlineData(nameof(GigafrostHeader.FrameIndex), 8)]
    [InlineData(nameof(GigafrostHeader.ImageStatusFlags), 12)]
    [InlineData(nameof(GigafrostHeader.PacketStartingRow), 14)]
    [InlineData(nameof(GigafrostHeader.ImageTiming), 16)]
    [InlineData(nameof(GigafrostHeader.SyncTime), 24)]
    [InlineData(nameof(GigafrostHeader.ScanTime), 28)]
    public void GigafrostHeader_FieldOffsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<GigafrostHeader>(field));

    [Theory]
    [InlineData(nameof(ModuleFrameNotice.ImageId), 0)]
    [InlineData(nameof(ModuleFrameNotice.NMissingPackets), 8)]
    [InlineData(nameof(ModuleFrameNotice.ModuleId), 16)]
    [InlineData(nameof(ModuleFrameNotice.BitDepth), 18)]
    [InlineData(nameof(ModuleFrameNotice.NReceivedPackets), 20)]
    [InlineData(nameof(ModuleFrameNotice.FrameIndex), 24)]
    [InlineData(nameof(ModuleFrameNotice.Detector1), 32)]
    [InlineData(nameof(ModuleFrameNotice.Detector2), 40)]
    [InlineData(nameof(ModuleFrameNotice.SlotSequence), 48)]
    [InlineData(nameof(ModuleFrameNotice.ReceiveTimeNs), 56)]
    public void ModuleFrameNotice_FieldOffsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<ModuleFrameNotice>(field));

    [Theory]
    [InlineData(nameof(SlotHeader.Sequence), 0)]
    [InlineData(nameof(SlotHeader.ImageId), 8)]
    [InlineData(nameof(SlotHeader.FrameIndex), 16)]
    [InlineData(nameof(SlotHeader.NReceivedPackets), 24)]
    [InlineData(nameof(SlotHeader.NMissingPackets), 28)]
    [InlineData(nameof(SlotHeader.Detector1), 32)]
    [InlineData(nameof(SlotHeader.Detector2), 40)]
    [InlineData(nameof(SlotHeader.ReceiveTimeNs), 48)]
    [InlineData(nameof(SlotHeader.ModuleId), 56)]
    [InlineData(nameof(SlotHeader.BitDepth), 58)]
    [InlineData(nameof(SlotHeader.Status), 60)]
    [InlineData(nameof(SlotHeader.NMissingModules), 64)]
    [InlineData(nameof(SlotHeader.Reserved), 68)]
    [InlineData(nameof(SlotHeader.Parts), 84)]
    [InlineData(nameof(SlotHeader.ReservedTail), 124)]
    [InlineData(nameof(SlotHeader.ReceivedBitmap), 128)]
    public void SlotHeader_FieldOffsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<SlotHeader>(field));

    /// <summary>The parts state's fields in the slot header (@84 + these); the 64-bit ones 8-byte aligned, as Interlocked needs.</summary>
    [Theory]
    [InlineData(nameof(SlotPartsState.Lock), 0)]
    [InlineData(nameof(SlotPartsState.ImageId), 4)]
    [InlineData(nameof(SlotPartsState.Key), 12)]
    [InlineData(nameof(SlotPartsState.Done), 20)]
    [InlineData(nameof(SlotPartsState.Failed), 28)]
    [InlineData(nameof(SlotPartsState.Phase), 36)]
    public void SlotPartsState_FieldOffsets(string field, int offset)
    {
        Assert.Equal(offset, (int)Marshal.OffsetOf<SlotPartsState>(field));
        Assert.Equal(40, Unsafe.SizeOf<SlotPartsState>());
        if (field is not (nameof(SlotPartsState.Lock) or nameof(SlotPartsState.Phase)))
            Assert.Equal(0, (84 + offset) % 8);
    }

    [Fact]
    public void SlotHeader_ModuleBitmap_CoversEveryModuleAConfigMayHave()
    {
        Assert.Equal(2u, RingHeader.CurrentLayoutVersion);
        Assert.Equal(1024, SlotHeader.MaxModules);
        var h = new SlotHeader();
        h.MarkModule(0);
        h.MarkModule(64);
        h.MarkModule(1023);
        Assert.True(h.HasModule(64) && h.HasModule(1023) && !h.HasModule(63) && !h.HasModule(65));
        var bytes = new byte[SlotHeader.Size];
        MemoryMarshal.Write(bytes, in h);
        Assert.Equal(0x01, bytes[128]);        // module 0: byte 0 of the bitmap, bit 0
        Assert.Equal(0x01, bytes[128 + 8]);    // module 64: byte 8, bit 0
        Assert.Equal(0x80, bytes[128 + 127]);  // module 1023: byte 127, bit 7
        var e = Assert.Throws<StdDaq.Shared.Config.ConfigException>(() => StdDaq.Shared.Config.DetectorConfigLoader.Parse(
            """{"detector_name":"big","detector_type":"eiger","n_modules":1025,"bit_depth":16,"image_pixel_height":256,"image_pixel_width":514,"start_udp_port":1000}"""));
        Assert.Contains("n_modules", e.Message);
        Assert.Contains("1..1024", e.Message);
    }

    [Fact]
    public void SlsHeader_ReadsTheRealEigerCapture()
    {
        var bytes = File.ReadAllBytes(Path.Combine(Support.TestEnv.SharedData, "eiger-500k-32bit", "50022.dat"));
        var h = MemoryMarshal.Read<SlsHeader>(bytes.AsSpan(8));
        Assert.Equal(29512UL, h.FrameNumber);
        Assert.Equal(0U, h.PacketNumber);
        Assert.Equal((ushort)103, h.ModuleId);
        Assert.Equal((ushort)1, h.Row);
        Assert.Equal((byte)1, h.DetectorType);
        Assert.Equal((byte)2, h.HeaderVersion);
    }

    [Fact]
    public void GigafrostHeader_PacksAndUnpacksBitFields()
    {
        var h = new GigafrostHeader(quadrant: 3, link: 1, quadrantRows: 504, rowLengthInBlocks: 84, scanId: 7,
            frameIndex: 99, packetStartingRow: 12, frameTimestamp: 0x12_3456_789A, exposure: 0xABCDEF);
        var bytes = new byte[GigafrostHeader.Size];
        MemoryMarshal.Write(bytes, in h);
        var r = MemoryMarshal.Read<GigafrostHeader>(bytes);
        Assert.Equal(0xCB, bytes[0]);
        Assert.Equal(3, r.Quadrant);
        Assert.Equal(1, r.Link);
        Assert.Equal(504, r.QuadrantRows);
        Assert.Equal(0x12_3456_789AUL, r.FrameTimestamp);
        Assert.Equal(0xABCDEFU, r.Exposure);
        Assert.Equal(99U, r.FrameIndex);
    }

    [Fact]
    public void ModuleFrameNotice_RoundTrips()
    {
        var n = new ModuleFrameNotice(42, 3, 5, 16, 125, 41, 7, 8, 10, 123456789);
        var bytes = new byte[ModuleFrameNotice.Size];
        n.Write(bytes);
        Assert.Equal(42UL, BitConverter.ToUInt64(bytes, 0));
        Assert.Equal((ushort)5, BitConverter.ToUInt16(bytes, 16));
        Assert.Equal(125U, BitConverter.ToUInt32(bytes, 20));
        Assert.Equal(n, ModuleFrameNotice.Read(bytes));
    }

    [Fact]
    public void ImageMetadata_Is56BytesWithStdDaqsFieldOffsets()
    {
        Assert.Equal(56, Unsafe.SizeOf<ImageMetadata>());
        Assert.Equal(ImageMetadata.Size, Unsafe.SizeOf<ImageMetadata>());
        var m = new ImageMetadata(0x1122334455667788, 514, 1030, ImageDtype.UInt32, ImageEncoding.BitshuffleLz4, 7,
            ImageStatus.IdMismatch, 0xAABB, 0xCCDD);
        var b = new byte[ImageMetadata.Size];
        m.Write(b);
        Assert.Equal(1ul, BitConverter.ToUInt64(b, 0));
        Assert.Equal(0x1122334455667788ul, BitConverter.ToUInt64(b, 8));
        Assert.Equal(514ul, BitConverter.ToUInt64(b, 16));
        Assert.Equal(1030ul, BitConverter.ToUInt64(b, 24));
        Assert.Equal(4, BitConverter.ToUInt16(b, 32));
        Assert.Equal(1, BitConverter.ToUInt16(b, 34));
        Assert.Equal(7, BitConverter.ToUInt16(b, 36));
        Assert.Equal(2, BitConverter.ToUInt16(b, 38));
        Assert.Equal(0xAABBul, BitConverter.ToUInt64(b, 40));
        Assert.Equal(0xCCDDul, BitConverter.ToUInt64(b, 48));
        Assert.Equal(m, ImageMetadata.Read(b));
    }
}
