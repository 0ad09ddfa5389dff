using StdDaq.Shared.Memory;

namespace StdDaq.Tests.Shared;

public unsafe class AlignedBufferTests
{
    [Theory]
    [InlineData(1000, 64)]
    [InlineData(3, 4096)]
    [InlineData(0, 64)]
    public void New_LengthAndAlignment_ZeroedSpanAtTheBoundary(int length, int alignment)
    {
        using var buffer = new AlignedBuffer<float>(length, alignment);
        var span = buffer.Span;
        Assert.Equal(length, span.Length);
        Assert.Equal(length, buffer.Length);
        Assert.Equal(alignment, buffer.Alignment);
        Assert.True(span.IndexOfAnyExcept(0f) < 0);
        fixed (float* p = span)
            Assert.True(length == 0 || (long)p % alignment == 0, $"0x{(long)p:X} is not at a {alignment}-byte boundary");
    }

    [Fact]
    public void Span_WrittenThenRead_KeepsTheValues()
    {
        using var buffer = new AlignedBuffer<ushort>(70000);
        for (int i = 0; i < buffer.Length; i++)
            buffer.Span[i] = (ushort)i;
        for (int i = 0; i < buffer.Length; i++)
            Assert.Equal((ushort)i, buffer.Span[i]);
    }

    [Fact]
    public void Span_AfterDispose_ThrowsObjectDisposed()
    {
        var buffer = new AlignedBuffer<int>(16);
        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.Span.Length);
        buffer.Dispose(); // a second Dispose does nothing
    }

    [Theory]
    [InlineData(-1, 64)]
    [InlineData(16, 0)]
    [InlineData(16, 48)]
    public void New_BadArguments_ThrowsArgumentOutOfRange(int length, int alignment)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedBuffer<byte>(length, alignment));
    }
}
