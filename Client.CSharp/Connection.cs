using System.Net.Sockets;
using System.Text;
using FormalChat.CommandLine;
using FormalChat.Protocol;

namespace FormalChat.Client;

/// The connection could not be opened; Message is the text to show after "cannot connect to ...".
public sealed class ConnectFailedException(string reason) : Exception(reason);

/// One TCP connection to a node, speaking newline-delimited frames (docs/PROTOCOL.md: "one JSON
/// object per line"). A read loop hands every line to the caller; every way the connection can
/// end completes Closed once, with a reason. Disposal is idempotent.
public sealed class Connection : IDisposable
{
    private static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    private readonly TcpClient tcp;
    private readonly Stream stream;
    private readonly Lock writeGate = new();
    private readonly TaskCompletionSource<string> closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private Connection(TcpClient tcp, Stream stream)
    {
        this.tcp = tcp;
        this.stream = stream;
    }

    /// Completes with the reason once the connection has ended, whoever ended it.
    public Task<string> Closed => closed.Task;

    public static Task<Connection> ConnectAsync(Endpoint server) => ConnectAsync(server, DefaultConnectTimeout);

    /// With <paramref name="tls"/>, the connection speaks TLS (ClientTls.cs) or fails with the reason.
    public static async Task<Connection> ConnectAsync(Endpoint server, TimeSpan connectTimeout, ClientTlsOptions? tls = null)
    {
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            using var timeout = new CancellationTokenSource(connectTimeout);
            await tcp.ConnectAsync(server.Host, server.Port, timeout.Token);
            Stream stream = tcp.GetStream();
            if (tls is not null) stream = await ClientTls.AuthenticateAsync(stream, server, tls, connectTimeout);
            return new Connection(tcp, stream);
        }
        catch (ConnectFailedException)
        {
            tcp.Dispose();
            throw;
        }
        catch (Exception error) when (error is SocketException or OperationCanceledException)
        {
            tcp.Dispose();
            throw new ConnectFailedException(error switch
            {
                SocketException { SocketErrorCode: SocketError.ConnectionRefused } => "connection refused",
                SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.NoData } => "host not found",
                SocketException { SocketErrorCode: SocketError.NetworkUnreachable or SocketError.HostUnreachable } => "unreachable",
                SocketException socket => socket.Message,
                _ => $"no answer within {connectTimeout.TotalSeconds:0.#} s",
            });
        }
    }

    /// Starts the read loop; onLine runs on the loop's thread, one line at a time.
    public void Start(Action<string> onLine) => _ = Task.Run(() => ReadLoopAsync(onLine));

    /// Writes one frame. Writes are synchronous under a lock so frames leave in the order the
    /// caller sent them (the session relies on that to match /who answers to requests); a
    /// chat client sends little, and a node that stops reading slows its typist, not memory.
    public void Send(ClientRequest request)
    {
        var frame = Wire.encodeClientRequestLine(request);
        lock (writeGate)
        {
            try
            {
                stream.Write(frame);
            }
            catch (Exception error) when (error is IOException or ObjectDisposedException or SocketException)
            {
                Close($"connection lost while sending ({error.Message})");
            }
        }
    }

    /// Ends the connection with a reason; only the first reason counts.
    public void Close(string reason)
    {
        if (!closed.TrySetResult(reason)) return;
        tcp.Dispose();
        stream.Dispose();
    }

    public void Dispose() => Close("closed by the client");

    private async Task ReadLoopAsync(Action<string> onLine)
    {
        var buffer = new byte[16 * 1024];
        var pending = new MemoryStream();
        try
        {
            while (!closed.Task.IsCompleted)
            {
                var count = await stream.ReadAsync(buffer);
                if (count == 0)
                {
                    Close("the server closed the connection");
                    return;
                }
                if (!SplitLines(buffer.AsSpan(0, count), pending, onLine)) return;
            }
        }
        catch (Exception error) when (error is IOException or ObjectDisposedException or SocketException)
        {
            Close($"connection lost ({error.Message})");
        }
    }

    /// Hands every complete line in `received` to onLine and keeps the unfinished tail in
    /// `pending`. A frame longer than the protocol's maximum ends the connection.
    private bool SplitLines(ReadOnlySpan<byte> received, MemoryStream pending, Action<string> onLine)
    {
        while (!received.IsEmpty && !closed.Task.IsCompleted)
        {
            var newline = received.IndexOf((byte)'\n');
            var part = newline < 0 ? received : received[..newline];
            if (pending.Length + part.Length > Wire.defaultMaxFrameBytes)
            {
                Close($"the server sent a frame over {Wire.defaultMaxFrameBytes} bytes");
                return false;
            }
            pending.Write(part);
            if (newline < 0) return true;
            var line = Encoding.UTF8.GetString(pending.GetBuffer(), 0, (int)pending.Length).TrimEnd('\r');
            pending.SetLength(0);
            if (line.Length > 0) onLine(line);
            received = received[(newline + 1)..];
        }
        return !closed.Task.IsCompleted;
    }
}
