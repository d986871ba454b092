using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace FormalChat.Node;

/// <summary>
/// One TCP connection speaking newline-delimited frames: a read loop that hands each line to the
/// caller, and a write queue bounded in bytes, drained by its own task. Every way the connection
/// can end (peer closed, oversized frame, write failure, slow reader, disposal) ends it once, with
/// one reason.
/// </summary>
public sealed class LineConnection : IAsyncDisposable
{
    private static readonly byte Newline = (byte)'\n';

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly Channel<ReadOnlyMemory<byte>> _outbound;
    private readonly long _maxQueuedBytes;
    private readonly ByteGauge? _sharedGauge;
    private readonly Task _writer;
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _readingEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _queuedBytes;
    private int _closed;

    /// <param name="maxQueuedBytes">Bytes waiting to be sent beyond which the other side counts as
    /// too slow and the connection is closed.</param>
    /// <param name="sharedGauge">Where the bytes waiting on this connection are also added up with
    /// those of its siblings (all clients, all peer links), so the node can tell it is falling behind.</param>
    public LineConnection(Socket socket, long maxQueuedBytes, ByteGauge? sharedGauge = null)
        : this(socket, new NetworkStream(socket, ownsSocket: true), maxQueuedBytes, sharedGauge)
    {
    }

    /// <param name="stream">What to read and write instead of the socket itself (TLS,
    /// Security/ClientTls.cs); it owns the socket.</param>
    public LineConnection(Socket socket, Stream stream, long maxQueuedBytes, ByteGauge? sharedGauge = null)
    {
        _socket = socket;
        _socket.NoDelay = true;
        Remote = socket.RemoteEndPoint?.ToString() ?? "unknown";
        _stream = stream;
        _maxQueuedBytes = maxQueuedBytes;
        _sharedGauge = sharedGauge;
        // Not single-reader: closing empties the queue while the write loop may still be reading it.
        _outbound = Channel.CreateUnbounded<ReadOnlyMemory<byte>>();
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>Bytes queued and not yet handed to the socket.</summary>
    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>The other side's address, kept from the start: a closed socket no longer says.</summary>
    public string Remote { get; }

    /// <summary>Why the connection ended; null while it is open.</summary>
    public string? CloseReason { get; private set; }

    public static ReadOnlyMemory<byte> Frame(string line) => Encoding.UTF8.GetBytes(line + "\n");

    /// <summary>Queues a frame. A reader too slow to keep up is disconnected rather than buffered without end.</summary>
    public bool TrySend(ReadOnlyMemory<byte> frame)
    {
        if (Volatile.Read(ref _closed) != 0) return false;
        if (Interlocked.Read(ref _queuedBytes) + frame.Length > _maxQueuedBytes)
        {
            _ = CloseAsync($"too slow: more than {_maxQueuedBytes} bytes were waiting to be sent");
            return false;
        }
        Count(frame.Length);
        if (_outbound.Writer.TryWrite(frame)) return true;
        Count(-frame.Length);
        return false;
    }

    private void Count(long bytes)
    {
        Interlocked.Add(ref _queuedBytes, bytes);
        _sharedGauge?.Add(bytes);
    }

    /// <summary>Sends what is queued (up to a short deadline), then closes.</summary>
    public async Task CloseAfterSendingAsync(string reason)
    {
        _outbound.Writer.TryComplete();
        await Task.WhenAny(_writer, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
        // End gracefully: FIN after the last frame, then give the other side a moment to read it
        // and close. Disposing a socket while a receive is pending aborts it (RST), and an RST can
        // discard frames the other side has not read yet, such as the redirect that explains the close.
        try { _socket.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
        await Task.WhenAny(_readingEnded.Task, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
        await CloseAsync(reason).ConfigureAwait(false);
    }

    public Task CloseAsync(string reason)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return Task.CompletedTask;
        CloseReason = reason;
        _outbound.Writer.TryComplete();
        while (_outbound.Reader.TryRead(out var dropped)) Count(-dropped.Length);
        _closing.Cancel();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _stream.Dispose();
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync("disposed").ConfigureAwait(false);
        _closing.Dispose();
    }

    /// <summary>
    /// Reads frames until the connection ends, handing each one over as its UTF-8 bytes (without the
    /// newline or a carriage return before it), valid only until <paramref name="onLine"/> returns:
    /// the decoder, not this class, decides what bytes are acceptable. <paramref name="onLine"/> returns false to stop
    /// reading (after it has queued its own error reply); while it has not returned, nothing more
    /// is read, so a slow consumer slows the sender through TCP. Returns the reason the reading stopped.
    /// </summary>
    public async Task<string> ReadLinesAsync(int maxFrameBytes, Func<ReadOnlyMemory<byte>, ValueTask<bool>> onLine, Func<int, bool>? onOversized = null)
    {
        var reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, leaveOpen: true));
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_closing.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (TryReadLine(ref buffer, out var line))
                {
                    if (line.Length > maxFrameBytes) return Oversized(onOversized, (int)line.Length, maxFrameBytes);
                    if (!await onLine(WithoutCarriageReturn(line)).ConfigureAwait(false)) return CloseReason ?? "frame refused";
                }
                if (buffer.Length > maxFrameBytes) return Oversized(onOversized, (int)buffer.Length, maxFrameBytes);
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted) return "connection closed by the other side";
            }
        }
        catch (OperationCanceledException) { return CloseReason ?? "closed"; }
        catch (IOException error) { return CloseReason ?? $"connection lost: {error.Message}"; }
        catch (ObjectDisposedException) { return CloseReason ?? "closed"; }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            _readingEnded.TrySetResult();
        }
    }

    /// <summary>A line's bytes in one piece: the pipe's own memory when the line lies in one segment.</summary>
    private static ReadOnlyMemory<byte> WithoutCarriageReturn(ReadOnlySequence<byte> line)
    {
        var bytes = line.IsSingleSegment ? line.First : line.ToArray();
        return bytes.Length > 0 && bytes.Span[^1] == (byte)'\r' ? bytes[..^1] : bytes;
    }

    private static string Oversized(Func<int, bool>? onOversized, int length, int maxFrameBytes)
    {
        onOversized?.Invoke(length);
        return $"frame larger than {maxFrameBytes} bytes";
    }

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        var newline = buffer.PositionOf(Newline);
        if (newline is null)
        {
            line = default;
            return false;
        }
        line = buffer.Slice(0, newline.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, newline.Value));
        return true;
    }

    // Drains the queue in batches: one flush for everything that is ready.
    private async Task WriteLoopAsync()
    {
        var writer = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
        try
        {
            var reader = _outbound.Reader;
            while (await reader.WaitToReadAsync(_closing.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var frame))
                {
                    writer.Write(frame.Span);
                    Count(-frame.Length);
                }
                await writer.FlushAsync(_closing.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { await CloseAsync("connection lost while sending").ConfigureAwait(false); }
        catch (ObjectDisposedException) { }
        finally { await writer.CompleteAsync().ConfigureAwait(false); }
    }
}

/// <summary>A running total of bytes, added to from many threads.</summary>
public sealed class ByteGauge
{
    private long _bytes;

    public long Bytes => Interlocked.Read(ref _bytes);

    public void Add(long bytes) => Interlocked.Add(ref _bytes, bytes);
}
