using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using FormalChat.CommandLine;
using FormalChat.Node.Security;
using FormalChat.Protocol;
using FormalChat.Transport;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node;

/// <summary>
/// The client port: accepts chat clients, turns each frame into a ClientRequested event, and
/// carries replies back. A malformed, oversized or unknown frame gets an error frame with the
/// reason and closes that one connection; nothing else is affected. A client is read no faster
/// than its rate limit and than the node's loop keeps up (the inbox's client lane is bounded),
/// and is disconnected when more than its share waits to be sent to it. A connection must be
/// welcomed within --hello-timeout unless it asks for status (a monitor), and one address may
/// hold at most --max-connections-per-ip connections: silent or excess connections would
/// otherwise take the slots of --max-clients from real users.
/// </summary>
public sealed class ClientGateway : IAsyncDisposable
{
    /// <summary>What a connection event weighs in the inbox: it carries no frame.</summary>
    private const int ConnectionEventBytes = 64;

    private readonly TcpAcceptor _acceptor;
    private readonly int _maxFrameBytes;
    private readonly ClientLimits _limits;
    private readonly NodeInbox _inbox;
    private readonly InputCounters _counters;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<long, IFrameConnection> _clients = new();
    /// <summary>Connections that need no hello timeout any more: welcomed, or monitors that asked for status.</summary>
    private readonly ConcurrentDictionary<long, byte> _greeted = new();
    private readonly ConnectionsPerAddress _perAddress;
    private readonly ClientTls? _tls;
    private readonly ResumeThrottle _resumes;
    private readonly CancellationTokenSource _stopping = new();
    private long _nextClientId;

    /// <summary>Passwords become records (register) or are checked against one (hello) here, not in the core.</summary>
    private readonly PasswordGate _passwords;

    /// <param name="accountRecord">The nick's account record in the node's current state, or null (Protocol.FSharp/Accounts.fs).</param>
    public ClientGateway(IPEndPoint endpoint, int maxFrameBytes, ClientLimits limits, NodeInbox inbox, InputCounters counters, ILogger log, ClientTls? tls = null,
        Func<string, string?>? accountRecord = null)
    {
        _tls = tls;
        _resumes = new ResumeThrottle(counters, log);
        _passwords = new PasswordGate(accountRecord ?? (_ => null));
        _acceptor = new TcpAcceptor(endpoint, "client", log);
        _maxFrameBytes = maxFrameBytes;
        _limits = limits;
        _inbox = inbox;
        _counters = counters;
        _log = log;
        _perAddress = new ConnectionsPerAddress(limits.MaxConnectionsPerAddress);
    }

    public int ConnectedClients => _clients.Count;

    /// <summary>The login throttle, shared with the IRC port (Irc/IrcGateway.cs): guesses through either door count together.</summary>
    public ResumeThrottle Logins => _resumes;

    /// <summary>The password gate, shared with the IRC port, whose PASS is checked as a hello's password is here.</summary>
    public PasswordGate Passwords => _passwords;

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

    /// <summary>The node welcomed these clients: their hello timeout no longer applies.</summary>
    public void MarkWelcomed(IEnumerable<long> clients)
    {
        foreach (var client in clients)
        {
            // IRC clients are welcomed through here too (the throttle is shared); only ours need a hello timeout.
            if (_clients.ContainsKey(client)) _greeted.TryAdd(client, 0);
            _resumes.Welcomed(client);
        }
    }

    /// <summary>The node refused these clients' request: a hello with a wrong session token is a failed resume (ResumeThrottle).</summary>
    public void MarkRefused(IEnumerable<long> clients, ErrorCode code)
    {
        foreach (var client in clients) _resumes.Refused(client, code);
    }

    public void Close(long client, string reason)
    {
        if (_clients.TryGetValue(client, out var connection)) _ = connection.CloseAfterSendingAsync(reason);
    }

    private async Task ServeAsync(Socket socket)
    {
        var address = (socket.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        if (!_perAddress.TryAdd(address))
        {
            await RefuseExtraConnectionAsync(socket, address).ConfigureAwait(false);
            return;
        }
        var connection = await ClientTls.OpenAsync(_tls, socket, "client", ClientTlsDeadline, TlsRequired, _limits.MaxQueueBytes, Outbound, _stopping.Token).ConfigureAwait(false);
        if (connection is null)
        {
            _perAddress.Remove(address);
            return;
        }
        var client = Interlocked.Increment(ref _nextClientId);
        _clients[client] = connection;
        _inbox.Clients.Force(Event.NewClientConnected(client, NewSessionToken()), ConnectionEventBytes);
        if (_limits.HelloTimeoutMs > 0) _ = CloseIfNotWelcomedAsync(client, connection);
        try
        {
            await ReadRequestsAsync(client, address, connection).ConfigureAwait(false);
        }
        finally
        {
            _resumes.Disconnected(client);
            // However the connection ended, the node hears of it once.
            _clients.TryRemove(client, out _);
            _greeted.TryRemove(client, out _);
            _perAddress.Remove(address);
            _inbox.Clients.Force(Event.NewClientDisconnected(client), ConnectionEventBytes);
        }
    }

    /// <summary>
    /// One connection too many from this address: it gets server-full and is closed before the
    /// node hears of it, so it never takes a client slot.
    /// </summary>
    private async Task RefuseExtraConnectionAsync(Socket socket, IPAddress address)
    {
        var count = _counters.CountRefusedConnection();
        var reason = $"too many connections from {address}: at most {_limits.MaxConnectionsPerAddress} at once";
        _log.LogWarning("refused a client connection: {Reason} ({Count} refused so far)", reason, count);
        await using var connection = FramedConnection.Open(socket, maxQueuedBytes: 64 * 1024);
        connection.TrySend(Wire.encodeServerReplyLine(ServerReply.NewErrorReply(ErrorCode.ServerFull, reason)));
        // Read (and drop) what it sends meanwhile, so the close is a FIN after the error, not an RST.
        var reading = connection.ReadFramesAsync(_maxFrameBytes, _ => true);
        await connection.CloseAfterSendingAsync(reason).ConfigureAwait(false);
        await reading.ConfigureAwait(false);
    }

    /// <summary>
    /// Closes the connection with hello-first if the node has not welcomed it when the hello
    /// timeout ends, unless it asked for status. An unwelcomed connection still holds a slot of
    /// --max-clients, and 5,000 silent ones once locked every real user out.
    /// </summary>
    private async Task CloseIfNotWelcomedAsync(long client, IFrameConnection connection)
    {
        try { await Task.Delay(_limits.HelloTimeoutMs, _stopping.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { return; }
        if (_greeted.ContainsKey(client) || !_clients.ContainsKey(client)) return;
        var seconds = _limits.HelloTimeoutMs / 1000.0;
        var count = _counters.CountHelloTimeout();
        _log.LogInformation("client {Client} ({Remote}) was not welcomed within {Seconds} s, closing it ({Count} so far)",
            client, connection.Remote, seconds, count);
        var reason = $"no valid hello within {seconds} s: say hello first (or ask for status)";
        connection.TrySend(Wire.encodeServerReplyLine(ServerReply.NewErrorReply(ErrorCode.HelloFirst, reason)));
        await connection.CloseAfterSendingAsync($"hello-first: {reason}").ConfigureAwait(false);
    }

    /// <summary>A handshake must be done in the time a hello has (10 s without --hello-timeout).</summary>
    private TimeSpan ClientTlsDeadline => TimeSpan.FromMilliseconds(_limits.HelloTimeoutMs > 0 ? _limits.HelloTimeoutMs : 10_000);

    private static readonly ReadOnlyMemory<byte> TlsRequired = Wire.encodeServerReplyLine(ServerReply.NewErrorReply(ErrorCode.TlsRequired,
        "this node's client port accepts TLS only (TLS 1.2 or later): connect with --tls (and --tls-ca FILE for a private CA)"));

    private async Task ReadRequestsAsync(long client, IPAddress address, IFrameConnection connection)
    {
        var rate = new ClientRateLimit(_limits.RatePerSecond, _limits.Burst);
        // A read's requests go into the client lane together, at the read's end (NodeInbox.cs).
        var batch = new LaneBatch<Event>(_inbox.Clients, _stopping.Token);
        string? refusal = null;
        var reason = await connection.ReadFramesAsync(
            _maxFrameBytes,
            async line =>
            {
                if (line.Length == 0) return true;
                var decoded = Wire.decodeClientRequestUtf8(line);
                if (decoded.IsError)
                {
                    // The good frames before it go on first, as they would have one by one.
                    await batch.HandOnAsync().ConfigureAwait(false);
                    refusal = Refuse(client, connection, decoded.ErrorValue.Code, decoded.ErrorValue.Reason);
                    return false;
                }
                // Status may be asked without hello; it makes the connection a monitor, which the hello timeout spares.
                if (decoded.ResultValue.IsStatus) _greeted.TryAdd(client, 0);
                // Session-token and password guessing is throttled per address and per nick (Security/ResumeThrottle.cs).
                if (decoded.ResultValue is ClientRequest.Hello hello && (hello.Item.Session is not null || hello.Item.Password is not null)
                    && _resumes.Admit(client, address, hello.Item.Password is null ? null : hello.Item.Nick) is { } throttled)
                {
                    await batch.HandOnAsync().ConfigureAwait(false);
                    connection.TrySend(Wire.encodeServerReplyLine(ServerReply.NewErrorReply(ErrorCode.LoginThrottled, throttled)));
                    refusal = $"login-throttled: {throttled}";
                    return false;
                }
                // Passwords stop here: the core sees records (Security/PasswordGate.cs).
                var checkedRequest = _passwords.Check(decoded.ResultValue, out var invalid);
                if (checkedRequest is null)
                {
                    connection.TrySend(Wire.encodeServerReplyLine(ServerReply.NewErrorReply(ErrorCode.PasswordInvalid, invalid!)));
                    return true;
                }
                var request = Event.NewClientRequested(client, checkedRequest);
                await SlowDownIfOverRate(client, connection, rate, batch).ConfigureAwait(false);
                if (NodeInbox.IsControl(checkedRequest))
                {
                    // The requests before it are in their lane first, as when each went alone.
                    await batch.HandOnAsync().ConfigureAwait(false);
                    if (_inbox.TryControl(request)) return true;
                }
                await batch.AddAsync(request, line.Length).ConfigureAwait(false);
                return true;
            },
            length => { refusal = Refuse(client, connection, ErrorCode.FrameTooLarge, $"a frame has at most {_maxFrameBytes} bytes"); },
            batch.HandOnAsync
        ).ConfigureAwait(false);
        if (refusal is not null) await connection.CloseAfterSendingAsync(refusal).ConfigureAwait(false);
        else await connection.CloseAsync(reason).ConfigureAwait(false);
        if (reason.StartsWith(Frames.TooSlowPrefix, StringComparison.Ordinal))
        {
            _log.LogWarning("client {Client} ({Remote}) disconnected: {Reason}", client, connection.Remote, reason);
        }
    }

    private async Task SlowDownIfOverRate(long client, IFrameConnection connection, ClientRateLimit rate, LaneBatch<Event> readSoFar)
    {
        var wasSlowing = rate.IsSlowing;
        var wait = rate.Take();
        if (wait <= TimeSpan.Zero) return;
        // What was read within the rate is not held back with the frame that went over it.
        await readSoFar.HandOnAsync().ConfigureAwait(false);
        if (!wasSlowing)
        {
            _log.LogInformation("client {Client} ({Remote}) sends faster than {Rate} frames/s: reading it more slowly", client, connection.Remote, _limits.RatePerSecond);
            var notice = $"you send more than {_limits.RatePerSecond} messages a second: they are read more slowly from now on; none is lost";
            connection.TrySend(Wire.encodeServerReplyLine(ServerReply.NewErrorReply(ErrorCode.RateLimited, notice)));
        }
        await Task.Delay(wait, _stopping.Token).ConfigureAwait(false);
    }

    /// <summary>The token a client shows to take its nickname over after a failover: random, so it cannot be guessed.</summary>
    private static string NewSessionToken() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();

    private string Refuse(long client, IFrameConnection connection, ErrorCode code, string reason)
    {
        var count = _counters.CountBadClientFrame();
        _log.LogWarning("client {Client} ({Remote}) sent a bad frame, closing it: {Reason} ({Count} refused so far)",
            client, connection.Remote, reason, count);
        connection.TrySend(Wire.encodeServerReplyLine(ServerReply.NewErrorReply(code, reason)));
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
