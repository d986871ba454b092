using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using FormalChat.Node.Monitoring;
using FormalChat.Node.Security;
using FormalChat.Node.Irc;
using FormalChat.CommandLine;
using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using FormalChat.Transport;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;
using ProtocolLogLevel = FormalChat.Protocol.NodeState.LogLevel;
using ProtocolNode = FormalChat.Protocol.Node;

namespace FormalChat.Node;

/// <summary>
/// A running node: one loop reads events (sockets, timer, signals) from the inbox, calls the F#
/// step, and carries out the effects it returns, in order. No protocol state lives here.
/// </summary>
public sealed class NodeHost
{
    /// <summary>Peer and client events one turn takes at most before it looks at the control lane again.</summary>
    private const int MaxDataEventsPerTurn = 512;

    /// <summary>A turn stops taking peer and client events after this long: a tick or a heartbeat
    /// that arrives meanwhile waits at most about this, far less than any heartbeat interval.</summary>
    private static readonly TimeSpan MaxTurn = TimeSpan.FromMilliseconds(10);

    /// <summary>While more than this waits to be sent to clients, or to peers, the node reads no
    /// client requests: the senders wait in TCP, and memory stays bounded.</summary>
    private const long ClientOutboundHighWater = 64L * 1024 * 1024;
    private const long PeerOutboundHighWater = 16L * 1024 * 1024;

    /// <summary>How often a held-back client lane is looked at again.</summary>
    private static readonly TimeSpan PausedPoll = TimeSpan.FromMilliseconds(2);

    /// <summary>A node asked to stop that has not stopped by then exits anyway (its logs survive a
    /// killed process under every --fsync policy).</summary>
    private static readonly TimeSpan StopDeadline = TimeSpan.FromMilliseconds(1900);

    private readonly NodeOptions _options;
    private readonly ProtocolConfig _config;
    private readonly ILogger _log;
    private readonly InputCounters _counters = new();
    private readonly NodeInbox _inbox = new();
    private readonly LoopWatch _watch;
    private readonly ClusterSecurity _security;
    /// <summary>TLS on the client and IRC ports; null without --tls-cert.</summary>
    private readonly ClientTls? _clientTls;
    private FormalChat.Protocol.NodeState.NodeState _state;
    /// <summary>Counted as the loop steps; null without --metrics-port (no cost then).</summary>
    private readonly NodeMetrics? _metrics;
    /// <summary>The spec actions taken, as NDJSON; null without --trace-file (no cost then).</summary>
    private readonly SpecTraceWriter? _trace;
    /// <summary>The effects of the turn being taken, one list per step; kept from turn to turn
    /// (and emptied after each), so a turn allocates no list of its own.</summary>
    private readonly List<FSharpList<Effect>> _turn = new(MaxDataEventsPerTurn);

    public NodeHost(NodeOptions options, ILoggerFactory logs)
    {
        _options = options;
        _config = NodeCommandLine.protocolConfig(options);
        _log = logs.CreateLogger($"node {options.Id}");
        _watch = new LoopWatch(options.Timing.HeartbeatIntervalMs, _log);
        // Throws ClusterKeyException before anything listens: no key, no node (docs/SECURITY.md).
        _security = ClusterSecurity.FromOptions(options, _counters, _log);
        // Throws TlsSetupException likewise when --tls-cert/--tls-key cannot be used.
        _clientTls = ClientTls.FromOptions(options, _counters, _log);
        _state = FormalChat.Protocol.NodeState.startNumberingPosts(FirstPostId(), FormalChat.Protocol.NodeState.init(NodeCommandLine.nodeInfo(options)));
        if (options.MetricsPort is not null) _metrics = new NodeMetrics();
        if (options.TraceFile is not null) _trace = new SpecTraceWriter(options.TraceFile.Value, options.Timing.SuspectAfter);
    }

    public InputCounters Counters => _counters;

    /// <summary>
    /// The ids this run gives posts sent without one count up from here (NodeState.NextPostId):
    /// microseconds since 2020, as Client.CSharp numbers its own, so a restarted node starts past
    /// every id its earlier run gave (it never gives a million a second) and stays under 2^53.
    /// </summary>
    private static long FirstPostId() =>
        (DateTime.UtcNow - new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc)).Ticks / 10;

    /// <summary>
    /// Reads the room logs back, then runs until <paramref name="stop"/> fires; then announces the
    /// leave and returns. Throws <see cref="StorageException"/> when the logs cannot be kept.
    /// </summary>
    public async Task RunAsync(CancellationToken stop)
    {
        // Disposed last: the final fsync comes after the last effect.
        await using var logs = RoomLogStore.Open(_options.DataDir, _options.Fsync, _log);
        _state = FormalChat.Protocol.NodeState.recover(logs.Recovered, _state);
        var host = IPAddress.Parse(_options.Host);
        await using var clients = new ClientGateway(new IPEndPoint(host, _options.ClientPort), _options.MaxFrameBytes, _options.Clients, _inbox, _counters, _log, _clientTls, AccountRecord);
        await using var peers = new PeerNetwork(new IPEndPoint(host, _options.PeerPort), Wire.maxPeerFrameBytes, _inbox, _counters, _log, _security);
        using var discovery = OpenDiscovery();
        await using var irc = OpenIrc(host, clients);
        clients.Start();
        irc?.Start();
        peers.Start();
        discovery?.Start();
        await using var monitor = await StartMonitorAsync(host, clients, peers).ConfigureAwait(false);
        LogStart(logs);
        _security.LogStart();
        ClientTls.LogStart(_clientTls, _options, _log);

        // The ticker only rings; the heartbeat itself is sent by the loop when it takes the tick,
        // so a node whose loop is stuck sends none and is suspected, as it should be.
        using var ticker = new Ticker(TimeSpan.FromMilliseconds(_options.Timing.HeartbeatIntervalMs), () => _inbox.Control(Event.Ticked));
        using var onStop = stop.Register(() =>
        {
            _inbox.Control(Event.ShutdownRequested);
            _ = Task.Delay(StopDeadline).ContinueWith(_ =>
            {
                _log.LogWarning("node {Id} did not stop within {Deadline} ms; exiting now", _options.Id, StopDeadline.TotalMilliseconds);
                Environment.Exit(0);
            }, TaskScheduler.Default);
        });

        var effects = new EffectRunner(this, clients, peers, discovery, logs, irc);
        await DedicatedThread.RunAsync($"node {_options.Id} loop", () => Loop(clients, peers, logs, effects)).ConfigureAwait(false);
        ticker.Dispose();
        await peers.DrainAsync(TimeSpan.FromMilliseconds(500)).ConfigureAwait(false);
        _log.LogInformation("node {Id} stopped", _options.Id);
    }

    /// <summary>The nick's account record as of the last step, for the client gateway to check a password against.
    /// The nick is as the client typed it: one that is no valid nickname has no account (the core refuses it).</summary>
    private string? AccountRecord(string nick)
    {
        if (Chat.validateNick(nick) is not { IsOk: true } valid) return null;
        var state = Volatile.Read(ref _state);
        var record = Accounts.recordOf(valid.ResultValue, FormalChat.Protocol.NodeState.historyOf(Accounts.room, state));
        return record is null ? null : record.Value;
    }

    /// <summary>
    /// The loop, on a thread of its own: under load the thread pool's queue holds thousands of
    /// socket completions, and a tick or a heartbeat must not wait behind them.
    /// </summary>
    private void Loop(ClientGateway clients, PeerNetwork peers, RoomLogStore logs, EffectRunner effects)
    {
        if (!DedicatedThread.PriorityRaised)
        {
            _log.LogInformation("the loop runs at normal priority (a higher one needs CAP_SYS_NICE): on saturated cores, chat traffic can delay its heartbeats");
        }
        // Made once: it runs between the steps of every turn.
        Action takeControlMidTurn = () => TakeControlMidTurn(logs, effects);
        while (true)
        {
            _watch.TurnStarting();
            var (handled, turn) = TakeTurn(clients, peers, logs, effects);
            if (handled == 0 && turn.Count == 0)
            {
                var heldBack = _inbox.Clients.QueuedBytes > 0 && ClientLaneHeldBack(clients, peers);
                _watch.Woke(_inbox.Wait(heldBack ? PausedPoll : Timeout.InfiniteTimeSpan));
                continue;
            }
            // The turn's spec actions are on disk before any of its messages leave (SpecTraceWriter).
            _trace?.Flush();
            var effectsStarted = Stopwatch.GetTimestamp();
            // A turn whose steps asked for nothing has no writes to make durable and nothing to send.
            var stopped = turn.Count > 0 && effects.Run(turn, takeControlMidTurn);
            _watch.TurnEnded(handled, effectsStarted);
            // The effects' messages are sent: nothing should keep them alive until the next turn.
            turn.Clear();
            if (stopped)
            {
                _trace?.Dispose();
                return;
            }
        }
    }

    /// <summary>Effects of control events stepped while a turn's effects were being carried out:
    /// they are carried out first in the next turn, in the order stepped.</summary>
    private readonly List<FSharpList<Effect>> _deferred = new();

    /// <summary>
    /// One turn of the loop: every control event, then peer events, then client events while the
    /// node keeps up, within a bounded count and time. Returns the effects of all its steps, in
    /// order; they are carried out together (one log write and fsync for the whole turn).
    /// </summary>
    private (int Handled, List<FSharpList<Effect>> Effects) TakeTurn(ClientGateway clients, PeerNetwork peers, RoomLogStore logs, EffectRunner effects)
    {
        var turn = _turn;
        turn.Clear();
        turn.AddRange(_deferred);
        _deferred.Clear();
        var handled = 0;
        var started = Stopwatch.GetTimestamp();
        bool InTime() => handled < MaxDataEventsPerTurn && Stopwatch.GetElapsedTime(started) < MaxTurn;
        void Step(Event next)
        {
            var toDo = StepOne(next, logs);
            handled++;
            if (!toDo.IsEmpty) turn.Add(toDo);
        }
        while (_inbox.TryReadControl(out var control))
        {
            TakeControl(control, logs, effects, turn);
            handled++;
        }
        while (InTime() && _inbox.Peers.TryRead(out var fromPeer)) Step(fromPeer);
        if (!ClientLaneHeldBack(clients, peers))
        {
            while (InTime() && !SendingFallsBehind(clients, peers) && _inbox.Clients.TryRead(out var fromClient)) Step(fromClient);
        }
        return (handled, turn);
    }

    /// <summary>One event through the core: the new state is published, the effects returned.</summary>
    private FSharpList<Effect> StepOne(Event next, RoomLogStore logs)
    {
        var stepStarted = _watch.Starting();
        if (next.IsTicked) logs.HeartbeatTicked();
        var before = _state;
        var (state, toDo) = ProtocolNode.step(_config, _state, next);
        if (TestFault.Active) state = TestFault.Apply(next, before, state);
        _trace?.Stepped(next, before, state, toDo);
        // Published for the monitor's thread: a reference to an immutable state.
        Volatile.Write(ref _state, state);
        if (_metrics is not null)
        {
            _metrics.Stepped(next, before, state);
            _metrics.LeaderChecked(before, state);
        }
        _watch.Stepped(next, stepStarted);
        return toDo;
    }

    /// <summary>
    /// Control first, also while a turn's effects are carried out (a flood's turn can spend tens
    /// of milliseconds sending): a tick or a heartbeat that arrives meanwhile is stepped at once.
    /// </summary>
    private void TakeControlMidTurn(RoomLogStore logs, EffectRunner effects)
    {
        while (_inbox.TryReadControl(out var control)) TakeControl(control, logs, effects, _deferred);
    }

    /// <summary>
    /// Steps a control event. A tick's heartbeat leaves at once, before the turn's other events
    /// are stepped and its writes made, so no amount of chat delays this node's heartbeats by
    /// more than one step. Heartbeats travel unordered anyway (by multicast, and ahead of their
    /// TCP link's order: NodeInbox.IsControl); everything else the step asked for joins
    /// <paramref name="rest"/>, in order, where its log writes still go before its sends.
    /// </summary>
    private void TakeControl(Event control, RoomLogStore logs, EffectRunner effects, List<FSharpList<Effect>> rest)
    {
        var toDo = StepOne(control, logs);
        if (toDo.IsEmpty) return;
        if (!control.IsTicked)
        {
            if (AnsweredAtOnce(control, rest)) effects.RunNow(toDo);
            else rest.Add(toDo);
            return;
        }
        // The tick's spec action is on disk before its heartbeat leaves (SpecTraceWriter).
        _trace?.Flush();
        var later = new List<Effect>();
        for (var next = toDo; !next.IsEmpty; next = next.Tail)
        {
            if (next.Head.IsMulticast) effects.RunNow(next.Head);
            else later.Add(next.Head);
        }
        if (later.Count > 0) rest.Add(ListModule.OfSeq(later));
    }

    /// <summary>
    /// A status request is answered as soon as it is stepped, not after the turn's other sends (a
    /// flood's turn sends to every receiver): it changes no state and writes nothing, so only the
    /// log writes of steps before it could be missing, and it waits for them when there are any.
    /// </summary>
    private static bool AnsweredAtOnce(Event control, List<FSharpList<Effect>> rest) =>
        control is Event.ClientRequested requested && NodeInbox.IsControl(requested.Item2) && !rest.Exists(WritesLog);

    private static bool WritesLog(FSharpList<Effect> effects)
    {
        for (var rest = effects; !rest.IsEmpty; rest = rest.Tail)
        {
            if (rest.Head.IsAppendToLog || rest.Head.IsRewriteLog) return true;
        }
        return false;
    }

    /// <summary>Client requests wait while the node is behind on sending, or while the protocol has
    /// as many posts in flight as it takes (ProtocolNode.acceptsClientRequests).</summary>
    private bool ClientLaneHeldBack(ClientGateway clients, PeerNetwork peers) =>
        SendingFallsBehind(clients, peers) || !ProtocolNode.acceptsClientRequests(_state);

    private static bool SendingFallsBehind(ClientGateway clients, PeerNetwork peers) =>
        clients.Outbound.Bytes > ClientOutboundHighWater || peers.Outbound.Bytes > PeerOutboundHighWater;

    private async Task<MonitorServer?> StartMonitorAsync(IPAddress host, ClientGateway clients, PeerNetwork peers)
    {
        if (_options.MetricsPort is null) return null;
        var gauges = new NodeGauges(clients, peers, _inbox, _counters, _options.DataDir);
        return await MonitorServer.StartAsync(new IPEndPoint(host, _options.MetricsPort.Value), _options.ClientPort,
            () => Observation.ofState(_config, Volatile.Read(ref _state)), gauges, _log).ConfigureAwait(false);
    }

    private MulticastDiscovery? OpenDiscovery()
    {
        return _options.Timing.MulticastGroup is { } group
            ? new MulticastDiscovery(group.Value, _options.Timing.MulticastInterface, _inbox, _counters, _log, _security)
            : null;
    }

    /// <summary>The IRC port, when --irc-port asks for one: IRC clients count with the native
    /// ones in the bytes the node waits on (clients.Outbound), and their PASS logins in the same
    /// throttle and password gate.</summary>
    private IrcGateway? OpenIrc(IPAddress host, ClientGateway clients)
    {
        if (_options.IrcPort is not { } port) return null;
        _log.LogInformation("node {Id}: IRC clients on {Host}:{IrcPort}", _options.Id, _options.Host, port.Value);
        return new IrcGateway(new IPEndPoint(host, port.Value), _options.Id, _options.Clients, _inbox, clients.Outbound, clients.Logins, clients.Passwords, _log, tls: _clientTls);
    }

    private void LogStart(RoomLogStore logs)
    {
        var timing = _options.Timing;
        var discovery = timing.MulticastGroup is { } group
            ? $"multicast {group.Value} on {timing.MulticastInterface} (TTL 1)"
            : "no multicast";
        var seeds = _options.Seeds.IsEmpty ? "" : $", seeds {string.Join(", ", _options.Seeds)}";
        _log.LogInformation(
            "node {Id} up: clients on {Host}:{ClientPort}, peers on {Host}:{PeerPort}; {Discovery}{Seeds}; heartbeat every {Heartbeat} ms, suspect after {K} missed; room logs in {DataDir} (fsync {Fsync})",
            _options.Id, _options.Host, _options.ClientPort, _options.Host, _options.PeerPort, discovery, seeds,
            timing.HeartbeatIntervalMs, timing.SuspectAfter, logs.DirectoryPath, _options.Fsync.Name);
    }

    /// <summary>
    /// Carries out the effects of one turn. Returns true once the node has said goodbye. Group
    /// commit: the turn's log writes go first, in order, and are made as durable as --fsync asks
    /// once; then everything else, in order. An acknowledgement may depend on a write, so nothing
    /// leaves the node before the writes; a send that moves after a later step's write is only
    /// later, which the protocol allows of any message.
    /// </summary>
    private sealed class EffectRunner(NodeHost host, ClientGateway clients, PeerNetwork peers, MulticastDiscovery? discovery, RoomLogStore logs, IrcGateway? irc)
    {
        private readonly Wire.FrameWriter _frames = new();
        private readonly PeerFrames _peerFrames = new();
        private readonly ClientFrameRuns _clientRuns = new(clients.Send);
        private readonly PeerFrameBatches _peerBatches = new(peers.Send);

        /// <summary>Carries out a turn's effects; <paramref name="betweenSteps"/> runs after each
        /// step's sends, to take control events that came meanwhile.</summary>
        public bool Run(List<FSharpList<Effect>> turn, Action betweenSteps)
        {
            // The effect lists are walked by head and tail: a foreach would allocate an enumerator per list.
            foreach (var effects in turn)
            {
                for (var rest = effects; !rest.IsEmpty; rest = rest.Tail)
                {
                    var effect = rest.Head;
                    if (effect is Effect.AppendToLog append)
                    {
                        logs.Append(append.Item1.Value, append.Item2);
                        host._metrics?.Logged(append.Item2.Length);
                    }
                    else if (effect is Effect.RewriteLog rewrite) logs.Rewrite(rewrite.Item1.Value, rewrite.Item2);
                }
            }
            var syncStarted = Stopwatch.GetTimestamp();
            logs.MakeWritesDurable();
            host._metrics?.Synced(Stopwatch.GetElapsedTime(syncStarted));
            var stopped = false;
            foreach (var effects in turn)
            {
                for (var rest = effects; !rest.IsEmpty; rest = rest.Tail) stopped |= Run(rest.Head);
                if (!stopped) betweenSteps();
            }
            _clientRuns.Flush();
            _peerBatches.Flush();
            return stopped;
        }

        /// <summary>An effect that leaves at once, outside any turn (a heartbeat).</summary>
        public void RunNow(Effect effect) => Run(effect);

        /// <summary>Effects that write nothing, carried out at once, outside any turn (a status
        /// reply): the frames queued before them go first, then they leave.</summary>
        public void RunNow(FSharpList<Effect> effects)
        {
            for (var rest = effects; !rest.IsEmpty; rest = rest.Tail) Run(rest.Head);
            _clientRuns.Flush();
            _peerBatches.Flush();
        }

        private bool Run(Effect effect)
        {
            switch (effect)
            {
                case Effect.SendToPeer send:
                    var peerFrame = _peerFrames.Encode(send.Item2, _frames);
                    _peerBatches.Add(send.Item1.PeerEndpoint, peerFrame);
                    host._metrics?.SentToPeer(send.Item2, peerFrame.Length);
                    break;
                case Effect.Multicast multicast:
                    SendHeartbeat(_frames.PeerMessageLine(multicast.Item));
                    break;
                case Effect.SendToClients send:
                    // Every status says whether this node authenticates the cluster (Security/ClusterSecurity.cs).
                    var clientFrame = send.Item2.IsStatusReported
                        ? Frames.Of(StatusAnnotation.AddClientSecurity(host._security.AnnotateStatus(Wire.encodeServerReply(send.Item2)), host._clientTls is not null, host._counters))
                        : _frames.ServerReplyLine(send.Item2);
                    // Marked before it is sent: a client that answers at once must find its last hello settled.
                    if (send.Item2.IsWelcome) clients.MarkWelcomed(send.Item1);
                    else if (send.Item2 is ServerReply.ErrorReply refused) clients.MarkRefused(send.Item1, refused.code);
                    _clientRuns.Add(send.Item1, clientFrame);
                    host._metrics?.SentToClients(send.Item2, send.Item1.Count, clientFrame.Length);
                    irc?.Send(send.Item1, send.Item2);
                    break;
                case Effect.CloseClient close:
                    // What the client was sent before it is closed goes first.
                    _clientRuns.Flush();
                    clients.Close(close.Item1, close.reason);
                    irc?.Close(close.Item1, close.reason);
                    break;
                case Effect.Log log:
                    host._log.Log(LevelOf(log.Item1), "{Message}", log.Item2);
                    break;
                default:
                    return effect.IsStop;
            }
            return false;
        }

        /// <summary>Multicast where there is a group; over TCP to the seeds always, and to every
        /// known node when there is no multicast, so seed-only clusters still see heartbeats.</summary>
        private void SendHeartbeat(ReadOnlyMemory<byte> frame)
        {
            discovery?.Send(frame);
            foreach (var target in ProtocolNode.heartbeatTargets(host._options.Seeds, discovery is not null, host._state)) peers.Send(target, frame);
        }

        private static LogLevel LevelOf(ProtocolLogLevel level) =>
            level.IsWarning ? LogLevel.Warning : level.IsInfo ? LogLevel.Information : LogLevel.Debug;
    }

    /// <summary>A message the core sends to every peer is the same object in each effect: it is
    /// encoded once, and the same bytes go on every link.</summary>
    private sealed class PeerFrames
    {
        private PeerMessage? _last;
        private ReadOnlyMemory<byte> _lastFrame;

        public ReadOnlyMemory<byte> Encode(PeerMessage message, Wire.FrameWriter frames)
        {
            if (!ReferenceEquals(message, _last))
            {
                _last = message;
                _lastFrame = frames.PeerMessageLine(message);
            }
            return _lastFrame;
        }
    }
}

/// <summary>SIGINT and SIGTERM become one cancellation, so a node always leaves gracefully.</summary>
public static class StopSignal
{
    public static (CancellationTokenSource Source, IDisposable[] Registrations) Create()
    {
        var source = new CancellationTokenSource();
        var registrations = new IDisposable[]
        {
            PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; source.Cancel(); }),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; source.Cancel(); }),
        };
        return (source, registrations);
    }
}
