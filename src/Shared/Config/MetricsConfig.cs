namespace StdDaq.Shared.Config;

/// <summary>
/// The config's optional <c>metrics</c> object: the HTTP port on which each role serves Prometheus
/// <c>/metrics</c> and JSON <c>/stats</c>. Every port is 0 (off) unless named, so services that share
/// a host (a source and a replica server on one machine, the tests' hundreds of processes) never
/// collide on a default; a deployment names one port per role in the detector's config, and roles
/// of which one host runs several count up from theirs: receiver m on <see cref="UdpRecvPort"/> + m,
/// stream sender and receiver of share (or part) i on their port + i. A program's
/// <c>--metrics-port</c> overrides its role's port.
/// </summary>
public sealed record MetricsConfig
{
    /// <summary>The keys of the <c>metrics</c> object.</summary>
    public static readonly string[] Keys =
        ["udp_recv_port", "assembler_port", "writer_port", "writer_agent_port", "stream_send_port", "stream_recv_port"];

    /// <summary>udp_recv_port: StdUdpRecv of module m serves on this + m; 0 = off.</summary>
    public int UdpRecvPort { get; init; }
    /// <summary>assembler_port: StdAssembler; 0 = off.</summary>
    public int AssemblerPort { get; init; }
    /// <summary>writer_port: StdH5Writer; 0 = off.</summary>
    public int WriterPort { get; init; }
    /// <summary>writer_agent_port: WriterAgent; 0 = off.</summary>
    public int WriterAgentPort { get; init; }
    /// <summary>stream_send_port: StdStreamSend of share (or part) i serves on this + i; 0 = off.</summary>
    public int StreamSendPort { get; init; }
    /// <summary>stream_recv_port: StdStreamRecv of share (or part) i serves on this + i; 0 = off.</summary>
    public int StreamRecvPort { get; init; }

    /// <summary>
    /// A program's metrics port: <paramref name="option"/> (its <c>--metrics-port</c>) when given,
    /// else <paramref name="rolePort"/> + <paramref name="index"/> when the role's port is set, else 0 (off).
    /// </summary>
    public static int Port(int? option, int rolePort, int index, string key)
    {
        if (option is { } given)
            return given;
        if (rolePort == 0)
            return 0;
        int port = rolePort + index;
        return port <= 65535 ? port : throw new ConfigException($"key 'metrics.{key}': {rolePort} + {index} is past port 65535");
    }
}
