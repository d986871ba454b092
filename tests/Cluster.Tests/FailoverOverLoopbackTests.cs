using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>Clients whose node dies carry on by themselves: reconnect, resume, no gap, no duplicate.</summary>
public class FailoverOverLoopbackTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static bool Event(JObject e, string name) => (string?)e["event"] == name;

    [Fact]
    public async Task A_client_without_server_connects_to_the_least_loaded_node()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        await using var one = await TestClient.ConnectAsync(cluster.ClientPort(1), "busy1");
        await using var three = await TestClient.ConnectAsync(cluster.ClientPort(3), "busy3");
        // Heartbeats carry the new loads after one interval; wait until node 1 reports them.
        await Eventually.TrueAsync(async () =>
        {
            var status = await cluster.StatusAsync(1);
            return status["nodes"]!.All(node => (int)node["load"]!["clients"]! == ((int)node["id"]! == 2 ? 0 : 1));
        }, Deadline, "loads visible in heartbeats");

        await using var client = ClientProcess.Start("--nick", "newcomer", "--multicast", cluster.MulticastGroup);
        var welcome = await client.NextAsync(e => Event(e, "welcome"));

        Assert.Equal(2, (int?)welcome["node"]);
    }

    [Fact]
    public async Task Kill_9_of_a_node_while_everyone_sends_loses_nothing_and_duplicates_nothing()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        var clients = new List<ClientProcess>();
        try
        {
            for (var id = 1; id <= 3; id++)
            {
                for (var k = 0; k < 2; k++)
                {
                    var client = ClientProcess.Start("--nick", $"n{id}c{k}", "--server", $"127.0.0.1:{cluster.ClientPort(id)}", "--multicast", cluster.MulticastGroup);
                    await client.NextAsync(e => Event(e, "welcome"));
                    clients.Add(client);
                }
            }
            await using var observer = await TestClient.ConnectAsync(cluster.ClientPort(1), "observer");
            var lobbyOwner = await LobbyOwnerAsync(observer);
            var victim = Enumerable.Range(1, 3).First(id => id != lobbyOwner);

            const int rounds = 30;
            var senders = clients.Select((client, index) => Task.Run(async () =>
            {
                for (var n = 1; n <= rounds; n++)
                {
                    await client.TypeAsync($"c{index} says {n}");
                    if (n == rounds / 3 && index == 0) cluster.Kill(victim);
                    await Task.Delay(20);
                }
            })).ToList();
            await Task.WhenAll(senders);

            var expected = clients.Count * rounds;
            foreach (var client in clients)
            {
                await Eventually.TrueAsync(() => Task.FromResult(client.Shown("#lobby").Count >= expected), Deadline,
                    "every message shown", () => $"shown {client.Shown("#lobby").Count} of {expected}\n{client.Diagnostics}");
            }

            var reference = clients[0].Shown("#lobby");
            foreach (var client in clients)
            {
                var shown = client.Shown("#lobby");
                Assert.Equal(shown.Select(m => m.Seq).Distinct().Count(), shown.Count);             // no duplicate
                Assert.Equal(Enumerable.Range((int)shown[0].Seq, shown.Count).Select(n => (long)n), shown.Select(m => m.Seq)); // no gap
                Assert.Equal(reference.TakeLast(expected), shown.TakeLast(expected));                // one order
            }
            var texts = reference.Select(m => m.Text).ToHashSet();
            for (var index = 0; index < clients.Count; index++)
            {
                for (var n = 1; n <= rounds; n++) Assert.Contains($"c{index} says {n}", texts);   // nothing lost
            }
            // Clients 2(victim-1) and 2(victim-1)+1 were on the victim: both carried on elsewhere.
            for (var k = 0; k < 2; k++)
            {
                var moved = clients[2 * (victim - 1) + k];
                Assert.Contains(moved.Seen, e => Event(e, "reconnected") && (int?)e["previous"] == victim);
            }
            Assert.All(clients, client => Assert.False(client.HasExited, client.Diagnostics));
        }
        finally
        {
            foreach (var client in clients) await client.DisposeAsync();
        }
    }

    private static async Task<int> LobbyOwnerAsync(TestClient client)
    {
        int? owner = null;
        await Eventually.TrueAsync(async () =>
        {
            await client.SendAsync(new JObject { ["type"] = "rooms" });
            var rooms = await client.NextAsync(frame => (string?)frame["type"] == "rooms");
            owner = rooms["rooms"]!.Where(room => (string?)room["room"] == "#lobby").Select(room => (int?)room["owner"]).FirstOrDefault();
            return owner is not null;
        }, Deadline, "#lobby placed");
        return owner!.Value;
    }
}
