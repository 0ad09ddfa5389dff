using StdDaq.Shared.Hosting;
using StdDaq.Shared.Streams;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Shared;

public class RoleLockTests
{
    [Fact]
    public void Acquire_RoleAlreadyHeld_FailsNamingTheHolder()
    {
        using var env = new TestEnv();
        using var first = RoleLock.Acquire(env.Name + "-role", "StdAssembler of detector 't'");
        var e = Assert.Throws<RoleBusyException>(() => RoleLock.Acquire(env.Name + "-role", "StdAssembler of detector 't'"));
        Assert.Equal(Environment.ProcessId, e.HolderPid);
        Assert.Contains($"StdAssembler of detector 't' is already running as pid {Environment.ProcessId}", e.Message);
        Assert.Contains(first.Path, e.Message);
        Assert.True(RoleLock.IsHeld(first.Path));
    }

    [Fact]
    public void Dispose_RemovesTheFileAndFreesTheRole()
    {
        using var env = new TestEnv();
        string path;
        using (var role = RoleLock.Acquire(env.Name + "-role", "r"))
        {
            path = role.Path;
            Assert.Equal((Environment.ProcessId, "r"), RoleLock.ReadHolder(path));
        }
        Assert.False(File.Exists(path));
        Assert.False(RoleLock.IsHeld(path));
        using var again = RoleLock.Acquire(env.Name + "-role", "r");
        Assert.True(File.Exists(path));
    }

    [Fact]
    public void Acquire_LockFileOfADeadHolder_IsTakenOver()
    {
        using var env = new TestEnv();
        string path = RoleLock.PathFor(env.Name + "-role");
        File.WriteAllText(path, "999999\nsomething that died\n");
        try
        {
            using var role = RoleLock.Acquire(env.Name + "-role", "r");
            Assert.Equal((Environment.ProcessId, "r"), RoleLock.ReadHolder(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BoundIpcSocket_Disposed_RemovesItsSocketFile()
    {
        using var env = new TestEnv();
        string endpoint = $"ipc:///tmp/std-daq-{env.Name}-endpoint";
        var pub = ZmqSocket.Publisher(endpoint);
        Assert.True(ZmqSocket.IsListening(endpoint));
        pub.Dispose();
        Assert.False(File.Exists(endpoint["ipc://".Length..]));
        Assert.False(ZmqSocket.IsListening(endpoint));
    }
}
