using System.Net;
using System.Net.Sockets;

namespace StdDaq.StreamChild;

/// <summary>
/// A TCP proxy between a StdStreamRecv and its StdStreamSend that flips one byte of the image
/// bytes (frame 2, at <see cref="FlipAt"/>) of chosen messages, counted from 0 per connection. It
/// follows ZMTP 3 in the sender-to-receiver direction: the 64-byte greeting, then frames (flags
/// byte: bit 0 more, bit 1 long size, bit 2 command; a 1- or 8-byte big-endian size; the body).
/// Prints "listening", and "corrupted message K" for each flip. One connection at a time, until SIGTERM.
/// </summary>
public static class CorruptingProxy
{
    /// <summary>The byte of the image that is flipped (xor 0xFF).</summary>
    public const long FlipAt = 4096;

    public static int Run(int listenPort, string host, int port, HashSet<long> corrupt, CancellationToken ct)
    {
        var listener = new TcpListener(IPAddress.Loopback, listenPort);
        listener.Start();
        Console.WriteLine("listening");
        using var stop = ct.Register(listener.Stop);
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = listener.AcceptTcpClient();
            }
            catch (SocketException) when (ct.IsCancellationRequested)
            {
                break;
            }
            using (client)
            using (var upstream = new TcpClient())
            {
                try
                {
                    upstream.Connect(host, port);
                }
                catch (SocketException e)
                {
                    Console.WriteLine($"no sender at {host}:{port}: {e.SocketErrorCode}");
                    continue;
                }
                Console.WriteLine("connected");
                var a = client.GetStream();
                var b = upstream.GetStream();
                var up = Task.Run(() => Pump(a, b, null));
                var down = Task.Run(() => Pump(b, a, new Zmtp(corrupt)));
                Task.WaitAny([up, down], ct);
            }
        }
        return 0;
    }

    private static void Pump(NetworkStream from, NetworkStream to, Zmtp? parser)
    {
        var buffer = new byte[256 * 1024];
        try
        {
            int n;
            while ((n = from.Read(buffer)) > 0)
            {
                parser?.Process(buffer.AsSpan(0, n));
                to.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Follows the frames of one direction of a ZMTP 3 connection and flips the chosen messages' byte.</summary>
    private sealed class Zmtp(HashSet<long> corrupt)
    {
        private enum Phase { Greeting, Flags, Size, Body }

        private Phase _phase = Phase.Greeting;
        private int _left = 64;
        private byte _flags;
        private long _size;
        private long _bodyLeft;
        private long _bodyAt;
        private int _frameInMessage;
        private long _message;

        public void Process(Span<byte> bytes)
        {
            int i = 0;
            while (i < bytes.Length)
            {
                switch (_phase)
                {
                    case Phase.Greeting:
                        int skip = Math.Min(_left, bytes.Length - i);
                        i += skip;
                        _left -= skip;
                        if (_left == 0)
                            _phase = Phase.Flags;
                        break;
                    case Phase.Flags:
                        _flags = bytes[i++];
                        _left = (_flags & 2) != 0 ? 8 : 1;
                        _size = 0;
                        _phase = Phase.Size;
                        break;
                    case Phase.Size:
                        _size = (_size << 8) | bytes[i++];
                        if (--_left == 0)
                        {
                            _bodyLeft = _size;
                            _bodyAt = 0;
                            _phase = Phase.Body;
                            if (_bodyLeft == 0)
                                EndFrame();
                        }
                        break;
                    case Phase.Body:
                        int take = (int)Math.Min(_bodyLeft, bytes.Length - i);
                        bool command = (_flags & 4) != 0;
                        if (!command && _frameInMessage == 1 && corrupt.Contains(_message) && FlipAt >= _bodyAt && FlipAt < _bodyAt + take)
                        {
                            bytes[i + (int)(FlipAt - _bodyAt)] ^= 0xFF;
                            Console.WriteLine($"corrupted message {_message}");
                        }
                        i += take;
                        _bodyAt += take;
                        _bodyLeft -= take;
                        if (_bodyLeft == 0)
                            EndFrame();
                        break;
                }
            }
        }

        private void EndFrame()
        {
            _phase = Phase.Flags;
            if ((_flags & 4) != 0)
                return;
            if ((_flags & 1) != 0)
                _frameInMessage++;
            else
            {
                _frameInMessage = 0;
                _message++;
            }
        }
    }
}
