using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StdDaq.Shared.Interop;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.UdpRecv;

[Collection("serial")]
public class StdUdpRecvProcessTests
{
    private static string WriteConfig(TestEnv env, int port)
    {
        string path = Path.Combine(env.Dir, "det.json");
        File.WriteAllText(path, env.ConfigJson("jungfrau-raw", 1, 16, 1024, 512, new() { [0] = [0, 0, 1023, 511] }, port, slots: 8));
        env.Ring("0");
        return path;
    }

    [Fact]
    public void StdUdpRecv_PortInUse_ExitsWithCode1NamingThePort()
    {
        using var env = new TestEnv();
        int port = TestEnv.FreeUdpPorts(1);
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        taken.Bind(new IPEndPoint(IPAddress.Any, port));
        var r = Programs.Run("StdUdpRecv", [WriteConfig(env, port), "0"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"bind(udp 0.0.0.0:{port}) failed: Address already in use", r.Stderr);
    }

    [Fact]
    public async Task StdUdpRecv_Sigterm_StopsCleanlyWithTotals()
    {
        using var env = new TestEnv();
        int port = TestEnv.FreeUdpPorts(1);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Programs.Dll("StdUdpRecv"));
        psi.ArgumentList.Add(WriteConfig(env, port));
        psi.ArgumentList.Add("0");
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string? line;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((line = p.StandardOutput.ReadLine()) != null && !line.Contains($"udp port {port}") && DateTime.UtcNow < deadline)
        {
        }
        Assert.NotNull(line);
        Assert.True(File.Exists($"/dev/shm/{env.Name}-0"));
        Assert.Equal(0, Libc.kill(p.Id, 15));
        string rest = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(10_000), "StdUdpRecv did not stop on SIGTERM");
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("stopped; totals: packets=0", rest);
        Assert.Equal("", await stderr);
    }
}
