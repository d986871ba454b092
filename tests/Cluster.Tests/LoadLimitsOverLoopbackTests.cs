using System.Net;
using System.Net.Sockets;
using System.Text;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// What one client may cost a node, over real sockets: a client over --client-rate is told and
/// slowed, and loses nothing; a client that reads nothing is disconnected once more than
/// --max-client-queue-bytes waits for it, and the node goes on serving the others.
/// </summary>
public class LoadLimitsOverLoopbackTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_client_over_its_rate_is_told_and_slowed_and_every_message_is_still_delivered()
    {
        await using var cluster = await TestCluster.StartAsync(1, "--client-rate", "20", "--client-burst", "5");
        await cluster.WaitForLeaderAsync(leader: 1, nodes: [1], Deadline);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");

        const int count = 30;
        for (var n = 1; n <= count; n++) await alice.SendAsync(new JObject { ["type"] = "say", ["text"] = $"m{n}", ["id"] = n });

        var notice = await alice.NextAsync(frame => (string?)frame["type"] == "error", Deadline);
        Assert.Equal("rate-limited", (string?)notice["code"]);
        var last = await alice.NextAsync(frame => (string?)frame["type"] == "message" && (string?)frame["text"] == $"m{count}", Deadline);
        Assert.Equal(count, (long)last["seq"]!);
        Assert.False(alice.Closed);
    }

    [Fact]
    public async Task A_client_that_reads_nothing_is_disconnected_and_the_others_are_served()
    {
        await using var cluster = await TestCluster.StartAsync(1, "--client-rate", "0", "--max-client-queue-bytes", "262144");
        await cluster.WaitForLeaderAsync(leader: 1, nodes: [1], Deadline);
        using var sleeper = await StalledClientAsync(cluster.ClientPort(1), "sleeper");
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        var text = new string('x', 1000);

        // The sleeper's kernel buffers fill first (a few MB on loopback), then its queue on the
        // node goes past 256 KiB. Alice reads everything; no burst of hers comes near that bound.
        var sent = 0;
        JObject? last = null;
        await Eventually.TrueAsync(async () =>
        {
            for (var n = 0; n < 50; n++) await alice.SendAsync(new JObject { ["type"] = "say", ["text"] = text, ["id"] = ++sent });
            last = await cluster.StatusAsync(1);
            return (int)last["nodes"]![0]!["load"]!["clients"]! == 1;
        }, Deadline, "the sleeper is disconnected", () => $"sent {sent}, last status {last}\n{cluster.Output}");

        await alice.SendAsync(new JObject { ["type"] = "say", ["text"] = "still here", ["id"] = ++sent });
        await alice.NextAsync(frame => (string?)frame["type"] == "message" && (string?)frame["text"] == "still here", Deadline);
    }

    /// <summary>A client that says hello, joins the lobby and then never reads again.</summary>
    private static async Task<Socket> StalledClientAsync(int port, string nick)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await socket.ConnectAsync(IPAddress.Loopback, port);
        await socket.SendAsync(Encoding.UTF8.GetBytes($"{{\"type\":\"hello\",\"nick\":\"{nick}\"}}\n"));
        return socket;
    }
}
