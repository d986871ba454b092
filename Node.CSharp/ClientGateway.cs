using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node;

/// <summary>
/// The client port: accepts chat clients, turns each frame into a ClientRequested event, and
/// carries replies back. A malformed, oversized or unknown frame gets an error frame with the
/// reason and closes that one connection; nothing else is affected. A client is read no faster
/// than its rate limit and than the node's loop keeps up (the inbox's client lane is bounded),
/// and is disconnected when more than its share waits to be sent to it.
/// </summary>
public sealed class ClientGateway : IAsyncDisposable
{
    /// <summary>What a connection event weighs in the inbox: it carries no frame.</summary>
    private const int ConnectionEventBytes = 64;

    private readonly TcpAcceptor _acceptor;
    private readonly int _maxFrameBytes;
    private readonly Config.ClientLimits _limits;
    private readonly NodeInbox _inbox;
    private readonly InputCounters _counters;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<long, LineConnection> _clients = new();
    private readonly CancellationTokenSource _stopping = new();
    private long _nextClientId;

    public ClientGateway(IPEndPoint endpoint, int maxFrameBytes, Config.ClientLimits limits, NodeInbox inbox, InputCounters counters, ILogger log)
    {
        _acceptor = new TcpAcceptor(endpoint, "client", log);
        _maxFrameBytes = maxFrameBytes;
        _limits = limits;
        _inbox = inbox;
        _counters = counters;
        _log = log;
    }

    public int ConnectedClients => _clients.Count;

    /// <summary>Bytes waiting to be sent to all clients together.</summary>
    public ByteGauge Outbound { get; } = new();

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
        var connection = new LineConnection(socket, _limits.MaxQueueBytes, Outbound);
        _clients[client] = connection;
        _inbox.Clients.Force(Event.NewClientConnected(client, NewSessionToken()), ConnectionEventBytes);
        try
        {
            await ReadRequestsAsync(client, connection).ConfigureAwait(false);
        }
        finally
        {
            // However the connection ended, the node hears of it once.
            _clients.TryRemove(client, out _);
            _inbox.Clients.Force(Event.NewClientDisconnected(client), ConnectionEventBytes);
        }
    }

    private async Task ReadRequestsAsync(long client, LineConnection connection)
    {
        var rate = new ClientRateLimit(_limits.RatePerSecond, _limits.Burst);
        string? refusal = null;
        var reason = await connection.ReadLinesAsync(
            _maxFrameBytes,
            async line =>
            {
                if (line.Length == 0) return true;
                var decoded = Wire.decodeClientRequestUtf8(line);
                if (decoded.IsError)
                {
                    refusal = Refuse(client, connection, decoded.ErrorValue.Code, decoded.ErrorValue.Reason);
                    return false;
                }
                var request = Event.NewClientRequested(client, decoded.ResultValue);
                await SlowDownIfOverRate(client, connection, rate).ConfigureAwait(false);
                if (NodeInbox.IsControl(decoded.ResultValue) && _inbox.TryControl(request)) return true;
                await _inbox.Clients.WriteAsync(request, line.Length, _stopping.Token).ConfigureAwait(false);
                return true;
            },
            length => { refusal = Refuse(client, connection, ErrorCode.FrameTooLarge, $"a frame has at most {_maxFrameBytes} bytes"); return false; }
        ).ConfigureAwait(false);
        if (refusal is not null) await connection.CloseAfterSendingAsync(refusal).ConfigureAwait(false);
        else await connection.CloseAsync(reason).ConfigureAwait(false);
        if (reason.StartsWith("too slow", StringComparison.Ordinal))
        {
            _log.LogWarning("client {Client} ({Remote}) disconnected: {Reason}", client, connection.Remote, reason);
        }
    }

    private async Task SlowDownIfOverRate(long client, LineConnection connection, ClientRateLimit rate)
    {
        var wasSlowing = rate.IsSlowing;
        var wait = rate.Take();
        if (wait <= TimeSpan.Zero) return;
        if (!wasSlowing)
        {
            _log.LogInformation("client {Client} ({Remote}) sends faster than {Rate} frames/s: reading it more slowly", client, connection.Remote, _limits.RatePerSecond);
            var notice = $"you send more than {_limits.RatePerSecond} messages a second: they are read more slowly from now on; none is lost";
            connection.TrySend(Wire.encodeServerReplyLine(ServerReply.NewError(ErrorCode.RateLimited, notice)));
        }
        await Task.Delay(wait, _stopping.Token).ConfigureAwait(false);
    }

    /// <summary>The token a client shows to take its nickname over after a failover: random, so it cannot be guessed.</summary>
    private static string NewSessionToken() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();

    private string Refuse(long client, LineConnection connection, ErrorCode code, string reason)
    {
        var count = _counters.CountBadClientFrame();
        _log.LogWarning("client {Client} ({Remote}) sent a bad frame, closing it: {Reason} ({Count} refused so far)",
            client, connection.Remote, reason, count);
        connection.TrySend(Wire.encodeServerReplyLine(ServerReply.NewError(code, reason)));
        return $"{Wire.errorCodeName(code)}: {reason}";
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _acceptor.Dispose();
        foreach (var connection in _clients.Values) await connection.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}
