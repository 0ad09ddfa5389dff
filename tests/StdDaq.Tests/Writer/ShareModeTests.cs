using StdDaq.Agent;
using StdDaq.Shared.Streams;

namespace StdDaq.Tests.Writer;

/// <summary>Which ids of a request each share writes, and where.</summary>
public sealed class ShareModeTests
{
    [Theory]
    [InlineData(1000UL, 41L, 2)]
    [InlineData(1001UL, 41L, 2)]
    [InlineData(7UL, 10L, 3)]
    [InlineData(0UL, 1L, 4)]
    [InlineData(5UL, 3L, 4)]
    [InlineData(123456789UL, 1000L, 7)]
    public void FirstAndCount_EveryIdOfTheRequestInExactlyOneShare(ulong first, long n, int shares)
    {
        var seen = new List<ulong>();
        for (int i = 0; i < shares; i++)
        {
            var share = new ImageShare(i, shares);
            ulong f = ShareMode.FirstOf(first, share);
            Assert.True(share.Includes(f));
            Assert.InRange(f, first, first + (ulong)shares - 1);
            long count = ShareMode.CountOf(first, n, share);
            for (long k = 0; k < count; k++)
                seen.Add(f + (ulong)(k * shares));
        }
        // Brute force: the ids first .. first + n - 1, each once.
        Assert.Equal(Enumerable.Range(0, (int)n).Select(k => first + (ulong)k), seen.Order());
    }

    [Fact]
    public void FileOf_NextToTheRequestedFile()
    {
        Assert.Equal("/data/p1/run_share0of2.h5", ShareMode.FileOf("/data/p1/run.h5", new ImageShare(0, 2)));
        Assert.Equal("/data/p1/scan.7_share11of16.nxs", ShareMode.FileOf("/data/p1/scan.7.nxs", new ImageShare(11, 16)));
        Assert.Equal("/data/run_share1of3", ShareMode.FileOf("/data/run", new ImageShare(1, 3)));
    }
}
