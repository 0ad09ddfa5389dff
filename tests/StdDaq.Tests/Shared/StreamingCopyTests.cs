using System.IO.Hashing;
using StdDaq.Shared.Memory;
using StdDaq.Shared.Streams;

namespace StdDaq.Tests.Shared;

/// <summary>The streaming-store copy against its reference, the plain copy; and the receiver's checksum over it.</summary>
public class StreamingCopyTests
{
    public static TheoryData<int, int, int> Cases()
    {
        var cases = new TheoryData<int, int, int>();
        foreach (int length in new[] { 0, 1, 31, StreamingCopy.MinBytes - 1, StreamingCopy.MinBytes, StreamingCopy.MinBytes + 1, 65536 + 13, (2 << 20) + 5 })
            foreach (var (sourceAt, targetAt) in new[] { (0, 0), (0, 1), (3, 17), (1, 31), (32, 32), (5, 63) })
                cases.Add(length, sourceAt, targetAt);
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Copy_AnyLengthAndAlignment_WritesTheSourceAndNothingElse(int length, int sourceAt, int targetAt)
    {
        var source = new byte[sourceAt + length];
        new Random(length + sourceAt).NextBytes(source);
        var target = new byte[targetAt + length + 64];
        target.AsSpan().Fill(0xA5);
        var expected = (byte[])target.Clone();
        source.AsSpan(sourceAt).CopyTo(expected.AsSpan(targetAt));

        StreamingCopy.Copy(source.AsSpan(sourceAt), target.AsSpan(targetAt));

        Assert.True(expected.AsSpan().SequenceEqual(target), $"{length} bytes from offset {sourceAt} to offset {targetAt} differ from the plain copy");
    }

    [Fact]
    public void Copy_TargetShorterThanSource_Throws() =>
        Assert.Throws<ArgumentException>(() => StreamingCopy.Copy(new byte[StreamingCopy.MinBytes * 2], new byte[StreamingCopy.MinBytes * 2 - 1]));

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(65536)]
    [InlineData((2 << 20) + 7)]
    public void CopyStreamingWithChecksum_AnImage_CopiesItAndGivesItsChecksum(int length)
    {
        var source = new byte[length];
        new Random(length).NextBytes(source);
        var target = new byte[length + 3];

        ulong checksum = StreamHeader.CopyStreamingWithChecksum(source, target.AsSpan(3), new XxHash3());

        Assert.Equal(StreamHeader.ChecksumOf(source), checksum);
        Assert.Equal(StreamHeader.CopyWithChecksum(source, new byte[length], new XxHash3()), checksum);
        Assert.True(source.AsSpan().SequenceEqual(target.AsSpan(3)));
    }
}
