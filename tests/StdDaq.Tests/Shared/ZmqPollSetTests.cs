using System.Diagnostics;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Shared;

public class ZmqPollSetTests
{
    [Fact]
    public void Wait_MessagesOnSomeSockets_OnlyThoseMayHaveOneUntilReadEmpty()
    {
        using var env = new TestEnv();
        const int n = 5;
        var publishers = new List<ZmqSocket>();
        var subscribers = new List<ZmqSocket>();
        try
        {
            for (int i = 0; i < n; i++)
            {
                string endpoint = $"ipc:///tmp/{env.Name}-{i}";
                publishers.Add(ZmqSocket.Publisher(endpoint, seeSubscriptions: true));
                subscribers.Add(ZmqSocket.Subscriber(endpoint, receiveTimeoutMs: 0));
            }
            var message = new byte[16];
            foreach (var p in publishers)
            {
                p.SetInt(Zmq.RCVTIMEO, 5000);
                Assert.True(p.Receive(message) > 0 && message[0] == 1, "subscription arrived");
            }
            var set = new ZmqPollSet(subscribers);
            // At first every socket may have a message; reading each empty settles that.
            Assert.Equal(n, set.Wait(0));
            for (int i = 0; i < n; i++)
                Assert.Equal(-1, set.TryReceive(i, message));
            var sw = Stopwatch.StartNew();
            Assert.Equal(0, set.Wait(50));
            Assert.True(sw.ElapsedMilliseconds >= 40, $"an empty wait returned after {sw.ElapsedMilliseconds} ms");

            for (int k = 0; k < 6; k++)
                Assert.True(publishers[3].TrySend([3, (byte)k]));
            Assert.True(publishers[1].TrySend([1]));
            var ready = new HashSet<int>();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (ready.Count < 2 && DateTime.UtcNow < deadline)
            {
                set.Wait(100);
                for (int i = 0; i < n; i++)
                    if (set.MayHaveMessage(i))
                        ready.Add(i);
            }
            Assert.Equal([1, 3], ready.Order());

            // Four of socket 3's six messages: it still may have some, so a wait does not block.
            for (int k = 0; k < 4; k++)
                Assert.Equal(2, set.TryReceive(3, message));
            Assert.Equal(1, set.TryReceive(1, message));
            Assert.Equal(-1, set.TryReceive(1, message));
            Assert.False(set.MayHaveMessage(1));
            sw.Restart();
            Assert.Equal(1, set.Wait(1000));
            Assert.True(sw.ElapsedMilliseconds < 500, "a socket with messages left does not wait for news");
            Assert.True(set.MayHaveMessage(3));
            Assert.Equal(2, set.TryReceive(3, message));
            Assert.Equal(4, message[1]);
            Assert.Equal(2, set.TryReceive(3, message));
            Assert.Equal(5, message[1]);
            Assert.Equal(-1, set.TryReceive(3, message));
            Assert.Equal(0, set.Wait(0));

            // News after a socket was read empty is seen again.
            Assert.True(publishers[3].TrySend([3, 9]));
            deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (!set.MayHaveMessage(3) && DateTime.UtcNow < deadline)
                set.Wait(100);
            Assert.Equal(2, set.TryReceive(3, message));
            Assert.Equal(9, message[1]);
        }
        finally
        {
            foreach (var s in subscribers.Concat(publishers))
                s.Dispose();
        }
    }

    [Fact]
    public void ZmqSocket_UsedAfterDispose_ObjectDisposedNotANativeCall()
    {
        using var env = new TestEnv();
        var sub = ZmqSocket.Subscriber($"ipc:///tmp/{env.Name}-disposed", receiveTimeoutMs: 0);
        sub.Dispose();
        Assert.True(sub.Handle.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => sub.TryReceive(new byte[8]));
        Assert.Throws<ObjectDisposedException>(() => sub.SetInt(Zmq.RCVTIMEO, 5));
        Assert.Throws<ObjectDisposedException>(() => sub.WaitReadable(TimeSpan.FromMilliseconds(1)));
        sub.Dispose(); // a second time does nothing
    }

    [Fact]
    public async Task ZmqSocket_DisposedWhileAnotherThreadWaits_TheWaitEndsNormally()
    {
        using var env = new TestEnv();
        var sub = ZmqSocket.Subscriber($"ipc:///tmp/{env.Name}-waiting", receiveTimeoutMs: 0);
        using var started = new ManualResetEventSlim();
        var wait = Task.Factory.StartNew(() =>
        {
            started.Set();
            return sub.WaitReadable(TimeSpan.FromMilliseconds(300));
        }, TaskCreationOptions.LongRunning);
        Assert.True(started.Wait(TimeSpan.FromSeconds(10)));
        sub.Dispose();
        // The socket is closed when the wait returns (it held the handle), not under it.
        Assert.False(await wait.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
