using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// A libzmq socket (the void* of zmq_socket), closed with zmq_close when released. Calls through
/// <see cref="Zmq"/> hold a reference for their duration, so a socket closed on one thread is never
/// used by a call still running on another: zmq_close waits for the last one.
/// </summary>
public sealed class SafeZmqSocketHandle : SafeHandle
{
    /// <summary>An invalid handle, for the marshaller.</summary>
    public SafeZmqSocketHandle() : base(0, ownsHandle: true)
    {
    }

    /// <inheritdoc/>
    public override bool IsInvalid => handle == 0;

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => Zmq.zmq_close(handle) == 0;
}
