using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node;

/// <summary>
/// The client port: accepts chat clients, turns each frame into a ClientRequested event, and
/// carries replies back. A malformed, oversized or unknown frame gets an error frame with the
/// reason and closes that one connection; nothing else is affected.
/// </summary>
public sealed class ClientGateway : IAsyncDisposable
{
    private const int MaxQueuedFramesPerClient = 8192;

    private readonly TcpAcceptor _acceptor;
    private readonly int _maxFrameBytes;
    private readonly ChannelWriter<Event> _events;
    private readonly InputCounters _counters;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<long, LineConnection> _clients = new();
    private long _nextClientId;

    public ClientGateway(IPEndPoint endpoint, int maxFrameBytes, ChannelWriter<Event> events, InputCounters counters, ILogger log)
    {
        _acceptor = new TcpAcceptor(endpoint, "client", log);
        _maxFrameBytes = maxFrameBytes;
        _events = events;
        _counters = counters;
        _log = log;
    }

    public int ConnectedClients => _clients.Count;

    public void Start()
    {
        _acceptor.Start(backlog: 4096, ServeAsync);
    }

    public void Send(IEnumerable<long> clients, ReadOnlyMemory<byte> frame)
    {
        foreach (var client in clients)
        {
            if (_clients.TryGetValue(client, out var connection)) connection.TrySend(frame);
        }
    }

    public void Close(long client, string reason)
    {
        if (_clients.TryGetValue(client, out var connection)) _ = connection.CloseAfterSendingAsync(reason);
    }

    private async Task ServeAsync(Socket socket)
    {
        var client = Interlocked.Increment(ref _nextClientId);
        var connection = new LineConnection(socket, MaxQueuedFramesPerClient);
        _clients[client] = connection;
        _events.TryWrite(Event.NewClientConnected(client, NewSessionToken()));
        string? refusal = null;
        var reason = await connection.ReadLinesAsync(
            _maxFrameBytes,
            line =>
            {
                if (line.Length == 0) return true;
                var decoded = Wire.decodeClientRequest(line);
                if (decoded.IsOk)
                {
                    _events.TryWrite(Event.NewClientRequested(client, decoded.ResultValue));
                    return true;
                }
                refusal = Refuse(client, connection, decoded.ErrorValue.Code, decoded.ErrorValue.Reason);
                return false;
            },
            length => { refusal = Refuse(client, connection, ErrorCode.FrameTooLarge, $"a frame has at most {_maxFrameBytes} bytes"); return false; }
        ).ConfigureAwait(false);
        if (refusal is not null) await connection.CloseAfterSendingAsync(refusal).ConfigureAwait(false);
        else await connection.CloseAsync(reason).ConfigureAwait(false);
        _clients.TryRemove(client, out _);
        _events.TryWrite(Event.NewClientDisconnected(client));
    }

    /// <summary>The token a client shows to take its nickname over after a failover: random, so it cannot be guessed.</summary>
    private static string NewSessionToken() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();

    private string Refuse(long client, LineConnection connection, ErrorCode code, string reason)
    {
        var count = _counters.CountBadClientFrame();
        _log.LogWarning("client {Client} ({Remote}) sent a bad frame, closing it: {Reason} ({Count} refused so far)",
            client, connection.Remote, reason, count);
        connection.TrySend(LineConnection.Frame(Wire.encodeServerReply(ServerReply.NewError(code, reason))));
        return $"{Wire.errorCodeName(code)}: {reason}";
    }

    public async ValueTask DisposeAsync()
    {
        _acceptor.Dispose();
        foreach (var connection in _clients.Values) await connection.DisposeAsync().ConfigureAwait(false);
    }
}
