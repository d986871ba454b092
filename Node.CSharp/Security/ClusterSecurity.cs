using System.Security.Cryptography;
using FormalChat.CommandLine;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;

namespace FormalChat.Node.Security;

/// <summary>
/// How this node authenticates the cluster: with the key of --cluster-key-file (peer links open
/// with PeerHandshake, heartbeat datagrams are sealed with HeartbeatSeal), or not at all under
/// --insecure-cluster, which the node says at start and in every status reply. Counts what it refuses.
/// </summary>
public sealed class ClusterSecurity
{
    private static readonly TimeSpan WarningInterval = TimeSpan.FromSeconds(1);

    private readonly ClusterKey? _key;
    private readonly InputCounters _counters;
    private readonly ILogger _log;
    private readonly ThrottledWarning _datagramWarning;
    private readonly ThrottledWarning _linkWarning;
    private readonly HeartbeatReplayGuard _replays = new();
    // Random per process: a restarted node's counters start again under an incarnation nobody has seen.
    private readonly ulong _incarnation = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong)));
    private long _heartbeatCounter;

    private ClusterSecurity(ClusterKey? key, NodeOptions options, InputCounters counters, ILogger log)
    {
        _key = key;
        _counters = counters;
        _log = log;
        _datagramWarning = new ThrottledWarning(log, WarningInterval);
        _linkWarning = new ThrottledWarning(log, WarningInterval);
        var selfPeerEndpoint = new Endpoint(options.Host, options.PeerPort).ToString();
        Links = key is null ? null : new PeerLinkAuthenticator(key, options.Id, selfPeerEndpoint);
    }

    /// <summary>Reads the key; throws ClusterKeyException when there is none and the node was not
    /// told it may run without one, or when the key file is unusable.</summary>
    public static ClusterSecurity FromOptions(NodeOptions options, InputCounters counters, ILogger log)
    {
        var keyFile = options.ClusterKeyFile?.Value;
        if (keyFile is not null && options.InsecureCluster)
        {
            throw new ClusterKeyException("--cluster-key-file and --insecure-cluster exclude each other: give one");
        }
        if (keyFile is null && !options.InsecureCluster)
        {
            throw new ClusterKeyException(
                "no cluster key: give --cluster-key-file PATH (64 hex digits, e.g. from `openssl rand -hex 32`, mode 600; " +
                "the same file on every node), or --insecure-cluster to let anyone on the network join (see docs/SECURITY.md)");
        }
        return new ClusterSecurity(keyFile is null ? null : ClusterKey.Load(keyFile), options, counters, log);
    }

    public bool IsAuthenticated => _key is not null;

    /// <summary>The handshake every peer link runs first; null under --insecure-cluster.</summary>
    public PeerLinkAuthenticator? Links { get; }

    public void LogStart()
    {
        if (_key is null)
        {
            _log.LogWarning("INSECURE: --insecure-cluster: peer links and heartbeats are not authenticated; anyone who can reach the peer port or the multicast group can join this cluster, read its traffic and forge its messages");
        }
        else
        {
            _log.LogInformation("cluster authentication on: peer links open with an HMAC-SHA256 handshake, heartbeat datagrams carry an HMAC");
        }
    }

    /// <summary>A heartbeat frame as it goes on the multicast group: sealed when there is a key.</summary>
    public ReadOnlyMemory<byte> SealHeartbeat(ReadOnlyMemory<byte> frame)
    {
        if (_key is null) return frame;
        var counter = Interlocked.Increment(ref _heartbeatCounter);
        return HeartbeatSeal.Seal(_key, _incarnation, counter, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), frame.Span.TrimEnd((byte)'\n'));
    }

    /// <summary>The heartbeat JSON of a received datagram, or null when it is refused (counted and
    /// logged at most once a second). Called from the one multicast receiver thread only.</summary>
    public string? OpenHeartbeat(ReadOnlySpan<byte> datagram, string sender)
    {
        if (_key is null) return System.Text.Encoding.UTF8.GetString(datagram).TrimEnd('\n');
        var opened = HeartbeatSeal.Open(_key, datagram, out var refusal);
        if (opened is not { } heartbeat)
        {
            var forged = _counters.CountForgedDatagram();
            _datagramWarning.Log($"dropped a heartbeat datagram from {sender}: {refusal} ({forged} forged, {_counters.ReplayedDatagrams} replayed so far)");
            return null;
        }
        var verdict = _replays.Check(heartbeat, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        if (verdict == HeartbeatReplayGuard.Verdict.Accepted) return heartbeat.Json;
        var replayed = _counters.CountReplayedDatagram();
        var why = verdict == HeartbeatReplayGuard.Verdict.Replayed
            ? $"counter {heartbeat.Counter} of incarnation {heartbeat.Incarnation:x16} was seen already (a replayed copy)"
            : $"it was sent more than {HeartbeatReplayGuard.MaxClockSkewMs / 1000} s from this node's clock (an old recording, or clocks apart)";
        _datagramWarning.Log($"dropped a heartbeat datagram from {sender}: {why} ({_counters.ForgedDatagrams} forged, {replayed} replayed so far)");
        return null;
    }

    /// <summary>A peer link that failed its handshake: counted, and logged at most once a second.</summary>
    public void LinkRefused(string direction, string remote, string reason)
    {
        var count = _counters.CountRefusedPeerLink();
        _linkWarning.Log($"closed {direction} peer link {remote}: {reason} ({count} refused so far)");
    }

    /// <summary>Adds to a status reply how this node authenticates the cluster and what it has
    /// refused, outside the protocol's status record: a last field spliced into the reply's JSON
    /// object (no re-parse: every client polls status, and this runs on the node's loop).</summary>
    public string AnnotateStatus(string statusJson)
    {
        var end = statusJson.LastIndexOf('}');
        if (end < 0) return statusJson;
        var warning = IsAuthenticated
            ? "null"
            : System.Text.Json.JsonSerializer.Serialize("INSECURE: this node runs with --insecure-cluster: its peer links and heartbeats are not authenticated");
        var security =
            $",\"clusterSecurity\":{{\"authenticated\":{(IsAuthenticated ? "true" : "false")},\"warning\":{warning}," +
            $"\"refusedPeerLinks\":{_counters.RefusedPeerLinks},\"forgedDatagrams\":{_counters.ForgedDatagrams},\"replayedDatagrams\":{_counters.ReplayedDatagrams}}}";
        return string.Concat(statusJson.AsSpan(0, end), security, statusJson.AsSpan(end));
    }
}
