using System.Runtime.CompilerServices;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;

namespace StdDaq.Tests.Stream;

/// <summary>The stream header's byte layout (README "Replication across servers") and the image shares' arithmetic.</summary>
public class StreamHeaderTests
{
    [Fact]
    public void StreamHeader_Written_HasTheDocumentedSizeAndOffsets()
    {
        Assert.Equal(StreamHeader.Size, Unsafe.SizeOf<StreamHeader>());
        var slot = new SlotHeader { Sequence = 99, ImageId = 42, FrameIndex = 7 };
        var bytes = new byte[StreamHeader.Size];
        new StreamHeader(0x1122334455667788, 5, new ImageShare(1, 3), 1000, 0xAABB, slot).Write(bytes);

        Assert.Equal("SDQS"u8.ToArray(), bytes[..4]);
        Assert.Equal((ushort)1, BitConverter.ToUInt16(bytes, 4));
        Assert.Equal(StreamHeader.FlagChecksum, BitConverter.ToUInt16(bytes, 6));
        Assert.Equal(0x1122334455667788UL, BitConverter.ToUInt64(bytes, 8));
        Assert.Equal(5UL, BitConverter.ToUInt64(bytes, 16));
        Assert.Equal((1u, 3u), (BitConverter.ToUInt32(bytes, 24), BitConverter.ToUInt32(bytes, 28)));
        Assert.Equal(1000UL, BitConverter.ToUInt64(bytes, 32));
        Assert.Equal(0xAABBUL, BitConverter.ToUInt64(bytes, 40));
        Assert.Equal(0UL, BitConverter.ToUInt64(bytes, 48)); // the slot's sequence is not carried
        Assert.Equal((42UL, 7UL), (BitConverter.ToUInt64(bytes, 56), BitConverter.ToUInt64(bytes, 64)));
        var back = StreamHeader.Read(bytes);
        Assert.True(back.IsValid && back.HasChecksum);
        Assert.False(new StreamHeader(1, 0, ImageShare.All, 0, null, slot).HasChecksum);
    }

    [Theory]
    [InlineData(0, 1, 10, 20, 9)]
    [InlineData(0, 2, 10, 20, 4)] // 12, 14, 16, 18
    [InlineData(1, 2, 10, 20, 5)] // 11 .. 19
    [InlineData(2, 3, 1, 9, 3)]   // 2, 5, 8
    [InlineData(0, 1, 5, 6, 0)]
    [InlineData(0, 1, 6, 5, 0)]
    public void ImageShare_CountBetween_CountsOnlyItsIdsStrictlyBetween(int i, int n, ulong after, ulong before, ulong expected) =>
        Assert.Equal(expected, new ImageShare(i, n).CountBetween(after, before));

    [Theory]
    [InlineData("0/1", true)]
    [InlineData("1/2", true)]
    [InlineData("2/2", false)]
    [InlineData("-1/2", false)]
    [InlineData("1/0", false)]
    [InlineData("1", false)]
    [InlineData("0/1025", false)]
    public void ImageShare_TryParse_AcceptsOnlyIBelowN(string text, bool ok) => Assert.Equal(ok, ImageShare.TryParse(text, out _));
}
