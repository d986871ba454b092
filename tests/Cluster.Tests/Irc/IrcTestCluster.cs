namespace FormalChat.Cluster.Tests.Irc;

/// <summary>A TestCluster whose nodes also listen for IRC clients, each on a free port of its own.
/// Without rebalancing: a scripted client does not follow a redirect, and a test's few clients
/// on one node are enough for the node to shed some.</summary>
public static class IrcTestCluster
{
    public static async Task<(TestCluster Cluster, Dictionary<int, int> IrcPorts)> StartAsync(int nodes)
    {
        var cluster = await TestCluster.StartAsync(0);
        var ircPorts = new Dictionary<int, int>();
        for (var id = 1; id <= nodes; id++)
        {
            ircPorts[id] = Ports.FreeTcp();
            cluster.StartNode(id, "--irc-port", ircPorts[id].ToString(), "--no-rebalance");
        }
        await cluster.WaitUntilListeningAsync();
        foreach (var (id, port) in ircPorts)
        {
            await Eventually.TrueAsync(() => Ports.Accepts(port), TimeSpan.FromSeconds(20), $"node {id} listening for IRC", () => cluster.Output);
        }
        return (cluster, ircPorts);
    }
}
