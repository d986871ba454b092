using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using FormalChat.CommandLine;
using FormalChat.Node.Security;
using FormalChat.Protocol;
using FormalChat.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.FSharp.Collections;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node.Irc;

/// <summary>
/// The IRC port (--irc-port, docs/IRC.md): another door into the same core. Each IRC connection
/// is a client of the core like a native one (ClientConnected, ClientRequested, ClientDisconnected
/// in the inbox's client lane), with ids from a range of its own, so the effect runner can hand
/// every SendToClients to both gateways and each takes only its own. The same limits as the
/// native port: the rate limit, the bounded send queue, and a registration timeout. A PASS goes
/// through the native port's login throttle and password gate (Security/ResumeThrottle.cs,
/// Security/PasswordGate.cs) before its hello reaches the core.
/// </summary>
public sealed class IrcGateway : IAsyncDisposable
{
    /// <summary>IRC client ids start here; native ones count up from 1 and never get this far.</summary>
    public const long FirstClientId = 1L << 40;

    /// <summary>A connection that has not completed NICK and USER by then is closed. One constant
    /// on purpose: once the native port has a --hello-timeout, this becomes that setting.</summary>
    public static readonly TimeSpan DefaultRegistrationTimeout = TimeSpan.FromSeconds(10);

    /// <summary>What a connection event weighs in the inbox: it carries no frame.</summary>
    private const int ConnectionEventBytes = 64;

    /// <summary>The longest line read: 512 bytes with its CR LF (RFC 1459 2.3). The LF is not part
    /// of what the reader measures; the CR is.</summary>
    private const int MaxLineBytesWithoutLf = IrcLine.MaxBytes - 1;

    private readonly TcpAcceptor _acceptor;
    private readonly int _nodeId;
    private readonly ClientLimits _limits;
    private readonly NodeInbox _inbox;
    private readonly ByteGauge _outbound;
    private readonly ResumeThrottle _logins;
    private readonly PasswordGate _passwords;
    private readonly TimeSpan _registrationTimeout;
    private readonly ILogger _log;
    private readonly Security.ClientTls? _tls;
    private readonly ConcurrentDictionary<long, IrcConnection> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private long _nextClientId = FirstClientId - 1;

    /// <param name="outbound">The gauge of bytes waiting for clients that the node watches to push
    /// back on senders: the native gateway's, so IRC clients count in it too.</param>
    /// <param name="logins">The native gateway's login throttle: failed PASS logins count with failed native ones.</param>
    /// <param name="passwords">The native gateway's password gate: a PASS becomes a verdict there, as a hello's password does.</param>
    public IrcGateway(IPEndPoint endpoint, int nodeId, ClientLimits limits, NodeInbox inbox, ByteGauge outbound, ResumeThrottle logins, PasswordGate passwords,
        ILogger log, TimeSpan? registrationTimeout = null, Security.ClientTls? tls = null)
    {
        _logins = logins;
        _passwords = passwords;
        _tls = tls;
        _acceptor = new TcpAcceptor(endpoint, "IRC", log);
        _nodeId = nodeId;
        _limits = limits;
        _inbox = inbox;
        _outbound = outbound;
        _registrationTimeout = registrationTimeout ?? DefaultRegistrationTimeout;
        _log = log;
    }

    public int ConnectedClients => _connections.Count;

    public static bool Owns(long client) => client >= FirstClientId;

    public void Start() => _acceptor.Start(backlog: 1024, ServeAsync);

    /// <summary>Called by the node's loop for every SendToClients: translates the reply for each
    /// IRC client among <paramref name="clients"/> and ignores the rest.</summary>
    public void Send(FSharpSet<long> clients, ServerReply reply)
    {
        // A set is ordered: when its largest id is a native one, none is ours (a cheap test for
        // the room messages of a crowd of native clients).
        if (_connections.IsEmpty || clients.IsEmpty || !Owns(clients.MaximumElement)) return;
        foreach (var client in clients)
        {
            if (Owns(client) && _connections.TryGetValue(client, out var connection)) Deliver(client, connection, reply);
        }
    }

    public void Close(long client, string reason)
    {
        if (!Owns(client) || !_connections.TryGetValue(client, out var connection)) return;
        string closing;
        lock (connection.Session)
        {
            // The core closes a connection whose hello it refused with nick-taken; IRC lets the
            // client send another NICK instead (433, RFC 2812 3.1.2), and the core's session of the
            // connection stays anonymous until then.
            if (!connection.Session.Registered && reason == Wire.errorCodeName(ErrorCode.NickTaken)) return;
            closing = IrcTranslator.ClosingLine(connection.Session, reason);
        }
        connection.Line.TrySend(Frames.Of(closing));
        _ = connection.Line.CloseAfterSendingAsync(reason);
    }

    private void Deliver(long client, IrcConnection connection, ServerReply reply)
    {
        IrcOutcome outcome;
        lock (connection.Session) outcome = IrcTranslator.OnReply(connection.Session, reply);
        foreach (var line in outcome.Lines) connection.Line.TrySend(Frames.Of(line));
        // Follow-up questions (the NAMES after a JOIN, a hello for a NICK sent meanwhile) come from
        // the loop's own thread, which must never wait: they skip the lane's bound; there is at
        // most one per reply. A hello with a PASS is checked first, which takes tens of
        // milliseconds: off the loop's thread.
        foreach (var request in outcome.Requests)
        {
            if (CarriesPassword(request)) _ = Task.Run(() => ForceChecked(client, connection, request));
            else _inbox.Clients.Force(Event.NewClientRequested(client, request), ConnectionEventBytes);
        }
    }

    private void ForceChecked(long client, IrcConnection connection, ClientRequest request)
    {
        if (Checked(client, connection, request, out var refusal) is { } admitted) _inbox.Clients.Force(Event.NewClientRequested(client, admitted), ConnectionEventBytes);
        else _ = connection.Line.CloseAfterSendingAsync(refusal!);
    }

    private static bool CarriesPassword(ClientRequest request) => request is ClientRequest.Hello { Item.Password: not null };

    /// <summary>
    /// A hello with a PASS as the core is to see it: throttled as a native login is (per address
    /// and per nick), and its password turned into a verdict (Security/PasswordGate.cs). Null when
    /// the login is throttled: the client has been told why (<paramref name="refusal"/>), and the
    /// caller closes the connection.
    /// </summary>
    private ClientRequest? Checked(long client, IrcConnection connection, ClientRequest request, out string? refusal)
    {
        refusal = null;
        if (!CarriesPassword(request)) return request;
        var nick = ((ClientRequest.Hello)request).Item.Nick;
        if (_logins.Admit(client, connection.Address, nick) is { } throttled)
        {
            refusal = $"login throttled: {throttled}";
            connection.Line.TrySend(Frames.Of($":{connection.Session.ServerName} 464 * :Password incorrect ({throttled})"));
            connection.Line.TrySend(Frames.Of($"ERROR :Closing Link: * ({refusal})"));
            return null;
        }
        // IRC has no register, so the gate's only refusal (a bad new password) cannot happen here.
        return _passwords.Check(request, out _) ?? request;
    }

    private async Task ServeAsync(Socket socket)
    {
        var line = await ClientTls.OpenAsync(_tls, socket, "IRC", _registrationTimeout, TlsRequired, _limits.MaxQueueBytes, _outbound, _stopping.Token).ConfigureAwait(false);
        if (line is null) return;
        var client = Interlocked.Increment(ref _nextClientId);
        var address = (socket.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        var connection = new IrcConnection(line, new IrcSession(_nodeId, FirstMessageId()), address);
        _connections[client] = connection;
        _inbox.Clients.Force(Event.NewClientConnected(client, NewSessionToken()), ConnectionEventBytes);
        _ = CloseUnlessRegisteredAsync(connection);
        try
        {
            await ReadLinesAsync(client, connection).ConfigureAwait(false);
        }
        finally
        {
            // However the connection ended, the node hears of it once.
            _logins.Disconnected(client);
            _connections.TryRemove(client, out _);
            _inbox.Clients.Force(Event.NewClientDisconnected(client), ConnectionEventBytes);
        }
    }

    private static readonly ReadOnlyMemory<byte> TlsRequired = Frames.Of("ERROR :Closing Link: * (this port accepts TLS only: connect with TLS, e.g. irssi -tls or /connect -tls)\r");

    private async Task ReadLinesAsync(long client, IrcConnection connection)
    {
        var rate = new ClientRateLimit(_limits.RatePerSecond, _limits.Burst);
        var line = connection.Line;
        string? refusal = null;
        var reason = await line.ReadFramesAsync(
            MaxLineBytesWithoutLf,
            async bytes =>
            {
                // IRC text is UTF-8 by convention; a byte that is not becomes U+FFFD, as most servers do.
                var text = System.Text.Encoding.UTF8.GetString(bytes.Span);
                await SlowDownIfOverRate(client, connection, rate).ConfigureAwait(false);
                IrcOutcome outcome;
                lock (connection.Session) outcome = IrcTranslator.OnLine(connection.Session, text);
                foreach (var reply in outcome.Lines) line.TrySend(Frames.Of(reply));
                foreach (var request in outcome.Requests)
                {
                    if (Checked(client, connection, request, out var throttled) is not { } admitted)
                    {
                        refusal = throttled;
                        return false;
                    }
                    await _inbox.Clients.WriteAsync(Event.NewClientRequested(client, admitted), text.Length, _stopping.Token).ConfigureAwait(false);
                }
                return true;
            },
            length =>
            {
                // Documented choice (docs/IRC.md): a line over 512 bytes ends the connection, since
                // the reader cannot find where the next line starts without reading the rest.
                line.TrySend(Frames.Of($":{connection.Session.ServerName} 417 {connection.Session.Target} :Input line was too long"));
                refusal = $"line longer than {IrcLine.MaxBytes} bytes";
                line.TrySend(Frames.Of($"ERROR :Closing Link: {connection.Session.Target} ({refusal})"));
            }).ConfigureAwait(false);
        if (refusal is not null) await line.CloseAfterSendingAsync(refusal).ConfigureAwait(false);
        else await line.CloseAsync(reason).ConfigureAwait(false);
        if (refusal is not null || reason.StartsWith(Frames.TooSlowPrefix, StringComparison.Ordinal))
        {
            _log.LogWarning("IRC client {Client} ({Remote}) disconnected: {Reason}", client, line.Remote, refusal ?? reason);
        }
    }

    private async Task SlowDownIfOverRate(long client, IrcConnection connection, ClientRateLimit rate)
    {
        var wasSlowing = rate.IsSlowing;
        var wait = rate.Take();
        if (wait <= TimeSpan.Zero) return;
        if (!wasSlowing)
        {
            _log.LogInformation("IRC client {Client} ({Remote}) sends faster than {Rate} lines/s: reading it more slowly", client, connection.Line.Remote, _limits.RatePerSecond);
            var session = connection.Session;
            connection.Line.TrySend(Frames.Of($":{session.ServerName} NOTICE {session.Target} :you send more than {_limits.RatePerSecond} lines a second: they are read more slowly from now on; none is lost"));
        }
        await Task.Delay(wait, _stopping.Token).ConfigureAwait(false);
    }

    private async Task CloseUnlessRegisteredAsync(IrcConnection connection)
    {
        try { await Task.Delay(_registrationTimeout, _stopping.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { return; }
        bool registered;
        lock (connection.Session) registered = connection.Session.Registered;
        if (registered || connection.Line.CloseReason is not null) return;
        var reason = $"registration timed out: NICK and USER within {_registrationTimeout.TotalSeconds:0.#} s";
        connection.Line.TrySend(Frames.Of($"ERROR :Closing Link: {connection.Session.Target} ({reason})"));
        await connection.Line.CloseAfterSendingAsync(reason).ConfigureAwait(false);
    }

    /// <summary>The token the core keeps for the connection; IRC has no way to show it back after
    /// a failover, so it only keeps sessions apart.</summary>
    private static string NewSessionToken() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();

    /// <summary>Random, so that the message ids of one nickname differ from one connection to the next.</summary>
    private static long FirstMessageId() => System.Security.Cryptography.RandomNumberGenerator.GetInt32(1, int.MaxValue) * (1L << 20);

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _acceptor.Dispose();
        foreach (var connection in _connections.Values) await connection.Line.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private sealed record IrcConnection(IFrameConnection Line, IrcSession Session, IPAddress Address);
}
