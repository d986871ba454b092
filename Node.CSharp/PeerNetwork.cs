using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using FormalChat.Node.Security;
using FormalChat.Protocol;
using FormalChat.Transport;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node;

/// <summary>
/// TCP links between nodes for ring messages, chat forwarding and seed heartbeats. Each node
/// listens on its peer port and keeps one outgoing link per peer address, opened on first use
/// and reopened after a failure. Frames queued while a link is down are dropped: the protocol
/// recovers through heartbeats and a new election, which is what it does for a crash anyway.
/// Incoming frames go to the inbox's peer lane (heartbeats to its control lane); while that lane
/// is full this node stops reading, and the sender's link fills instead of this node's memory.
/// With a cluster key, every link in either direction first runs the handshake of
/// Security/PeerHandshake.cs; a link that fails it is closed before any frame is read or sent.
/// </summary>
public sealed class PeerNetwork : IAsyncDisposable
{
    /// <summary>Bytes waiting on one link beyond which the peer counts as stuck: the link is
    /// dropped and opened again, as after any broken link.</summary>
    private const long MaxQueuedBytesPerPeer = 256L * 1024 * 1024;

    private readonly TcpAcceptor _acceptor;
    private readonly int _maxFrameBytes;
    private readonly NodeInbox _inbox;
    private readonly InputCounters _counters;
    private readonly ILogger _log;
    private readonly ClusterSecurity _security;
    private readonly ConcurrentDictionary<Endpoint, PeerLink> _links = new();
    private readonly ConcurrentDictionary<IFrameConnection, byte> _incoming = new();
    private readonly CancellationTokenSource _stopping = new();

    public PeerNetwork(IPEndPoint endpoint, int maxFrameBytes, NodeInbox inbox, InputCounters counters, ILogger log, ClusterSecurity security)
    {
        _security = security;
        _acceptor = new TcpAcceptor(endpoint, "peer", log);
        _maxFrameBytes = maxFrameBytes;
        _inbox = inbox;
        _counters = counters;
        _log = log;
    }

    public void Start()
    {
        _acceptor.Start(backlog: 256, ServeAsync);
    }

    /// <summary>Bytes waiting on every outgoing link together.</summary>
    public ByteGauge Outbound { get; } = new();

    /// <summary>Queues a frame for a peer. A frame in a <see cref="SharedFrameBuffer"/> (a turn's
    /// batch) is held by the link until it is written or dropped; the caller may let go of it.</summary>
    public void Send(Endpoint peer, ReadOnlyMemory<byte> frame) =>
        _links.GetOrAdd(peer, _ => new PeerLink(peer, Outbound, _log, _security, _stopping.Token)).Send(frame);

    private async Task ServeAsync(Socket socket)
    {
        // The node that proved the cluster key on this link, when there is a key.
        int? linkPeer = null;
        if (_security.Links is { } authenticator)
        {
            var outcome = await authenticator.RespondAsync(socket, _stopping.Token).ConfigureAwait(false);
            if (!outcome.Succeeded)
            {
                if (!_stopping.IsCancellationRequested) _security.LinkRefused("incoming", $"from {RemoteOf(socket)}", outcome.Failure!);
                socket.Dispose();
                return;
            }
            linkPeer = outcome.PeerId;
        }
        // This side never writes on an incoming link.
        var connection = FramedConnection.Open(socket, maxQueuedBytes: 0);
        _incoming[connection] = 0;
        // A read's frames go into the peer lane together, in the link's order, at the read's end
        // (NodeInbox.cs); a bad frame ends the link after the good ones before it went on.
        var batch = new LaneBatch<Event>(_inbox.Peers, _stopping.Token);
        string? refusal = null;
        await connection.ReadFramesAsync(
            _maxFrameBytes,
            async line =>
            {
                var decoded = Wire.decodePeerMessageUtf8(line);
                if (decoded.IsError)
                {
                    refusal = decoded.ErrorValue.Reason;
                    return false;
                }
                // A node announces only its own leave, on its own link: a leave naming another
                // node is forged (each one can start an election, issue 11's epoch flood).
                if (linkPeer is int sender && decoded.ResultValue is PeerMessage.LeaveAnnounced leave && leave.Item != sender)
                {
                    refusal = $"a leave for node {leave.Item} on the link of node {sender}";
                    return false;
                }
                var received = Event.NewPeerMessageReceived(decoded.ResultValue);
                if (NodeInbox.IsControl(decoded.ResultValue))
                {
                    // The frames before it are in their lane first, as when each went alone.
                    await batch.HandOnAsync().ConfigureAwait(false);
                    if (_inbox.TryControl(received)) return true;
                }
                await batch.AddAsync(received, line.Length).ConfigureAwait(false);
                return true;
            },
            length => { refusal = $"frame of {length} bytes is over the limit"; },
            batch.HandOnAsync
        ).ConfigureAwait(false);
        if (refusal is not null)
        {
            var count = _counters.CountBadPeerFrame();
            _log.LogWarning("peer link from {Remote} sent a bad frame, closing it: {Reason} ({Count} so far)", connection.Remote, refusal, count);
        }
        await connection.DisposeAsync().ConfigureAwait(false);
        _incoming.TryRemove(connection, out _);
    }

    private static string RemoteOf(Socket socket)
    {
        try { return socket.RemoteEndPoint?.ToString() ?? "unknown"; }
        catch (ObjectDisposedException) { return "unknown"; }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _acceptor.Dispose();
        foreach (var link in _links.Values) await link.DisposeAsync().ConfigureAwait(false);
        foreach (var connection in _incoming.Keys) await connection.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>Sends what is queued on every link, up to the deadline: used when leaving.</summary>
    public async Task DrainAsync(TimeSpan deadline)
    {
        var drains = _links.Values.Select(link => link.DrainAsync());
        await Task.WhenAny(Task.WhenAll(drains), Task.Delay(deadline)).ConfigureAwait(false);
    }

    /// <summary>One outgoing link: a queue and a task that connects on demand and writes.</summary>
    private sealed class PeerLink : IAsyncDisposable
    {
        private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(1);

        private readonly Endpoint _peer;
        private readonly ByteGauge _outbound;
        private readonly ILogger _log;
        private readonly ClusterSecurity _security;
        private readonly CancellationToken _stopping;
        // Frames wait here only while the link connects; then they go straight to the connection,
        // whose queue is bounded in bytes.
        private readonly Channel<ReadOnlyMemory<byte>> _queue = Channel.CreateUnbounded<ReadOnlyMemory<byte>>();
        private readonly Task _sender;
        private IFrameConnection? _connection;
        private long _waitingBytes;

        public PeerLink(Endpoint peer, ByteGauge outbound, ILogger log, ClusterSecurity security, CancellationToken stopping)
        {
            _security = security;
            _peer = peer;
            _outbound = outbound;
            _log = log;
            _stopping = stopping;
            _sender = Task.Run(SendLoopAsync);
        }

        public void Send(ReadOnlyMemory<byte> frame)
        {
            if (Interlocked.Read(ref _waitingBytes) + frame.Length > MaxQueuedBytesPerPeer) return; // unreachable peer: dropped like the rest
            Counted(frame.Length);
            SharedFrameBuffer.Retain(frame);
            if (!_queue.Writer.TryWrite(frame))
            {
                Counted(-frame.Length);
                SharedFrameBuffer.Release(frame);
            }
        }

        private void Counted(long bytes)
        {
            Interlocked.Add(ref _waitingBytes, bytes);
            _outbound.Add(bytes);
        }

        private bool TryTake(out ReadOnlyMemory<byte> frame)
        {
            if (!_queue.Reader.TryRead(out frame)) return false;
            Counted(-frame.Length);
            return true;
        }

        public async Task DrainAsync()
        {
            while (Interlocked.Read(ref _waitingBytes) > 0 && !_stopping.IsCancellationRequested) await Task.Delay(5).ConfigureAwait(false);
            if (_connection is { } connection) await connection.CloseAfterSendingAsync("node leaving").ConfigureAwait(false);
        }

        private async Task SendLoopAsync()
        {
            try
            {
                while (await _queue.Reader.WaitToReadAsync(_stopping).ConfigureAwait(false))
                {
                    if (_connection is null || _connection.CloseReason is not null)
                    {
                        _connection = await ConnectAsync().ConfigureAwait(false);
                        if (_connection is null)
                        {
                            while (TryTake(out var dropped)) SharedFrameBuffer.Release(dropped);
                            continue;
                        }
                    }
                    while (TryTake(out var frame))
                    {
                        // The connection takes its own hold on the frame; this queue's hold ends here.
                        var sent = _connection.TrySend(frame);
                        SharedFrameBuffer.Release(frame);
                        if (!sent)
                        {
                            _log.LogWarning("link to peer {Peer} dropped: {Reason}", _peer, _connection.CloseReason ?? "closed");
                            break;
                        }
                    }
                }
            }
            catch (OperationCanceledException) { }
        }

        private async Task<IFrameConnection?> ConnectAsync()
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
            timeout.CancelAfter(ConnectTimeout);
            try
            {
                await socket.ConnectAsync(IPAddress.Parse(_peer.Host), _peer.Port, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception error) when (error is SocketException or OperationCanceledException or FormatException)
            {
                socket.Dispose();
                _log.LogDebug("peer {Peer} is unreachable: {Reason}; frames for it are dropped", _peer, error.Message);
                return null;
            }
            if (_security.Links is { } authenticator)
            {
                var outcome = await authenticator.InitiateAsync(socket, _peer.ToString(), _stopping).ConfigureAwait(false);
                if (!outcome.Succeeded)
                {
                    // Nothing is sent to a node that cannot prove the key: the frames queued for it
                    // are dropped, as for an unreachable peer.
                    if (!_stopping.IsCancellationRequested) _security.LinkRefused("outgoing", $"to {_peer}", outcome.Failure!);
                    socket.Dispose();
                    return null;
                }
            }
            var connection = FramedConnection.Open(socket, MaxQueuedBytesPerPeer, _outbound);
            // The other side never writes on this link; reading only notices when it goes away.
            _ = connection.ReadFramesUntilClosedAsync(1024, _ => true);
            return connection;
        }

        public async ValueTask DisposeAsync()
        {
            _queue.Writer.TryComplete();
            if (_connection is { } connection) await connection.DisposeAsync().ConfigureAwait(false);
            await Task.WhenAny(_sender, Task.Delay(100)).ConfigureAwait(false);
            // Frames never sent go back to the pool (the send loop may still take some: each is
            // taken once, by it or here).
            if (_sender.IsCompleted) while (TryTake(out var unsent)) SharedFrameBuffer.Release(unsent);
        }
    }
}
