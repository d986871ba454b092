using FormalChat.Protocol;

namespace FormalChat.Client;

/// Which node to connect to: the least loaded (fewest clients, then the lowest id; the rule is
/// ClientSession.rank), and the sentence that tells the user why.
public static class NodeChoice
{
    /// Best first, each node once (the lowest count seen wins for a node listed twice), and
    /// without the excluded node (the one that just failed).
    public static IReadOnlyList<NodeCandidate> Rank(IEnumerable<NodeCandidate> nodes, int? excluding = null) =>
        ClientSession.rank(nodes.Where(node => node.Id != excluding)).ToList();

    /// "least loaded: 0 clients; nodes 1:3 2:0 3:5"
    public static string Why(NodeCandidate chosen, IEnumerable<NodeCandidate> all)
    {
        var loads = string.Join(" ", Rank(all).OrderBy(node => node.Id).Select(node => $"{node.Id}:{node.Clients}"));
        var clients = chosen.Clients == 1 ? "1 client" : $"{chosen.Clients} clients";
        return $"least loaded: {clients}; nodes {loads}";
    }

    /// "connecting to node 2 at 127.0.0.1:5002 (least loaded: 0 clients; nodes 1:3 2:0 3:5)"
    public static string Announcement(NodeCandidate chosen, IEnumerable<NodeCandidate> all) =>
        $"connecting to node {chosen.Id} at {chosen.Client} ({Why(chosen, all)})";

    /// The nodes of a /status answer, with the loads they report (ClientSession.candidatesOf).
    public static IReadOnlyList<NodeCandidate> FromStatus(ClusterStatus status) => ClientSession.candidatesOf(status).ToList();
}
