using FormalChat.CommandLine;
using FormalChat.Protocol;

namespace FormalChat.Client;

/// Finds the cluster's nodes when the client was not told a server: asks the --peer seeds if
/// there are any, otherwise listens to the multicast heartbeats.
public static class Discovery
{
    /// Every node found, with its load; empty when nothing answered.
    public static async Task<IReadOnlyList<NodeCandidate>> FindAsync(DiscoveryOptions discovery, CancellationToken cancel)
    {
        if (!discovery.Seeds.IsEmpty)
        {
            var answers = await Task.WhenAll(discovery.Seeds.Select(SeedProbe.AskAsync));
            return NodeChoice.Rank(answers.SelectMany(nodes => nodes));
        }
        return NodeChoice.Rank(await MulticastListener.ListenAsync(discovery, cancel));
    }

    /// Where discovery looked, for the message when it found nothing.
    public static string Describe(DiscoveryOptions discovery) =>
        discovery.Seeds.IsEmpty
            ? $"no heartbeat on multicast group {discovery.MulticastGroup} (interface {discovery.MulticastInterface}) within {HeartbeatCollector.MaxWait.TotalSeconds:0.#} s"
            : $"no answer from the seeds {string.Join(", ", discovery.Seeds)}";
}
