using StdDaq.Shared.Config;

namespace StdDaq.Tests.Metrics;

/// <summary>The config's <c>metrics</c> ports and how a program's port follows from them and from <c>--metrics-port</c>.</summary>
public sealed class MetricsConfigTests
{
    private static string Config(string metrics, int modules = 2) =>
        "{\"detector_name\":\"m\",\"detector_type\":\"jungfrau-raw\",\"n_modules\":" + modules + ",\"bit_depth\":16,"
        + "\"image_pixel_height\":" + (512 * modules) + ",\"image_pixel_width\":1024,\"start_udp_port\":50000,"
        + "\"module_positions\":{" + string.Join(",", Enumerable.Range(0, modules).Select(m => $"\"{m}\":[0,{m * 512},1023,{m * 512 + 511}]")) + "}"
        + metrics + "}";

    [Fact]
    public void Parse_NoMetricsObject_EveryRoleOff()
    {
        var c = DetectorConfigLoader.Parse(Config(""));
        Assert.Equal(new MetricsConfig(), c.Metrics);
        Assert.Equal(0, MetricsConfig.Port(null, c.Metrics.UdpRecvPort, 1, "udp_recv_port"));
    }

    [Fact]
    public void Port_RolePortsAndOption_ReceiversAndSharesCountUpAndTheOptionWins()
    {
        var c = DetectorConfigLoader.Parse(Config(",\"metrics\":{\"udp_recv_port\":9300,\"assembler_port\":9290,\"stream_send_port\":9293}"));
        Assert.Equal(9301, MetricsConfig.Port(null, c.Metrics.UdpRecvPort, 1, "udp_recv_port"));
        Assert.Equal(9290, MetricsConfig.Port(null, c.Metrics.AssemblerPort, 0, "assembler_port"));
        Assert.Equal(9295, MetricsConfig.Port(null, c.Metrics.StreamSendPort, 2, "stream_send_port"));
        Assert.Equal(0, MetricsConfig.Port(null, c.Metrics.WriterPort, 0, "writer_port"));
        Assert.Equal(9999, MetricsConfig.Port(9999, c.Metrics.AssemblerPort, 0, "assembler_port"));
        Assert.Equal(0, MetricsConfig.Port(0, c.Metrics.AssemblerPort, 0, "assembler_port"));
        var e = Assert.Throws<ConfigException>(() => MetricsConfig.Port(null, 65535, 3, "stream_recv_port"));
        Assert.Equal("key 'metrics.stream_recv_port': 65535 + 3 is past port 65535", e.Message);
    }

    [Theory]
    [InlineData(",\"metrics\":{\"udp_recv_port\":65535}", "key 'metrics.udp_recv_port': 65535 is out of range 0..65534 (2 ports from it)")]
    [InlineData(",\"metrics\":{\"writer_port\":-1}", "key 'metrics.writer_port': -1 is out of range 0..65535")]
    [InlineData(",\"metrics\":{\"writer_port\":1.5}", "key 'metrics.writer_port': must be an integer")]
    [InlineData(",\"metrics\":[]", "key 'metrics': must be an object of ports")]
    public void Parse_BadMetrics_NamesTheKey(string metrics, string problem)
    {
        var e = Assert.Throws<ConfigException>(() => DetectorConfigLoader.Parse(Config(metrics)));
        Assert.StartsWith(problem, e.Message);
    }

    [Fact]
    public void Parse_UnknownMetricsKey_IsAWarning()
    {
        var warnings = new List<string>();
        DetectorConfigLoader.Parse(Config(",\"metrics\":{\"assembler_prot\":9290}"), warnings.Add);
        Assert.Contains("config: unknown key 'metrics.assembler_prot' ignored", warnings);
    }
}
