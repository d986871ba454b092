namespace FormalChat.Transport;

/// <summary>
/// One connection carrying newline-delimited frames. Sending queues a frame and never blocks; the
/// queue is bounded in bytes, and a reader too slow to keep it below the bound is disconnected.
/// Reading hands over one frame at a time and reads the next only once the last one is handed
/// over, so a slow consumer slows the sender through the transport. Every way the connection can
/// end (the other side closed it, an oversized frame, a failed write, a slow reader, a close,
/// disposal) ends it once, with one reason. Disposal is idempotent.
/// </summary>
public interface IFrameConnection : IAsyncDisposable
{
    /// <summary>The other side's address, kept from the start: a closed socket no longer says.</summary>
    string Remote { get; }

    /// <summary>Why the connection ended; null while it is open.</summary>
    string? CloseReason { get; }

    /// <summary>Completes with the reason once the connection has ended, whoever ended it.</summary>
    Task<string> Closed { get; }

    /// <summary>Bytes queued and not yet handed to the transport.</summary>
    long QueuedBytes { get; }

    /// <summary>Queues a whole frame (newline included; see <see cref="Frames.Of"/>). False when the
    /// connection is closed, or when it now closes because the frame would pass the byte bound.</summary>
    bool TrySend(ReadOnlyMemory<byte> frame);

    /// <summary>Queues a whole frame, waiting while the queue is at its bound instead of closing:
    /// for a sender that would rather slow down than be disconnected (a flood in a test). False
    /// when the connection is closed; cancelling the wait throws OperationCanceledException.</summary>
    ValueTask<bool> SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancel = default);

    /// <summary>
    /// Reads frames until the connection ends or <paramref name="onFrame"/> returns false (after it
    /// has queued its own error reply), handing each one over as its bytes without the newline or a
    /// carriage return before it, valid only until <paramref name="onFrame"/> returns. A frame longer
    /// than <paramref name="maxFrameBytes"/> stops the reading: <paramref name="onOversized"/> hears
    /// its length first. Returns why the reading stopped; the connection stays open until the
    /// caller closes it (with that reason, or after sending an explanation).
    /// <paramref name="onReadEnd"/>, when given, runs once the frames that one read of the transport
    /// completed have all been handed over, before the next read; also when a refused or oversized
    /// frame stops the reading, after the frames before it. A reader that gathers a read's frames
    /// hands them on there together (one write into the node's inbox per read, not per frame).
    /// </summary>
    Task<string> ReadFramesAsync(int maxFrameBytes, Func<ReadOnlyMemory<byte>, ValueTask<bool>> onFrame, Action<int>? onOversized = null,
        Func<ValueTask>? onReadEnd = null);

    /// <summary>Sends what is queued (up to a short deadline), ends the sending side so the other
    /// side reads every frame before the end, then closes with <paramref name="reason"/>.</summary>
    Task CloseAfterSendingAsync(string reason);

    /// <summary>Ends the connection at once, dropping what is queued; only the first reason counts.</summary>
    Task CloseAsync(string reason);
}
