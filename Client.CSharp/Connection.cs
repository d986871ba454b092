using System.Net.Sockets;
using System.Text;
using FormalChat.CommandLine;
using FormalChat.Protocol;
using FormalChat.Transport;

namespace FormalChat.Client;

/// The connection could not be opened; Message is the text to show after "cannot connect to ...".
public sealed class ConnectFailedException(string reason) : Exception(reason);

/// One connection to a node: the framed connection of Transport.CSharp (docs/PROTOCOL.md: "one
/// JSON object per line") with the client's requests encoded and the node's frames handed over as
/// text. Every way the connection can end completes Closed once, with a reason. Disposal is idempotent.
public sealed class Connection : IDisposable
{
    private static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    /// What may wait to be sent before the node counts as not reading: a chat client sends
    /// little, so only a node that has stopped reading gets this far, and the client fails over.
    private const long MaxQueuedBytes = 4L * 1024 * 1024;

    /// The welcome does not say the node's --max-frame, so the client reads frames up to the
    /// node's default, the one constant both share.
    private static readonly int MaxFrameBytes = Wire.defaultMaxFrameBytes;

    private readonly IFrameConnection frames;

    public Connection(IFrameConnection frames) => this.frames = frames;

    /// Completes with the reason once the connection has ended, whoever ended it.
    public Task<string> Closed => frames.Closed;

    public static Task<Connection> ConnectAsync(Endpoint server) => ConnectAsync(server, DefaultConnectTimeout);

    /// With <paramref name="tls"/>, the connection speaks TLS (ClientTls.cs) or fails with the reason.
    public static async Task<Connection> ConnectAsync(Endpoint server, TimeSpan connectTimeout, ClientTlsOptions? tls = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using var timeout = new CancellationTokenSource(connectTimeout);
            await socket.ConnectAsync(server.Host, server.Port, timeout.Token);
            if (tls is null) return new Connection(FramedConnection.Open(socket, MaxQueuedBytes));
            var stream = await ClientTls.AuthenticateAsync(new NetworkStream(socket, ownsSocket: true), server, tls, connectTimeout);
            return new Connection(FramedConnection.Open(stream, $"{server.Host}:{server.Port}", MaxQueuedBytes));
        }
        catch (ConnectFailedException)
        {
            socket.Dispose();
            throw;
        }
        catch (Exception error) when (error is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            throw new ConnectFailedException(error switch
            {
                SocketException { SocketErrorCode: SocketError.ConnectionRefused } => "connection refused",
                SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.NoData } => "host not found",
                SocketException { SocketErrorCode: SocketError.NetworkUnreachable or SocketError.HostUnreachable } => "unreachable",
                SocketException other => other.Message,
                _ => $"no answer within {connectTimeout.TotalSeconds:0.#} s",
            });
        }
    }

    /// Starts the read loop; onLine runs on the loop's thread, one line at a time.
    public void Start(Action<string> onLine) => _ = Task.Run(() => ReadLoopAsync(onLine));

    /// Queues one frame. Frames leave in the order they were queued (the session relies on that to
    /// match /who answers to requests); a node that stops reading ends the connection.
    public void Send(ClientRequest request) => frames.TrySend(Wire.encodeClientRequestLine(request));

    /// Ends the connection with a reason; only the first reason counts.
    public void Close(string reason) => _ = frames.CloseAsync(reason);

    public void Dispose() => Close("closed by the client");

    private async Task ReadLoopAsync(Action<string> onLine)
    {
        var reason = await frames.ReadFramesAsync(
            MaxFrameBytes,
            frame =>
            {
                if (frame.Length > 0) onLine(Encoding.UTF8.GetString(frame.Span));
                return frames.CloseReason is null;
            });
        Close(reason switch
        {
            Frames.ClosedByOtherSide => "the server closed the connection",
            _ when reason == Frames.Oversized(MaxFrameBytes) => $"the server sent a frame over {MaxFrameBytes} bytes",
            _ => reason,
        });
    }
}
