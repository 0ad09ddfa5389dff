using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Shared;

public class ZmqMonitorTests
{
    [Fact]
    public void WaitFor_SubscriberMadeBeforeThePublisherBinds_HandshakeSeenOnceItBindsAndTheSubscriptionFollows()
    {
        using var env = new TestEnv();
        string endpoint = $"ipc:///tmp/{env.Name}-monitored";
        using var sub = ZmqSocket.Subscriber(endpoint, receiveTimeoutMs: 0);
        ZmqSocket? pub = null;
        try
        {
            using (var monitor = new ZmqMonitor(sub, Zmq.EVENT_HANDSHAKE_SUCCEEDED))
            {
                // Nothing to connect to yet: the wait ends at its timeout.
                Assert.False(monitor.WaitFor(Zmq.EVENT_HANDSHAKE_SUCCEEDED, TimeSpan.FromMilliseconds(50)));
                pub = ZmqSocket.Publisher(endpoint, seeSubscriptions: true);
                Assert.True(monitor.WaitFor(Zmq.EVENT_HANDSHAKE_SUCCEEDED, TimeSpan.FromSeconds(10)), "no handshake after the bind");
            }
            // The XPUB sees the subscription that the handshake let through; what it sends now arrives.
            pub.SetInt(Zmq.RCVTIMEO, 10_000);
            var message = new byte[16];
            Assert.True(pub.Receive(message) == 1 && message[0] == 1, "no subscription after the handshake");
            Assert.True(pub.TrySend([42]));
            Assert.True(sub.WaitReadable(TimeSpan.FromSeconds(10)));
            Assert.Equal(1, sub.TryReceive(message));
            Assert.Equal(42, message[0]);
        }
        finally
        {
            pub?.Dispose();
        }
    }
}
