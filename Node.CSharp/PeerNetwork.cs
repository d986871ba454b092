using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node;

/// <summary>
/// TCP links between nodes for ring messages, chat forwarding and seed heartbeats. Each node
/// listens on its peer port and keeps one outgoing link per peer address, opened on first use
/// and reopened after a failure. Frames queued while a link is down are dropped: the protocol
/// recovers through heartbeats and a new election, which is what it does for a crash anyway.
/// </summary>
public sealed class PeerNetwork : IAsyncDisposable
{
    private const int MaxQueuedFramesPerPeer = 65536;

    private readonly TcpAcceptor _acceptor;
    private readonly int _maxFrameBytes;
    private readonly ChannelWriter<Event> _events;
    private readonly InputCounters _counters;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, PeerLink> _links = new();
    private readonly ConcurrentDictionary<LineConnection, byte> _incoming = new();
    private readonly CancellationTokenSource _stopping = new();

    public PeerNetwork(IPEndPoint endpoint, int maxFrameBytes, ChannelWriter<Event> events, InputCounters counters, ILogger log)
    {
        _acceptor = new TcpAcceptor(endpoint, "peer", log);
        _maxFrameBytes = maxFrameBytes;
        _events = events;
        _counters = counters;
        _log = log;
    }

    public void Start()
    {
        _acceptor.Start(backlog: 256, ServeAsync);
    }

    public void Send(Endpoint peer, ReadOnlyMemory<byte> frame) =>
        _links.GetOrAdd(peer.ToString(), _ => new PeerLink(peer, _log, _stopping.Token)).Send(frame);

    private async Task ServeAsync(Socket socket)
    {
        var connection = new LineConnection(socket, maxQueuedFrames: 16);
        _incoming[connection] = 0;
        string? refusal = null;
        await connection.ReadLinesAsync(
            _maxFrameBytes,
            line =>
            {
                var decoded = Wire.decodePeerMessage(line);
                if (decoded.IsOk)
                {
                    _events.TryWrite(Event.NewPeerMessageReceived(decoded.ResultValue));
                    return true;
                }
                refusal = decoded.ErrorValue.Reason;
                return false;
            },
            length => { refusal = $"frame of {length} bytes is over the limit"; return false; }
        ).ConfigureAwait(false);
        if (refusal is not null)
        {
            var count = _counters.CountBadPeerFrame();
            _log.LogWarning("peer link from {Remote} sent a bad frame, closing it: {Reason} ({Count} so far)", connection.Remote, refusal, count);
        }
        await connection.DisposeAsync().ConfigureAwait(false);
        _incoming.TryRemove(connection, out _);
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
        private readonly ILogger _log;
        private readonly CancellationToken _stopping;
        private readonly Channel<ReadOnlyMemory<byte>> _queue =
            Channel.CreateBounded<ReadOnlyMemory<byte>>(new BoundedChannelOptions(MaxQueuedFramesPerPeer)
            {
                SingleReader = true,
                FullMode = BoundedChannelFullMode.DropOldest,
            });
        private readonly Task _sender;
        private LineConnection? _connection;

        public PeerLink(Endpoint peer, ILogger log, CancellationToken stopping)
        {
            _peer = peer;
            _log = log;
            _stopping = stopping;
            _sender = Task.Run(SendLoopAsync);
        }

        public void Send(ReadOnlyMemory<byte> frame) => _queue.Writer.TryWrite(frame);

        public async Task DrainAsync()
        {
            while (_queue.Reader.Count > 0 && !_stopping.IsCancellationRequested) await Task.Yield();
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
                            while (_queue.Reader.TryRead(out _)) { }
                            continue;
                        }
                    }
                    while (_queue.Reader.TryRead(out var frame)) _connection.TrySend(frame);
                }
            }
            catch (OperationCanceledException) { }
        }

        private async Task<LineConnection?> ConnectAsync()
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
            var connection = new LineConnection(socket, MaxQueuedFramesPerPeer);
            // The other side never writes on this link; reading only notices when it goes away.
            _ = connection.ReadLinesAsync(1024, _ => true).ContinueWith(read => connection.CloseAsync(read.Result), TaskScheduler.Default);
            return connection;
        }

        public async ValueTask DisposeAsync()
        {
            _queue.Writer.TryComplete();
            if (_connection is { } connection) await connection.DisposeAsync().ConfigureAwait(false);
            await Task.WhenAny(_sender, Task.Delay(100)).ConfigureAwait(false);
        }
    }
}
