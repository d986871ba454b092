using System.Net;
using System.Net.Sockets;
using System.Text;
using FormalChat.Transport;

namespace FormalChat.Cluster.Tests;

/// <summary>Discovery, heartbeats and LCR election between real node processes on 127.0.0.1.</summary>
public class ElectionOverLoopbackTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Three_nodes_find_each_other_by_multicast_and_elect_the_highest_id()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
    }

    [Fact]
    public async Task Kill_9_of_the_leader_makes_the_survivors_elect_the_next_highest()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);

        cluster.Kill(3);

        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await cluster.WaitForOutputAsync("node 3 left the view", Deadline);
    }

    [Fact]
    public async Task A_node_that_stops_gracefully_announces_its_leave_and_exits_cleanly()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);

        await cluster.StopGracefullyAsync(3);

        Assert.Equal(0, cluster.ExitCode(3));
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await cluster.WaitForOutputAsync("node 3 announced it is leaving", Deadline);
    }

    [Fact]
    public async Task A_restarted_node_rejoins_and_takes_the_lead_back()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        cluster.Kill(3);
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);

        cluster.StartNode(3);
        await cluster.WaitUntilListeningAsync();

        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
    }

    [Fact]
    public async Task Nodes_without_multicast_find_each_other_through_peer_seeds()
    {
        await using var cluster = new TestCluster();
        cluster.StartNode(1, "--no-multicast");
        await cluster.WaitUntilListeningAsync();
        cluster.StartNode(2, "--no-multicast", "--peer", $"127.0.0.1:{cluster.PeerPort(1)}");
        await cluster.WaitUntilListeningAsync();
        cluster.StartNode(3, "--no-multicast", "--peer", $"127.0.0.1:{cluster.PeerPort(2)}");
        await cluster.WaitUntilListeningAsync();

        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
    }

    [Fact]
    public async Task Garbage_datagrams_on_the_discovery_group_are_dropped_and_the_cluster_carries_on()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        var status = await cluster.StatusAsync(1);
        var group = GroupOf(cluster);

        using (var sender = MulticastSocket.Open(group, IPAddress.Loopback))
        {
            foreach (var junk in new[] { "garbage", "{\"v\":1,\"type\":\"heartbeat\"}", "{\"v\":1,\"type\":\"election\",\"candidate\":99,\"epoch\":1}", "[1,2,3]" })
            {
                sender.SendTo(Encoding.UTF8.GetBytes(junk), group);
            }
        }

        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        Assert.NotNull(status);
    }

    private static IPEndPoint GroupOf(TestCluster cluster)
    {
        var group = cluster.MulticastGroup.Split(':');
        return new IPEndPoint(IPAddress.Parse(group[0]), int.Parse(group[1]));
    }
}
