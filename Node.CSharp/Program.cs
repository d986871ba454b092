using FormalChat.Node;
using FormalChat.Node.Security;
using FormalChat.CommandLine;
using FormalChat.Protocol;
using System.Net.Sockets;

// A FormalChat server node, or with `cluster`, a whole local cluster of them.
var parsed = NodeCommandLine.parse(args);
if (parsed.IsError)
{
    var usage = parsed.ErrorValue;
    (usage.IsHelp ? Console.Out : Console.Error).WriteLine(usage.Message);
    return usage.IsHelp ? 0 : 2;
}

// No blocking full collections while the node runs: a pause of a few hundred ms under load would
// make its peers suspect it (background collections still run).
System.Runtime.GCSettings.LatencyMode = System.Runtime.GCLatencyMode.SustainedLowLatency;

var (stopSource, signals) = StopSignal.Create();
try
{
    switch (parsed.ResultValue)
    {
        case NodeCommand.RunCluster cluster:
            return await LocalCluster.RunAsync(cluster.Item, stopSource.Token);
        case NodeCommand.RunNode node:
            using (var logs = NodeLog.Create(NodeLog.LevelFromEnvironment()))
            {
                try
                {
                    await new NodeHost(node.Item, logs).RunAsync(stopSource.Token);
                }
                catch (SocketException error) when (error.SocketErrorCode == SocketError.AddressAlreadyInUse)
                {
                    Console.Error.WriteLine($"node {node.Item.Id}: a port is already in use ({node.Item.ClientPort} for clients or {node.Item.PeerPort} for peers): {error.Message}");
                    return 1;
                }
                catch (ClusterKeyException error)
                {
                    Console.Error.WriteLine($"node {node.Item.Id} refuses to start: {error.Message}");
                    return 1;
                }
                catch (StorageException error)
                {
                    Console.Error.WriteLine($"node {node.Item.Id}: {error.Message}");
                    return 1;
                }
            }
            return 0;
        default:
            return 2;
    }
}
finally
{
    foreach (var signal in signals) signal.Dispose();
    stopSource.Dispose();
}
