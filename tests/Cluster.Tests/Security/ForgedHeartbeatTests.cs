using System.Net;
using System.Net.Sockets;
using FormalChat.Node.Security;
using static FormalChat.Cluster.Tests.Security.SecurityProbe;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>
/// Heartbeat datagrams from outside the cluster (issue 11: a fake node 99 claimed to lead at
/// epoch 10^6, every node followed it, and it received every user's session token). With a
/// cluster key, each is dropped and counted, and the view, leader and epoch stay as they were.
/// </summary>
public class ForgedHeartbeatTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Unsealed_wrong_key_and_replayed_heartbeats_are_dropped_counted_and_change_nothing()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        var epochBefore = (int)(await cluster.StatusAsync(1))["epoch"]!;
        // Where the fake node would be reached: if it joined a view, nodes would connect here.
        var fakePeer = new TcpListener(IPAddress.Loopback, 0);
        fakePeer.Start();
        var fakePort = ((IPEndPoint)fakePeer.LocalEndpoint).Port;

        var unsealed = FakeLeaderHeartbeat(fakePort);
        var wrongKey = HeartbeatSeal.Seal(ClusterKey.Generate(), 42, 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), unsealed.AsSpan(0, unsealed.Length - 1));
        var real = await CaptureHeartbeatAsync(cluster, Deadline);

        // Datagrams may be lost: each is sent again until every node has counted it.
        await DropsAsync(cluster, "forgedDatagrams", () => SendDatagram(cluster, unsealed));
        await DropsAsync(cluster, "forgedDatagrams", () => SendDatagram(cluster, wrongKey));
        await DropsAsync(cluster, "replayedDatagrams", () => SendDatagram(cluster, real));

        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        foreach (var id in new[] { 1, 2 }) Assert.Equal(epochBefore, (int)(await cluster.StatusAsync(id))["epoch"]!);
        Assert.False(fakePeer.Pending(), "a node connected to the fake node's peer port");
        await cluster.WaitForOutputAsync("dropped a heartbeat datagram", Deadline);
        fakePeer.Stop();
    }

    /// <summary>Sends until the counter has gone up on every node.</summary>
    private static async Task DropsAsync(TestCluster cluster, string counter, Action send)
    {
        var before = new Dictionary<int, long>();
        foreach (var id in new[] { 1, 2 }) before[id] = Counter(await cluster.StatusAsync(id), counter);
        await Eventually.TrueAsync(async () =>
        {
            send();
            foreach (var id in new[] { 1, 2 })
            {
                if (Counter(await cluster.StatusAsync(id), counter) <= before[id]) return false;
            }
            return true;
        }, Deadline, $"{counter} counted by nodes 1 and 2", () => cluster.Output);
    }
}
