using StdDaq.Assembler.Conversions;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Assembler;

public unsafe class GigafrostUnpackTests
{
    private const ushort Sentinel = 0xBEEF; // above 12 bits, so no unpacked value equals it

    public static TheoryData<int> Lengths()
    {
        var data = new TheoryData<int>();
        for (int n = 0; n <= 400; n += 2)
            data.Add(n);
        foreach (int n in new[] { 480, 958, 960, 962, 1008, 1024, 2016, 2046, 2048, 4000, 4094 })
            data.Add(n);
        return data;
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Unpack12_RandomBytesAtEndOfPage_MatchesScalarAndStaysInBounds(int pixels)
    {
        int bytes = pixels / 2 * 3;
        using var pages = new GuardedPages(bytes);
        var rng = new Random(pixels);
        // The source ends where the trailing guard page starts, then starts where the leading one
        // ends: a read outside it faults and takes the test run down.
        foreach (nint at in new[] { (nint)(pages.End - bytes), (nint)pages.Start })
        {
            var src = new Span<byte>((byte*)at, bytes);
            rng.NextBytes(src);
            var expected = new ushort[pixels];
            GigafrostConverter.Unpack12Scalar(src, expected, pixels);
            var actual = new ushort[pixels + 2];
            actual.AsSpan().Fill(Sentinel);
            GigafrostConverter.Unpack12(src, actual.AsSpan(1), pixels); // one more than needed: the last sentinel must stay
            Assert.Equal(Sentinel, actual[0]);
            Assert.Equal(Sentinel, actual[pixels + 1]);
            Assert.Equal(expected, actual[1..(pixels + 1)]);
        }
    }

    [Fact]
    public void Unpack12_HandPackedPair_GivesBothPixels()
    {
        // a = 0xABC, b = 0x123: [0xBC, 0x0A | 0x3 << 4, 0x12]; 16 pixels so the vector path runs
        byte[] packed =
        [
            0xBC, 0x3A, 0x12, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x00, 0xF0,
            0x00, 0x18, 0x00, 0xFF, 0xF0, 0xF0, 0x55, 0xA5, 0xAA, 0x00, 0x00, 0x80,
        ];
        ushort[] expected = [0xABC, 0x123, 0xFFF, 0xFFF, 0x000, 0x000, 0x001, 0xF00, 0x800, 0x001, 0x0FF, 0xF0F, 0x555, 0xAAA, 0x000, 0x800];
        Assert.Equal(expected, Unpack(packed, expected.Length, &GigafrostConverter.Unpack12Scalar));
        Assert.Equal(expected, Unpack(packed, expected.Length, &GigafrostConverter.Unpack12));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(16)]
    [InlineData(22)]
    [InlineData(240)]
    [InlineData(1008)]
    public void Unpack12_PackedRamp_GivesTheRampBack(int pixels)
    {
        var values = Enumerable.Range(0, pixels).Select(i => (ushort)((i * 0x9E5 + 0x7A3) & 0xFFF)).ToArray();
        var packed = new byte[pixels / 2 * 3];
        for (int j = 0; j < pixels / 2; j++)
        {
            int a = values[2 * j], b = values[2 * j + 1];
            packed[3 * j] = (byte)a;
            packed[3 * j + 1] = (byte)((a >> 8) | (b & 0xF) << 4);
            packed[3 * j + 2] = (byte)(b >> 4);
        }
        Assert.Equal(values, Unpack(packed, pixels, &GigafrostConverter.Unpack12));
        Assert.Equal(values, Unpack(packed, pixels, &GigafrostConverter.Unpack12Scalar));
    }

    [Theory]
    [InlineData(32, 47, 32)]  // one packed byte short
    [InlineData(32, 48, 31)]  // one value short
    [InlineData(2016, 3023, 2016)]
    [InlineData(2016, 3024, 2015)]
    public void Unpack12_SpanTooShort_ThrowsArgumentException(int pixels, int srcBytes, int dstValues)
    {
        var src = new byte[srcBytes];
        var dst = new ushort[dstValues];
        Assert.Throws<ArgumentException>(() => GigafrostConverter.Unpack12(src, dst, pixels));
        Assert.Throws<ArgumentException>(() => GigafrostConverter.Unpack12Scalar(src, dst, pixels));
    }

    private static ushort[] Unpack(byte[] packed, int pixels, delegate*<ReadOnlySpan<byte>, Span<ushort>, int, void> unpack)
    {
        var dst = new ushort[pixels];
        unpack(packed, dst, pixels);
        return dst;
    }
}
