using FormalChat.Protocol;

namespace FormalChat.Client;

/// A node the client could connect to, with the client count it last reported.
public sealed record NodeCandidate(int Id, Endpoint Client, int Clients);

/// Which node to connect to: the least loaded (fewest clients, then the lowest id), and the
/// sentence that tells the user why. Pure.
public static class NodeChoice
{
    /// Best first, each node once (the lowest count seen wins for a node listed twice), and
    /// without the excluded node (the one that just failed).
    public static IReadOnlyList<NodeCandidate> Rank(IEnumerable<NodeCandidate> nodes, int? excluding = null) =>
        nodes.Where(node => node.Id != excluding)
            .GroupBy(node => node.Id)
            .Select(group => group.MinBy(node => node.Clients)!)
            .OrderBy(node => node.Clients)
            .ThenBy(node => node.Id)
            .ToList();

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

    /// The nodes of a /status answer, with the loads they report. A node answers status before
    /// hello, so a discovery probe is never among the clients it counts.
    public static IReadOnlyList<NodeCandidate> FromStatus(ClusterStatus status) =>
        status.Nodes.Select(node => new NodeCandidate(node.Id, node.ClientEndpoint, node.Load.Clients)).ToList();
}
