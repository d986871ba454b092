using FormalChat.Protocol;

namespace FormalChat.Client;

/// Gathers the nodes' heartbeats heard while discovering, and decides when enough has been
/// heard. Pure: the listener passes each heartbeat with the time it arrived.
///
/// Listening stops as soon as one of these holds:
/// - every node that any heartbeat names (sender or `known`) has been heard from itself;
/// - one node has been heard twice, so the interval is known, and a whole interval has passed
///   since listening began: every live node has sent a heartbeat in that time;
/// - the longest wait (`MaxWait`) has passed.
public sealed class HeartbeatCollector
{
    public static readonly TimeSpan MaxWait = TimeSpan.FromMilliseconds(2500);
    /// Slack for a heartbeat sent at the end of an interval to arrive and be read.
    private static readonly TimeSpan Margin = TimeSpan.FromMilliseconds(100);

    private readonly Dictionary<int, (NodeCandidate Node, TimeSpan LastHeard)> heard = new();
    private readonly HashSet<int> named = new();
    private TimeSpan? interval;

    public IReadOnlyList<NodeCandidate> Nodes => heard.Values.Select(entry => entry.Node).ToList();

    /// `at` is the time since listening began.
    public void Heard(Heartbeat heartbeat, TimeSpan at)
    {
        var id = heartbeat.From.Id;
        if (heard.TryGetValue(id, out var earlier) && at > earlier.LastHeard)
        {
            var gap = at - earlier.LastHeard;
            interval = interval is { } known ? (gap < known ? gap : known) : gap;
        }
        heard[id] = (new NodeCandidate(id, heartbeat.From.ClientEndpoint, heartbeat.Load.Clients), at);
        named.Add(id);
        foreach (var info in heartbeat.Known) named.Add(info.Id);
    }

    public bool IsComplete(TimeSpan now) =>
        now >= MaxWait
        || (heard.Count > 0 && named.All(heard.ContainsKey))
        || (interval is { } every && now >= every + Margin);
}
