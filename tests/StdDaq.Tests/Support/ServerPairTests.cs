namespace StdDaq.Tests.Support;

/// <summary>The two-server fixture itself: private /dev/shm and /tmp per server, a TCP link between them only.</summary>
public sealed class ServerPairTests
{
    [Fact]
    public void TwoServers_SameNamesApart_TcpBetweenThem_NothingLeftAfter()
    {
        string name = $"stddaq-pair-{Guid.NewGuid():N}";
        string a, b, route;
        using (var servers = new ServerPair())
        {
            (a, b) = (servers.A, servers.B);
            route = servers.AddressB;
            // The same /dev/shm and /tmp names on both, each seeing only its own.
            foreach (var (server, text) in new[] { (servers.A, "on A"), (servers.B, "on B") })
            {
                var w = servers.Exec(server, "sh", ["-c", $"echo '{text}' > /dev/shm/{name} && echo '{text}' > /tmp/{name}"]);
                Assert.True(w.ExitCode == 0, w.Stderr);
            }
            Assert.Equal("on A\non A\n", servers.Exec(servers.A, "cat", [$"/dev/shm/{name}", $"/tmp/{name}"]).Stdout);
            Assert.Equal("on B\non B\n", servers.Exec(servers.B, "cat", [$"/dev/shm/{name}", $"/tmp/{name}"]).Stdout);
            Assert.False(File.Exists($"/dev/shm/{name}") || File.Exists($"/tmp/{name}"), "a server's file is visible on the host");

            // TCP from A to B's address; the host cannot reach it (routed unreachable).
            using var listener = servers.Start(servers.B, "/usr/bin/python3", "-c", """
                import socket, sys
                s = socket.socket(); s.bind((sys.argv[1], 5701)); s.listen(1); print("listening", flush=True)
                c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()
                """, servers.AddressB);
            Assert.Equal("listening", listener.StandardOutput.ReadLine());
            var hello = servers.Exec(servers.A, "/usr/bin/python3", ["-c", """
                import socket, sys
                c = socket.create_connection((sys.argv[1], 5701), timeout=10); c.sendall(b"hello"); print(c.recv(100).decode())
                """, servers.AddressB]);
            Assert.True(hello.ExitCode == 0, hello.Stderr);
            Assert.Equal("HELLO", hello.Stdout.Trim());
            Assert.True(listener.WaitForExit(10_000));
            var fromHost = Programs.RunProcess("/usr/bin/python3", ["-c", """
                import socket, sys
                try:
                    socket.create_connection((sys.argv[1], 5701), timeout=5)
                except OSError as e:
                    print(e.errno)
                """, servers.AddressB]);
            Assert.Equal("113", fromHost.Stdout.Trim()); // EHOSTUNREACH: the route the pair set
        }
        Assert.DoesNotContain(a, Programs.RunProcess("ip", ["netns", "list"]).Stdout);
        Assert.DoesNotContain(b, Programs.RunProcess("ip", ["netns", "list"]).Stdout);
        Assert.DoesNotContain(route[..route.LastIndexOf('.')], Programs.RunProcess("ip", ["route", "show", "type", "unreachable"]).Stdout);
    }
}
