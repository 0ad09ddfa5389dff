using BenchmarkDotNet.Attributes;
using StdDaq.Shared.Interop;
using StdDaq.Shared.Streams;

namespace StdDaq.Benchmarks.Assembler;

/// <summary>
/// What the assembler pays per wake-up to find notices among one SUB socket per module (ipc,
/// subscribed to a PUB per module as with the receivers): a look with none ready, and a wait that
/// finds one notice followed by receiving it (paid per notice at worst, when notices come one by
/// one). <see cref="ZmqPollSet"/> (one poll(2) over the sockets' ZMQ_FDs) against zmq_poll over
/// the same sockets (which asks each socket for its events).
/// </summary>
[MemoryDiagnoser]
public unsafe class NoticePollBenchmarks
{
    private ZmqSocket[] _publishers = [];
    private ZmqSocket[] _subscribers = [];
    private ZmqPollSet _poll = null!;
    private Zmq.PollItem[] _items = [];
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
            p.SetInt(Zmq.RCVTIMEO, 5000);
            if (p.Receive(message) <= 0 || message[0] != 1)
                throw new InvalidOperationException($"no subscriber on {p.Endpoint}");
        }
        _poll = new ZmqPollSet(_subscribers);
        _poll.Wait(0);
        for (int m = 0; m < Sockets; m++)
            _poll.TryReceive(m, _buffer); // reads each socket empty: nothing may be there now
        _items = GC.AllocateArray<Zmq.PollItem>(Sockets, pinned: true);
        for (int m = 0; m < Sockets; m++)
            _items[m] = new Zmq.PollItem { socket = _subscribers[m].Handle.DangerousGetHandle(), events = Zmq.POLLIN };
    }

    [Benchmark(Baseline = true)]
    public int ZmqPollNothingReady() => ZmqPoll(0);

    [Benchmark]
    public int PollSetNothingReady() => _poll.Wait(0);

    [Benchmark]
    public int ZmqPollAndReceiveOneNotice()
    {
        int m = Send();
        // The notice crosses the ipc socket through libzmq's I/O thread: wait until it is in.
        while (ZmqPoll(1) == 0)
        {
        }
        return _subscribers[m].TryReceive(_buffer);
    }

    [Benchmark]
    public int PollSetAndReceiveOneNotice()
    {
        int m = Send();
        while (true)
        {
            _poll.Wait(1);
            if (_poll.MayHaveMessage(m) && _poll.TryReceive(m, _buffer) > 0)
            {
                _poll.TryReceive(m, _buffer); // finds it empty, as the assembler's round does
                return m;
            }
        }
    }

    private int Send()
    {
        int m = _next;
        _next = m + 1 == Sockets ? 0 : m + 1;
        _publishers[m].TrySend(_notice);
        return m;
    }

    private int ZmqPoll(int timeoutMs)
    {
        fixed (Zmq.PollItem* items = _items)
            return Zmq.zmq_poll(items, _items.Length, new System.Runtime.InteropServices.CLong(timeoutMs));
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
