using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>Rooms placed by the leader, per-room total order, load balancing, over real sockets.</summary>
public class RoomsOverLoopbackTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    private static Func<JObject, bool> Frame(string type, string? room = null) =>
        frame => (string?)frame["type"] == type && (room is null || (string?)frame["room"] == room);

    private static async Task<Dictionary<string, int?>> RoomOwnersAsync(TestClient client)
    {
        await client.SendAsync(new JObject { ["type"] = "rooms" });
        var rooms = await client.NextAsync(Frame("rooms"));
        return rooms["rooms"]!.ToDictionary(room => (string)room["room"]!, room => (int?)room["owner"]);
    }

    [Fact]
    public async Task New_rooms_are_placed_by_the_leader_on_the_least_loaded_nodes()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");

        foreach (var room in new[] { "#red", "#green" })
        {
            await alice.SendAsync(new JObject { ["type"] = "join", ["room"] = room });
            await alice.NextAsync(Frame("joined", room));
        }

        Dictionary<string, int?> owners = new();
        await Eventually.TrueAsync(async () =>
        {
            owners = await RoomOwnersAsync(alice);
            return owners.Count == 3 && owners.Values.All(owner => owner is not null);
        }, Deadline, "three rooms placed", () => string.Join(", ", owners));
        // Three rooms on three nodes: each new room went to a node owning none yet.
        Assert.Equal(3, owners.Values.Distinct().Count());
    }

    [Fact]
    public async Task Members_on_three_nodes_see_one_order_under_concurrent_senders()
    {
        const int perSender = 40;
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        var clients = new List<TestClient>();
        for (var id = 1; id <= 3; id++)
        {
            var client = await TestClient.ConnectAsync(cluster.ClientPort(id), $"user{id}");
            await client.SendAsync(new JObject { ["type"] = "join", ["room"] = "#race" });
            await client.NextAsync(Frame("joined", "#race"));
            clients.Add(client);
        }
        try
        {
            await Task.WhenAll(clients.Select((client, index) => Task.Run(async () =>
            {
                for (var n = 1; n <= perSender; n++)
                {
                    await client.SendAsync(new JObject { ["type"] = "say", ["room"] = "#race", ["text"] = $"{index}:{n}", ["id"] = n });
                }
            })));

            var orders = await Task.WhenAll(clients.Select(async client =>
            {
                var seen = new List<(long, string)>();
                while (seen.Count < 3 * perSender)
                {
                    var message = await client.NextAsync(Frame("message", "#race"));
                    seen.Add(((long)message["seq"]!, (string)message["text"]!));
                }
                return seen;
            }));

            Assert.Equal(orders[0], orders[1]);
            Assert.Equal(orders[0], orders[2]);
            Assert.Equal(Enumerable.Range(1, 3 * perSender).Select(n => (long)n), orders[0].Select(message => message.Item1));
            Assert.Equal(3 * perSender, orders[0].Select(message => message.Item2).Distinct().Count());
        }
        finally
        {
            foreach (var client in clients) await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Joining_a_room_replays_its_recent_history()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        await alice.SendAsync(new JObject { ["type"] = "join", ["room"] = "#book" });
        await alice.NextAsync(Frame("joined", "#book"));
        for (var n = 1; n <= 5; n++) await alice.SendAsync(new JObject { ["type"] = "say", ["room"] = "#book", ["text"] = $"page {n}" });
        for (var n = 1; n <= 5; n++) await alice.NextAsync(Frame("message", "#book"));

        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        await bob.SendAsync(new JObject { ["type"] = "join", ["room"] = "#book" });
        await bob.NextAsync(Frame("joined", "#book"));

        var replayed = new List<string>();
        for (var n = 1; n <= 5; n++) replayed.Add((string)(await bob.NextAsync(Frame("message", "#book")))["text"]!);
        Assert.Equal(Enumerable.Range(1, 5).Select(n => $"page {n}"), replayed);
    }

    [Fact]
    public async Task A_node_joining_an_unbalanced_cluster_takes_clients_by_redirect()
    {
        await using var cluster = new TestCluster();
        cluster.StartNode(1);
        await cluster.WaitUntilListeningAsync();
        var clients = new List<TestClient>();
        for (var n = 0; n < 8; n++) clients.Add(await TestClient.ConnectAsync(cluster.ClientPort(1), $"crowd{n}"));
        try
        {
            cluster.StartNode(2);
            await cluster.WaitUntilListeningAsync();

            // A redirected client reconnects where it was sent, with its session, as the real client does.
            // Fair share is 4 of 8: the wait ends once four clients have been redirected.
            using var enough = new CancellationTokenSource();
            var count = 0;
            var redirected = await Task.WhenAll(clients.Select(async (client, n) =>
            {
                JObject redirect;
                try { redirect = await client.NextAsync(Frame("redirect"), Deadline, enough.Token); }
                catch (Exception error) when (error is TimeoutException or IOException) { return null; }
                if (Interlocked.Increment(ref count) == 4) enough.Cancel();
                clients[n] = await TestClient.ConnectAsync(cluster.ClientPort(2), $"crowd{n}", (string)client.Welcome!["session"]!);
                await client.DisposeAsync();
                return redirect;
            }));

            var moved = redirected.Where(frame => frame is not null).ToList();
            Assert.Equal(4, moved.Count);
            Assert.All(moved, frame => Assert.Equal(2, (int?)frame!["node"]));
            Assert.All(moved, frame => Assert.Equal($"127.0.0.1:{cluster.ClientPort(2)}", (string?)frame!["client"]));
            await Eventually.TrueAsync(async () =>
            {
                var status = await cluster.StatusAsync(2);
                return status["nodes"]!.Any(node => (int)node["id"]! == 1 && (int)node["load"]!["clients"]! == 4);
            }, Deadline, "four clients left on node 1");
        }
        finally
        {
            foreach (var client in clients) await client.DisposeAsync();
        }
    }
}
