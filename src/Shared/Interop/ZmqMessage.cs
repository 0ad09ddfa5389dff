using System.Runtime.InteropServices;

namespace StdDaq.Shared.Interop;

/// <summary>
/// A zmq_msg_t in native memory, made once and reused, and whether it holds content now: the
/// lifetime both <see cref="ZmqOutMessage"/> and <see cref="ZmqInMessage"/> share.
/// </summary>
public abstract unsafe class ZmqMessage : IDisposable
{
    /// <summary>The zmq_msg_t; null once disposed.</summary>
    private protected void* Msg = NativeMemory.AlignedAlloc(Zmq.MSG_T_SIZE, 8);
    /// <summary>The zmq_msg_t is initialised and holds content that <see cref="Close"/> releases.</summary>
    private protected bool Holds;

    /// <summary>Releases the content, if the message holds some.</summary>
    public void Close()
    {
        if (Holds)
            Zmq.zmq_msg_close(Msg);
        Holds = false;
    }

    /// <summary>Releases the content and the zmq_msg_t.</summary>
    public void Dispose()
    {
        if (Msg == null)
            return;
        Close();
        NativeMemory.AlignedFree(Msg);
        Msg = null;
        GC.SuppressFinalize(this);
    }
}
