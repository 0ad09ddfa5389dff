using BenchmarkDotNet.Attributes;
using StdDaq.Shared.Streams;

namespace StdDaq.Benchmarks.Assembler;

/// <summary>
/// What the assembler pays per wake-up to find notices among one SUB socket per module (ipc,
/// subscribed to a PUB per module as with the receivers): a zmq_poll over all sockets with none
/// ready, and a zmq_poll that finds one notice followed by receiving it. The first one also is
/// the price of every idle wait; the second one is paid per notice at worst (when notices come
/// one by one), less when several modules' notices are in at once.
/// </summary>
[MemoryDiagnoser]
public class NoticePollBenchmarks
{
    private ZmqSocket[] _publishers = [];
    private ZmqSocket[] _subscribers = [];
    private ZmqPollSet _poll = null!;
    private readonly byte[] _notice = new byte[ModuleFrameNotice.Size];
    private readonly byte[] _buffer = new byte[ModuleFrameNotice.Size + 1];
    private string _name = "";
    private int _next;

    [Params(4, 72, 128, 256)]
    public int Sockets { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _name = $"pollbench{Environment.ProcessId}";
        _publishers = new ZmqSocket[Sockets];
        _subscribers = new ZmqSocket[Sockets];
        for (int m = 0; m < Sockets; m++)
        {
            _publishers[m] = ZmqSocket.Publisher($"ipc:///tmp/{_name}-{m}", seeSubscriptions: true);
            _subscribers[m] = ZmqSocket.Subscriber($"ipc:///tmp/{_name}-{m}", receiveTimeoutMs: 0);
        }
        // Wait until every subscription reached its publisher (an XPUB sees it), so sends are not dropped.
        var message = new byte[16];
        foreach (var p in _publishers)
        {
            p.SetInt(StdDaq.Shared.Interop.Zmq.RCVTIMEO, 5000);
            if (p.Receive(message) <= 0 || message[0] != 1)
                throw new InvalidOperationException($"no subscriber on {p.Endpoint}");
        }
        _poll = new ZmqPollSet(_subscribers);
    }

    [Benchmark]
    public int PollNothingReady() => _poll.Poll(0);

    [Benchmark]
    public int PollAndReceiveOneNotice()
    {
        int m = _next;
        _next = m + 1 == Sockets ? 0 : m + 1;
        _publishers[m].TrySend(_notice);
        // The notice crosses the ipc socket through libzmq's I/O thread: poll until it is in.
        while (_poll.Poll(1) == 0)
        {
        }
        return _subscribers[m].TryReceive(_buffer);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var s in _subscribers)
            s.Dispose();
        foreach (var p in _publishers)
            p.Dispose();
        foreach (var f in Directory.GetFiles("/tmp", $"{_name}-*"))
            File.Delete(f);
    }
}
