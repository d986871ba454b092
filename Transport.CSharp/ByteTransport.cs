using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;

namespace FormalChat.Transport;

/// <summary>
/// What carries a framed connection's bytes: a pipe each way, how to end the sending side so the
/// other side still reads everything before the end, and how to end everything at once.
/// </summary>
internal abstract class ByteTransport
{
    /// <summary>The reader's buffer: one pooled segment per connection while a read is pending.</summary>
    private const int ReadBufferBytes = 16 * 1024;

    public abstract PipeReader Input { get; }

    public abstract PipeWriter Output { get; }

    /// <summary>Called once the output is flushed and completed: the graceful end (FIN, close_notify).</summary>
    public abstract ValueTask EndSendingAsync();

    /// <summary>Ends both directions at once; pending reads and writes fail or end.</summary>
    public abstract void Abort();

    /// <summary>Whether <see cref="SendNow"/> can hand bytes to the operating system without waiting.</summary>
    public virtual bool SendsNow => false;

    /// <summary>Hands the operating system what it takes of <paramref name="bytes"/> at once, never
    /// waiting: the count taken (0 when its buffer is full), or -1 when the connection is lost. Only
    /// while nothing else sends on this transport (FramedConnection decides who does).</summary>
    public virtual int SendNow(ReadOnlySpan<byte> bytes) => 0;

    protected static PipeReader ReaderOver(Stream stream) =>
        PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: ReadBufferBytes, leaveOpen: true));

    protected static PipeWriter WriterOver(Stream stream) =>
        PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
}

/// <summary>A connected TCP socket, owned from now on.</summary>
internal sealed class SocketTransport : ByteTransport
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;

    /// <param name="sendsNow">Sends may be made at once (<see cref="SendNow"/>): the socket turns
    /// non-blocking, which the stream's asynchronous reads and writes do not mind.</param>
    public SocketTransport(Socket socket, bool sendsNow = false)
    {
        _socket = socket;
        _socket.NoDelay = true;
        _stream = new NetworkStream(socket, ownsSocket: true);
        // After the stream is made: a NetworkStream refuses a non-blocking socket, as it would
        // its own synchronous calls on one; only its asynchronous ones are used.
        if (sendsNow) _socket.Blocking = false;
        SendsNow = sendsNow;
        Input = ReaderOver(_stream);
        Output = WriterOver(_stream);
    }

    public override bool SendsNow { get; }

    public override int SendNow(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var sent = _socket.Send(bytes, SocketFlags.None, out var error);
            return error switch
            {
                SocketError.Success => sent,
                SocketError.WouldBlock => 0,
                _ => -1,
            };
        }
        catch (ObjectDisposedException) { return -1; }
    }

    public override PipeReader Input { get; }

    public override PipeWriter Output { get; }

    // FIN after the last frame. Disposing a socket while a receive is pending aborts it (RST),
    // and an RST can discard frames the other side has not read yet, such as the one that
    // explains the close.
    public override ValueTask EndSendingAsync()
    {
        try { _socket.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
        return ValueTask.CompletedTask;
    }

    public override void Abort()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _stream.Dispose();
    }
}

/// <summary>Any connected stream, owned from now on: an SslStream over a socket, for TLS.</summary>
internal sealed class StreamTransport : ByteTransport
{
    private readonly Stream _stream;

    public StreamTransport(Stream stream)
    {
        _stream = stream;
        Input = ReaderOver(stream);
        Output = WriterOver(stream);
    }

    public override PipeReader Input { get; }

    public override PipeWriter Output { get; }

    public override async ValueTask EndSendingAsync()
    {
        if (_stream is not SslStream tls) return;
        try { await tls.ShutdownAsync().ConfigureAwait(false); }
        catch (Exception error) when (error is IOException or ObjectDisposedException or InvalidOperationException) { }
    }

    public override void Abort() => _stream.Dispose();
}

/// <summary>One end of an in-memory pair: what this end writes, the other end reads.</summary>
internal sealed class PipeTransport(PipeReader input, PipeWriter output) : ByteTransport
{
    public override PipeReader Input { get; } = input;

    public override PipeWriter Output { get; } = output;

    // Completing the output (the write loop does, when it ends) is already the end of the stream.
    public override ValueTask EndSendingAsync() => ValueTask.CompletedTask;

    // A read or write pending on the pipes ends through the connection's cancellation, and the
    // loops complete both pipes as they finish.
    public override void Abort() { }
}
