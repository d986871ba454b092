using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;

namespace FormalChat.Transport;

/// <summary>
/// The framed connection (see <see cref="IFrameConnection"/>) over pipes: a read loop that finds
/// frames in the pipe's own buffers, and a write queue bounded in bytes, drained by its own task
/// in batches (one flush for every frame that is ready). A frame sent to many connections is one
/// buffer: queuing it copies nothing, and it is copied once per connection into the pipe.
/// A connection opened with sendsNow hands a frame to the socket at once, on the sender's thread,
/// while nothing waits in its queue: no thread-pool hop between the node's loop and the socket
/// (what the socket does not take at once is queued, and the write loop sends it).
/// </summary>
public sealed class FramedConnection : IFrameConnection
{
    private static readonly TimeSpan SendingDeadline = TimeSpan.FromSeconds(2);

    /// <summary>What the write loop copies into the pipe and flushes at most at a time.</summary>
    private const int MaxBatchBytes = 256 * 1024;
    private static readonly TimeSpan OtherSideClosingDeadline = TimeSpan.FromSeconds(1);

    private readonly ByteTransport _transport;
    private readonly Channel<ReadOnlyMemory<byte>> _outbound;
    private readonly long _maxQueuedBytes;
    private readonly ByteGauge? _sharedGauge;
    private readonly Task _writer;
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _readingEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _queuedBytes;
    /// <summary>Senders waiting for room in the queue (SendAsync); null while none waits, so the
    /// write loop pays nothing for them.</summary>
    private TaskCompletionSource? _roomMade;
    private int _closedFlag;
    private int _readingStarted;
    /// <summary>Held to queue a frame or send it at once, and by the write loop to start and end a
    /// batch, when the transport sends at once: a frame sent at once never overtakes one queued.</summary>
    private readonly object _sendingTurn = new();
    /// <summary>The write loop has taken frames and not yet flushed them (under _sendingTurn).</summary>
    private bool _writeLoopSending;
    /// <summary>CloseAfterSendingAsync has begun: no frame is taken any more (under _sendingTurn).</summary>
    private bool _sendingEnded;

    /// <param name="maxQueuedBytes">Bytes waiting to be sent beyond which the other side counts as
    /// too slow and the connection is closed.</param>
    /// <param name="sharedGauge">Where the bytes waiting on this connection are also added up with
    /// those of its siblings, so their owner can tell it is falling behind.</param>
    internal FramedConnection(ByteTransport transport, string remote, long maxQueuedBytes, ByteGauge? sharedGauge)
    {
        _transport = transport;
        Remote = remote;
        _maxQueuedBytes = maxQueuedBytes;
        _sharedGauge = sharedGauge;
        // Not single-reader: closing empties the queue while the write loop may still be reading it.
        _outbound = Channel.CreateUnbounded<ReadOnlyMemory<byte>>();
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>Over a connected TCP socket, which the connection owns from now on (NoDelay is set).
    /// With <paramref name="sendsNow"/>, a frame sent while nothing is queued goes to the socket on
    /// the sender's thread (the socket turns non-blocking): for a node's loop, whose replies then
    /// wait for no thread-pool thread.</summary>
    public static FramedConnection Open(Socket socket, long maxQueuedBytes, ByteGauge? sharedGauge = null, bool sendsNow = false) =>
        new(new SocketTransport(socket, sendsNow), RemoteOf(socket), maxQueuedBytes, sharedGauge);

    /// <summary>Over any connected stream (an SslStream, say), which the connection owns from now on.</summary>
    public static FramedConnection Open(Stream stream, string remote, long maxQueuedBytes, ByteGauge? sharedGauge = null) =>
        new(new StreamTransport(stream), remote, maxQueuedBytes, sharedGauge);

    public string Remote { get; }

    public string? CloseReason { get; private set; }

    public Task<string> Closed => _closed.Task;

    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    public bool TrySend(ReadOnlyMemory<byte> frame)
    {
        if (Volatile.Read(ref _closedFlag) != 0) return false;
        if (Interlocked.Read(ref _queuedBytes) + frame.Length > _maxQueuedBytes)
        {
            _ = CloseAsync($"{Frames.TooSlowPrefix}: more than {_maxQueuedBytes} bytes were waiting to be sent");
            return false;
        }
        return Enqueue(frame);
    }

    // Sent at once when the transport can and nothing waits before it; otherwise queued.
    private bool Enqueue(ReadOnlyMemory<byte> frame)
    {
        if (!_transport.SendsNow) return Queue(frame);
        lock (_sendingTurn)
        {
            if (_sendingEnded) return false;
            if (_writeLoopSending || Interlocked.Read(ref _queuedBytes) != 0) return Queue(frame);
            var sent = _transport.SendNow(frame.Span);
            if (sent == frame.Length) return true;
            // The rest waits for the write loop, first in the queue: nothing can queue meanwhile.
            if (sent >= 0) return Queue(frame[sent..]);
        }
        _ = CloseAsync("connection lost while sending");
        return false;
    }

    // A frame in a SharedFrameBuffer is held while it waits here: until the write loop has copied
    // it into the pipe, or the close has dropped it.
    private bool Queue(ReadOnlyMemory<byte> frame)
    {
        SharedFrameBuffer.Retain(frame);
        Count(frame.Length);
        if (_outbound.Writer.TryWrite(frame)) return true;
        Count(-frame.Length);
        SharedFrameBuffer.Release(frame);
        return false;
    }

    private void Dequeued(ReadOnlyMemory<byte> frame)
    {
        Count(-frame.Length);
        SharedFrameBuffer.Release(frame);
    }

    public async ValueTask<bool> SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancel = default)
    {
        while (true)
        {
            if (Volatile.Read(ref _closedFlag) != 0) return false;
            if (HasRoomFor(frame.Length)) return Enqueue(frame);
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var roomMade = Interlocked.CompareExchange(ref _roomMade, waiter, null) ?? waiter;
            // Checked again once registered: the write loop takes bytes off before it looks for
            // waiters, so either this sees the room or the write loop sees this waiter.
            if (HasRoomFor(frame.Length) || Volatile.Read(ref _closedFlag) != 0) continue;
            await roomMade.Task.WaitAsync(cancel).ConfigureAwait(false);
        }
    }

    // A frame larger than the whole bound still goes out, alone.
    private bool HasRoomFor(int frameBytes)
    {
        var queued = Interlocked.Read(ref _queuedBytes);
        return queued == 0 || queued + frameBytes <= _maxQueuedBytes;
    }

    private void WakeSenders() => Interlocked.Exchange(ref _roomMade, null)?.TrySetResult();

    private void Count(long bytes)
    {
        Interlocked.Add(ref _queuedBytes, bytes);
        _sharedGauge?.Add(bytes);
    }

    public async Task CloseAfterSendingAsync(string reason)
    {
        lock (_sendingTurn)
        {
            _sendingEnded = true;
            _outbound.Writer.TryComplete();
        }
        await Task.WhenAny(_writer, Task.Delay(SendingDeadline)).ConfigureAwait(false);
        try { await _transport.EndSendingAsync().ConfigureAwait(false); }
        catch (Exception error) when (error is IOException or ObjectDisposedException or SocketException) { }
        // Give the other side a moment to read the last frames and close its end.
        await Task.WhenAny(_readingEnded.Task, Task.Delay(OtherSideClosingDeadline)).ConfigureAwait(false);
        await CloseAsync(reason).ConfigureAwait(false);
    }

    public Task CloseAsync(string reason)
    {
        if (Interlocked.Exchange(ref _closedFlag, 1) != 0) return Task.CompletedTask;
        CloseReason = reason;
        _outbound.Writer.TryComplete();
        while (_outbound.Reader.TryRead(out var dropped)) Dequeued(dropped);
        _closing.Cancel();
        WakeSenders();
        // Nobody reads: the input is completed here, so the other side's writes end too.
        if (Interlocked.Exchange(ref _readingStarted, 1) == 0) CompleteInput();
        _transport.Abort();
        _closed.TrySetResult(reason);
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await CloseAsync("disposed").ConfigureAwait(false);

    public async Task<string> ReadFramesAsync(int maxFrameBytes, Func<ReadOnlyMemory<byte>, ValueTask<bool>> onFrame, Action<int>? onOversized = null,
        Func<ValueTask>? onReadEnd = null)
    {
        if (Interlocked.Exchange(ref _readingStarted, 1) != 0) return CloseReason ?? "already reading";
        var reader = _transport.Input;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_closing.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (TryReadFrame(ref buffer, out var frame))
                {
                    if (frame.Length > maxFrameBytes)
                    {
                        if (onReadEnd is not null) await onReadEnd().ConfigureAwait(false);
                        return Oversized(onOversized, frame.Length, maxFrameBytes);
                    }
                    if (!await onFrame(WithoutCarriageReturn(frame)).ConfigureAwait(false))
                    {
                        if (onReadEnd is not null) await onReadEnd().ConfigureAwait(false);
                        return CloseReason ?? "frame refused";
                    }
                }
                // Before the next read (which may wait for the other side): the frames of this one go on now.
                if (onReadEnd is not null) await onReadEnd().ConfigureAwait(false);
                if (buffer.Length > maxFrameBytes) return Oversized(onOversized, buffer.Length, maxFrameBytes);
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted) return CloseReason ?? Frames.ClosedByOtherSide;
            }
        }
        catch (OperationCanceledException) { return CloseReason ?? "closed"; }
        catch (IOException error) { return CloseReason ?? $"connection lost: {error.Message}"; }
        catch (ObjectDisposedException) { return CloseReason ?? "closed"; }
        catch (SocketException error) { return CloseReason ?? $"connection lost: {error.Message}"; }
        finally
        {
            CompleteInput();
            _readingEnded.TrySetResult();
        }
    }

    private void CompleteInput()
    {
        try { _transport.Input.Complete(); }
        catch (InvalidOperationException) { } // a read still pending; the read loop completes it
    }

    /// <summary>A frame's bytes in one piece: the pipe's own memory when the frame lies in one segment.</summary>
    private static ReadOnlyMemory<byte> WithoutCarriageReturn(ReadOnlySequence<byte> frame)
    {
        var bytes = frame.IsSingleSegment ? frame.First : frame.ToArray();
        return bytes.Length > 0 && bytes.Span[^1] == (byte)'\r' ? bytes[..^1] : bytes;
    }

    private static string Oversized(Action<int>? onOversized, long length, int maxFrameBytes)
    {
        onOversized?.Invoke((int)Math.Min(length, int.MaxValue));
        return Frames.Oversized(maxFrameBytes);
    }

    private static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> frame)
    {
        var newline = buffer.PositionOf(Frames.Newline);
        if (newline is null)
        {
            frame = default;
            return false;
        }
        frame = buffer.Slice(0, newline.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, newline.Value));
        return true;
    }

    // Drains the queue in batches: one flush for everything that is ready.
    private async Task WriteLoopAsync()
    {
        var writer = _transport.Output;
        try
        {
            var reader = _outbound.Reader;
            while (await reader.WaitToReadAsync(_closing.Token).ConfigureAwait(false))
            {
                WriteLoopSending(true);
                var batchBytes = 0;
                while (batchBytes < MaxBatchBytes && reader.TryRead(out var frame))
                {
                    writer.Write(frame.Span);
                    batchBytes += frame.Length;
                    Dequeued(frame);
                }
                if (Volatile.Read(ref _roomMade) is not null) WakeSenders();
                var flushed = await writer.FlushAsync(_closing.Token).ConfigureAwait(false);
                // Flushed: the socket has every byte taken so far, so a frame may go straight to it again.
                WriteLoopSending(false);
                if (flushed.IsCompleted)
                {
                    await CloseAsync("connection lost while sending: the other side stopped reading").ConfigureAwait(false);
                    return;
                }
                // More waits: the thread goes back to the pool first, to the end of its queue, so a
                // connection with megabytes queued (a lagging receiver in a flood) does not hold a
                // thread while other connections' reads and writes, a status request's among them, wait.
                if (batchBytes >= MaxBatchBytes) await Task.Yield();
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception error) when (error is IOException or SocketException)
        {
            await CloseAsync("connection lost while sending").ConfigureAwait(false);
        }
        catch (ObjectDisposedException) { }
        finally { await writer.CompleteAsync().ConfigureAwait(false); }
    }

    private void WriteLoopSending(bool sending)
    {
        if (!_transport.SendsNow) return;
        lock (_sendingTurn) _writeLoopSending = sending;
    }

    private static string RemoteOf(Socket socket)
    {
        try { return socket.RemoteEndPoint?.ToString() ?? "unknown"; }
        catch (Exception error) when (error is SocketException or ObjectDisposedException) { return "unknown"; }
    }
}
