using System.Diagnostics;
using FormalChat.Protocol;
using Microsoft.FSharp.Core;
using Microsoft.FSharp.Reflection;
using Prometheus;
using ProtocolState = FormalChat.Protocol.NodeState.NodeState;
using Event = FormalChat.Protocol.NodeState.Event;

namespace FormalChat.Node.Monitoring;

/// <summary>
/// The node's Prometheus metrics. One node runs per process, so they live in prometheus-net's
/// default registry, whose own collectors add process_* (CPU, memory, file descriptors) and
/// dotnet_* (GC collections and pause, heap) metrics. Counters are bumped by the loop as it steps;
/// gauges are read from the shell and the newest state when Prometheus scrapes.
/// </summary>
public sealed class NodeMetrics
{
    private static readonly string[] PeerKinds = CaseNames<PeerMessage>();
    private static readonly string[] RequestKinds = CaseNames<ClientRequest>();
    private static readonly string[] ReplyKinds = CaseNames<ServerReply>();

    // Label children resolved once, indexed by the F# union's tag: no lookup per frame.
    private readonly Counter.Child[] _peerFramesIn;
    private readonly Counter.Child[] _clientFramesIn;
    private readonly Counter.Child[] _peerFramesOut;
    private readonly Counter.Child[] _clientFramesOut;
    private readonly Counter.Child _ticks;
    private readonly Counter _connections = Metrics.CreateCounter("formalchat_client_connections_total", "Client connections accepted.");
    private readonly Counter.Child _peerBytesOut;
    private readonly Counter.Child _clientBytesOut;
    private readonly Counter _acknowledged = Metrics.CreateCounter("formalchat_room_messages_acknowledged_total",
        "Room messages of this node's clients committed and shown back to their sender (the acknowledgement).");
    private readonly Counter _logged = Metrics.CreateCounter("formalchat_log_messages_appended_total", "Room messages appended to this node's logs (owned and backed-up rooms).");
    private readonly Counter _electionsStarted = Metrics.CreateCounter("formalchat_elections_started_total", "Election rounds this node opened.");
    private readonly Counter _electionsWon = Metrics.CreateCounter("formalchat_elections_won_total", "Elections that made this node the leader.");
    private readonly Counter _suspicions = Metrics.CreateCounter("formalchat_suspicions_total", "Peers this node's failure detector removed from its view.");
    private readonly Histogram _postToAck = Metrics.CreateHistogram("formalchat_post_to_ack_seconds",
        "Time from a client's post arriving to its acknowledgement (the committed message shown back to the sender).",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0002, 2, 16) });
    private readonly Histogram _fsync = Metrics.CreateHistogram("formalchat_log_sync_seconds", "Time to make a turn's log writes durable (per --fsync).",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.00005, 2, 16) });

    // A post waits here for its acknowledgement; bounded, because a client may never see one (it
    // left, or the node lost its quorum): past the bound the oldest timings are dropped, not the posts.
    private const int MaxPostsTimed = 100_000;
    private readonly Dictionary<(string Nick, string Room, long Id), long> _postedAt = new();

    public NodeMetrics()
    {
        var framesIn = Metrics.CreateCounter("formalchat_frames_received_total", "Frames and events the node's loop took, by link and kind.", "link", "kind");
        var framesOut = Metrics.CreateCounter("formalchat_frames_sent_total", "Frames sent, by link and kind (a frame to N clients counts N).", "link", "kind");
        _peerFramesIn = PeerKinds.Select(kind => framesIn.WithLabels("peer", kind)).ToArray();
        _clientFramesIn = RequestKinds.Select(kind => framesIn.WithLabels("client", kind)).ToArray();
        _peerFramesOut = PeerKinds.Select(kind => framesOut.WithLabels("peer", kind)).ToArray();
        _clientFramesOut = ReplyKinds.Select(kind => framesOut.WithLabels("client", kind)).ToArray();
        _ticks = framesIn.WithLabels("timer", "Ticked");
        var bytesOut = Metrics.CreateCounter("formalchat_sent_bytes_total", "Bytes of frames queued for sending, by link.", "link");
        _peerBytesOut = bytesOut.WithLabels("peer");
        _clientBytesOut = bytesOut.WithLabels("client");
    }

    /// <summary>Called by the loop after each step with the states before and after it.</summary>
    public void Stepped(Event happened, ProtocolState before, ProtocolState after)
    {
        switch (happened)
        {
            case Event.PeerMessageReceived peer:
                _peerFramesIn[peer.Item.Tag].Inc();
                break;
            case Event.ClientRequested request:
                _clientFramesIn[request.Item2.Tag].Inc();
                if (request.Item2 is ClientRequest.Say say
                    && Chat.namedSession(request.Item1, after.Chat) is { } session
                    && PostId(say.clientMessageId, before, after) is var id and not 0)
                {
                    if (_postedAt.Count >= MaxPostsTimed) _postedAt.Clear();
                    _postedAt.TryAdd((session.Value.Nick.Value, say.room, id), Stopwatch.GetTimestamp());
                }
                break;
            case Event.ClientConnected:
                _connections.Inc();
                break;
        }
        var was = before.Coordination;
        var now = after.Coordination;
        // A round this node opened (on a tick, or when a heartbeat changed its view): it is a
        // participant of a newer epoch that no election message brought.
        var electionMessage = happened is Event.PeerMessageReceived { Item.IsElection: true };
        if (!electionMessage && !was.Participant && now.Participant && now.Epoch > was.Epoch) _electionsStarted.Inc();
        if (!happened.IsTicked) return;
        _ticks.Inc();
        _suspicions.Inc(was.View.Count(id => !now.View.Contains(id)));
    }

    /// <summary>The id the post will come back with: the client's, or the one the node gave a
    /// post sent without (NodeState.NextPostId; 0 when the say was refused).</summary>
    private static long PostId(long clientMessageId, ProtocolState before, ProtocolState after) =>
        clientMessageId > 0 ? clientMessageId : after.NextPostId != before.NextPostId ? -before.NextPostId : 0;

    /// <summary>Called once per step, after <see cref="Stepped"/>: a leader change to this node is
    /// an election won, whatever message completed it.</summary>
    public void LeaderChecked(ProtocolState before, ProtocolState after)
    {
        var self = after.Info.Id;
        if (LeaderOf(after) == self && LeaderOf(before) != self) _electionsWon.Inc();
    }

    public void SentToPeer(PeerMessage message, int bytes)
    {
        _peerFramesOut[message.Tag].Inc();
        _peerBytesOut.Inc(bytes);
    }

    public void SentToClients(ServerReply reply, int clients, int bytes)
    {
        _clientFramesOut[reply.Tag].Inc(clients);
        _clientBytesOut.Inc((double)bytes * clients);
        if (reply is ServerReply.Message { Item: var message }
            && _postedAt.Remove((message.From.Value, message.Room.Value, message.ClientMessageId), out var postedAt))
        {
            _acknowledged.Inc();
            _postToAck.Observe(Stopwatch.GetElapsedTime(postedAt).TotalSeconds);
        }
    }

    public void Logged(int messages) => _logged.Inc(messages);

    public void Synced(TimeSpan took) => _fsync.Observe(took.TotalSeconds);

    private static int LeaderOf(ProtocolState state) => state.Coordination.Leader is { } leader ? leader.Value : 0;

    private static string[] CaseNames<T>() =>
        FSharpType.GetUnionCases(typeof(T), null).OrderBy(union => union.Tag).Select(union => union.Name).ToArray();
}
