using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using StdDaq.Shared.Config;
using StdDaq.Shared.Interop;

namespace StdDaq.Cli.Sim;

/// <summary>
/// Replays UDP capture files (records of a u64 little-endian length and that many datagram
/// bytes, one file per port named &lt;port&gt;.dat) to their ports, paced frame by frame.
/// Files not named after a port go to start_udp_port + their index in name order.
/// </summary>
public sealed class CaptureReplay : IDisposable
{
    private readonly List<(int Port, NativeBuffer Data, List<(int Offset, int Length)> Datagrams)> _streams = new();
    private readonly int _packetsPerFrame;
    private readonly SimOptions _options;

    public CaptureReplay(DetectorConfig config, SimOptions options)
    {
        _options = options;
        _packetsPerFrame = config.Module.PacketsPerFrame;
        string dir = options.Replay!;
        if (!Directory.Exists(dir))
            throw new IOException($"replay directory '{dir}' does not exist");
        var files = Directory.GetFiles(dir, "*.dat").Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
            throw new IOException($"replay directory '{dir}' has no *.dat capture files");
        for (int i = 0; i < files.Count; i++)
        {
            byte[] bytes = File.ReadAllBytes(files[i]);
            int port = int.TryParse(Path.GetFileNameWithoutExtension(files[i]), out int p) && p is > 0 and < 65536
                ? p : config.StartUdpPort + i;
            var data = new NativeBuffer(bytes.Length);
            bytes.CopyTo(data.Span);
            var datagrams = new List<(int, int)>();
            int off = 0;
            while (off < bytes.Length)
            {
                if (off + 8 > bytes.Length)
                    throw new IOException($"{files[i]}: truncated record length at byte {off}");
                long len = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(off));
                if (len < 0 || len > 65507 || off + 8 + len > bytes.Length)
                    throw new IOException($"{files[i]}: bad record length {len} at byte {off}");
                datagrams.Add((off + 8, (int)len));
                off += 8 + (int)len;
            }
            _streams.Add((port, data, datagrams));
        }
    }

    public SimReport Run(CancellationToken ct)
    {
        var report = new SimReport();
        using var socket = UdpSocket.Create();
        socket.RequestSendBuffer(64L << 20);
        using var batch = new SendBatch(64, IPAddress.Parse(_options.Host));
        var sw = Stopwatch.StartNew();
        double period = _options.Rate > 0 ? 1.0 / _options.Rate : 0;
        int maxFrames = _streams.Max(s => (s.Datagrams.Count + _packetsPerFrame - 1) / _packetsPerFrame);
        for (int f = 0; f < maxFrames && !ct.IsCancellationRequested; f++)
        {
            while (sw.Elapsed.TotalSeconds < f * period)
                Thread.Sleep(1);
            foreach (var (port, data, datagrams) in _streams)
            {
                int end = Math.Min(datagrams.Count, (f + 1) * _packetsPerFrame);
                if (f * _packetsPerFrame < end)
                    report.Frames++;
                for (int j = f * _packetsPerFrame; j < end; j++)
                {
                    if (batch.Full)
                        report.Refused += batch.Flush(socket);
                    var (off, len) = datagrams[j];
                    batch.Add(port, ReadOnlySpan<byte>.Empty, data, off, len);
                    report.Datagrams++;
                    report.Packets++;
                    report.Bytes += len;
                }
            }
            report.Refused += batch.Flush(socket);
        }
        report.ElapsedSeconds = sw.Elapsed.TotalSeconds;
        return report;
    }

    public void Dispose()
    {
        foreach (var s in _streams)
            s.Data.Dispose();
    }
}
