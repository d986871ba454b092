using System.Net;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;
using ProtocolLogLevel = FormalChat.Protocol.NodeState.LogLevel;
using ProtocolNode = FormalChat.Protocol.Node;

namespace FormalChat.Node;

/// <summary>
/// A running node: one loop reads events (sockets, timer, signals) from one channel, calls the
/// F# step, and carries out the effects it returns, in order. No protocol state lives here.
/// </summary>
public sealed class NodeHost
{
    private readonly Config.NodeOptions _options;
    private readonly ProtocolConfig _config;
    private readonly ILogger _log;
    private readonly InputCounters _counters = new();
    private readonly Channel<Event> _events = Channel.CreateUnbounded<Event>(new UnboundedChannelOptions { SingleReader = true });
    private FormalChat.Protocol.NodeState.NodeState _state;

    public NodeHost(Config.NodeOptions options, ILoggerFactory logs)
    {
        _options = options;
        _config = Config.nodeConfigOf(options);
        _log = logs.CreateLogger($"node {options.Id}");
        _state = FormalChat.Protocol.NodeState.init(Config.nodeInfoOf(options));
    }

    public InputCounters Counters => _counters;

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
        await using var clients = new ClientGateway(new IPEndPoint(host, _options.ClientPort), _options.MaxFrameBytes, _events.Writer, _counters, _log);
        await using var peers = new PeerNetwork(new IPEndPoint(host, _options.PeerPort), Wire.maxPeerFrameBytes, _events.Writer, _counters, _log);
        using var discovery = OpenDiscovery();
        clients.Start();
        peers.Start();
        discovery?.Start();
        LogStart(logs);

        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(_options.Timing.HeartbeatIntervalMs));
        _ = Task.Run(async () =>
        {
            while (await timer.WaitForNextTickAsync().ConfigureAwait(false)) _events.Writer.TryWrite(Event.Ticked);
        });
        using var onStop = stop.Register(() => _events.Writer.TryWrite(Event.ShutdownRequested));

        var effects = new EffectRunner(this, clients, peers, discovery, logs);
        await foreach (var next in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (next.IsTicked) logs.HeartbeatTicked();
            var (state, toDo) = ProtocolNode.step(_config, _state, next);
            _state = state;
            if (effects.Run(toDo)) break;
        }
        timer.Dispose();
        await peers.DrainAsync(TimeSpan.FromMilliseconds(500)).ConfigureAwait(false);
        _log.LogInformation("node {Id} stopped", _options.Id);
    }

    private MulticastDiscovery? OpenDiscovery()
    {
        return _options.Timing.MulticastGroup is { } group
            ? new MulticastDiscovery(group.Value, _options.Timing.MulticastInterface, _events.Writer, _counters, _log)
            : null;
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
            timing.HeartbeatIntervalMs, timing.SuspectAfter, logs.DirectoryPath, Config.fsyncPolicyName(_options.Fsync));
    }

    /// <summary>
    /// Carries out effects in list order. Returns true once the node has said goodbye. Log writes
    /// are made as durable as --fsync asks before any later effect leaves the node, since an
    /// acknowledgement may depend on them.
    /// </summary>
    private sealed class EffectRunner(NodeHost host, ClientGateway clients, PeerNetwork peers, MulticastDiscovery? discovery, RoomLogStore logs)
    {
        public bool Run(Microsoft.FSharp.Collections.FSharpList<Effect> effects)
        {
            var stopped = false;
            foreach (var effect in effects)
            {
                if (!(effect.IsAppendToLog || effect.IsRewriteLog || effect.IsLog)) logs.MakeWritesDurable();
                switch (effect)
                {
                    case Effect.SendToPeer send:
                        peers.Send(send.Item1.PeerEndpoint, LineConnection.Frame(Wire.encodePeerMessage(send.Item2)));
                        break;
                    case Effect.Multicast multicast:
                        SendHeartbeat(LineConnection.Frame(Wire.encodePeerMessage(multicast.Item)));
                        break;
                    case Effect.SendToClients send:
                        clients.Send(send.Item1, LineConnection.Frame(Wire.encodeServerReply(send.Item2)));
                        break;
                    case Effect.CloseClient close:
                        clients.Close(close.Item1, close.reason);
                        break;
                    case Effect.AppendToLog append:
                        logs.Append(append.Item1, append.Item2);
                        break;
                    case Effect.RewriteLog rewrite:
                        logs.Rewrite(rewrite.Item1, rewrite.Item2);
                        break;
                    case Effect.Log log:
                        host._log.Log(LevelOf(log.Item1), "{Message}", log.Item2);
                        break;
                    default:
                        if (effect.IsStop) stopped = true;
                        break;
                }
            }
            logs.MakeWritesDurable();
            return stopped;
        }

        /// <summary>Multicast where there is a group; over TCP to the seeds always, and to every
        /// known node when there is no multicast, so seed-only clusters still see heartbeats.</summary>
        private void SendHeartbeat(ReadOnlyMemory<byte> frame)
        {
            discovery?.Send(frame);
            var targets = new HashSet<Endpoint>(host._options.Seeds);
            if (discovery is null)
            {
                foreach (var peer in host._state.Peers) targets.Add(peer.Value.Info.PeerEndpoint);
            }
            foreach (var target in targets) peers.Send(target, frame);
        }

        private static LogLevel LevelOf(ProtocolLogLevel level) =>
            level.IsWarning ? LogLevel.Warning : level.IsInfo ? LogLevel.Information : LogLevel.Debug;
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
