using System.Text.RegularExpressions;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// Room logs on disk, with real node processes (docs/REPLICATION.md): a node killed with -9
/// reads its log back when it starts again, and a whole cluster restarted keeps its history.
/// </summary>
public class DurabilityOverLoopbackTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    private static bool Event(JObject e, string name, string? room = null) =>
        (string?)e["event"] == name && (room is null || (string?)e["room"] == room);

    private static Func<JObject, bool> Frame(string type, string? room = null) =>
        frame => (string?)frame["type"] == type && (room is null || (string?)frame["room"] == room);

    /// <summary>The messages of <paramref name="room"/> the sender saw acknowledged: (seq, text), by seq.</summary>
    private static List<(long Seq, string Text)> Acknowledged(ClientProcess sender, string room)
    {
        var acknowledged = sender.Seen.Where(e => Event(e, "ack", room)).Select(e => (long)e["seq"]!).ToHashSet();
        return sender.Shown(room).Where(message => acknowledged.Contains(message.Seq)).Distinct().OrderBy(message => message.Seq).ToList();
    }

    /// <summary>What a new client joining <paramref name="room"/> on a node is shown of its history.</summary>
    /// The history a new member is shown on joining the room, read until it is `complete` (or
    /// no more comes within the reply deadline). A node with no member in the room yet shows it
    /// once the owner has sent what the node missed (RoomReplica.catchUp): later replies may come
    /// first, so no other reply marks its end.
    private static async Task<List<(long Seq, string Text)>> HistoryOnJoinAsync(int port, string nick, string room,
        Func<List<(long Seq, string Text)>, bool> complete)
    {
        await using var reader = await TestClient.ConnectAsync(port, nick);
        await reader.SendAsync(new JObject { ["type"] = "join", ["room"] = room });
        var history = new List<(long, string)>();
        try
        {
            while (!complete(history))
            {
                var frame = await reader.NextAsync(Frame("message", room));
                history.Add(((long)frame["seq"]!, (string)frame["text"]!));
            }
        }
        catch (TimeoutException) { }
        return history;
    }

    private static async Task<int> OwnerAsync(TestClient client, string room, TestCluster cluster)
    {
        int? owner = null;
        await Eventually.TrueAsync(async () =>
        {
            await client.SendAsync(new JObject { ["type"] = "rooms" });
            var rooms = await client.NextAsync(Frame("rooms"));
            owner = rooms["rooms"]!.Where(entry => (string?)entry["room"] == room).Select(entry => (int?)entry["owner"]).FirstOrDefault();
            return owner is not null;
        }, Deadline, $"{room} placed", () => cluster.Output);
        return owner!.Value;
    }

    /// <summary>The "recovered #room: N messages (last seq S)" line a node logged when it started, as (N, S).</summary>
    private static async Task<(int Messages, long LastSeq)> RecoveredAsync(TestCluster cluster, int node, string room)
    {
        var pattern = new Regex($@"\[node {node}\] info  recovered {room}: (\d+) messages \(last seq (\d+)\)");
        Match? found = null;
        await Eventually.TrueAsync(() =>
        {
            found = pattern.Match(cluster.Output);
            return Task.FromResult(found.Success);
        }, Deadline, $"node {node} reports its log of {room} read back", () => cluster.Output);
        return (int.Parse(found!.Groups[1].Value), long.Parse(found.Groups[2].Value));
    }

    [Fact]
    public async Task A_node_given_a_data_directory_another_node_holds_exits_with_the_reason()
    {
        await using var cluster = await TestCluster.StartAsync(1);

        // The later --data-dir wins: node 2 is pointed at node 1's directory.
        cluster.StartNode(2, "--data-dir", cluster.DataDir(1));

        var refusal = $"node 2: cannot lock the data directory {cluster.DataDir(1)}";
        await Eventually.TrueAsync(() => Task.FromResult(cluster.HasExited(2) && cluster.Output.Contains(refusal)), Deadline,
            "node 2 refused to share node 1's data directory", () => cluster.Output);
        Assert.Equal(1, cluster.ExitCode(2));
        Assert.False(cluster.HasExited(1));
    }

    [Fact]
    public async Task A_room_owner_killed_while_a_client_sends_reads_its_log_back_and_serves_every_acknowledged_message()
    {
        const string room = "#durable";
        const int total = 60;
        await using var cluster = await TestCluster.StartAsync(3, "--history", "1000");
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        await using var sender = ClientProcess.Start("--nick", "writer", "--server", $"127.0.0.1:{cluster.ClientPort(1)}", "--multicast", cluster.MulticastGroup);
        await sender.NextAsync(e => Event(e, "welcome"));
        await sender.TypeAsync($"/join {room}");
        await sender.NextAsync(e => Event(e, "joined", room));
        int victim;
        await using (var observer = await TestClient.ConnectAsync(cluster.ClientPort(1), "observer")) victim = await OwnerAsync(observer, room, cluster);

        // Lines are paced, not awaited one by one, so some are always in flight when the owner dies.
        var typing = Task.Run(async () =>
        {
            for (var n = 1; n <= total; n++)
            {
                await sender.TypeAsync($"line {n}");
                await Task.Delay(10);
            }
        });
        await Eventually.TrueAsync(() => Task.FromResult(Acknowledged(sender, room).Count >= total / 3), Deadline,
            "a third of the lines acknowledged", () => sender.Diagnostics);
        cluster.Kill(victim);
        // The owner is dead: every acknowledgement seen by now was its commit, so its log holds it.
        var acknowledgedBeforeKill = Acknowledged(sender, room);
        await typing;
        await Eventually.TrueAsync(() => Task.FromResult(Acknowledged(sender, room).Count == total), Deadline,
            "every line acknowledged after the failover", () => $"{Acknowledged(sender, room).Count} of {total}\n{sender.Diagnostics}\n{cluster.Output}");

        cluster.StartNode(victim, "--history", "1000");
        await cluster.WaitUntilListeningAsync();

        var (_, recoveredLastSeq) = await RecoveredAsync(cluster, victim, room);
        Assert.True(recoveredLastSeq >= acknowledgedBeforeKill[^1].Seq,
            $"node {victim} read back up to seq {recoveredLastSeq}, but seq {acknowledgedBeforeKill[^1].Seq} was acknowledged before it died");
        var acknowledged = Acknowledged(sender, room);
        var history = new List<(long Seq, string Text)>();
        var attempt = 0;
        await Eventually.TrueAsync(async () =>
        {
            history = await HistoryOnJoinAsync(cluster.ClientPort(victim), $"reader{++attempt}", room, shown => acknowledged.All(shown.Contains));
            return acknowledged.All(history.Contains);
        }, Deadline, $"every acknowledged line in the history node {victim} shows",
            () => $"missing: {string.Join(", ", acknowledged.Except(history))}\n{cluster.Output}");
        Assert.Equal(history.Select(message => message.Seq).Order(), history.Select(message => message.Seq));
        Assert.Equal(history.Count, history.Select(message => message.Seq).Distinct().Count());
        Assert.Equal(history.Count, history.Select(message => message.Text).Distinct().Count());
    }

    [Theory]
    [InlineData("stopped")]
    [InlineData("killed")]
    public async Task After_the_whole_cluster_restarts_a_client_joining_a_room_gets_its_earlier_history(string how)
    {
        const string room = "#story";
        var pages = Enumerable.Range(1, 10).Select(n => $"page {n}").ToList();
        var nodes = new[] { 1, 2, 3 };
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes, Deadline);
        await using (var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice"))
        {
            await alice.SendAsync(new JObject { ["type"] = "join", ["room"] = room });
            await alice.NextAsync(Frame("joined", room));
            for (var n = 0; n < pages.Count; n++) await alice.SendAsync(new JObject { ["type"] = "say", ["room"] = room, ["text"] = pages[n], ["id"] = n + 1 });
            for (var n = 0; n < pages.Count; n++) await alice.NextAsync(Frame("message", room));
        }
        // Every node of three holds the committed history before the restart (each is a member's
        // node, the owner, the backup or the leader), so each must have it after.
        foreach (var id in nodes)
        {
            await Eventually.TrueAsync(async () => (await HistoryOnJoinAsync(cluster.ClientPort(id), $"before{id}", room, shown => shown.Count >= pages.Count)).Count == pages.Count,
                Deadline, $"node {id} has the history before the restart");
        }

        foreach (var id in nodes)
        {
            if (how == "killed") cluster.Kill(id);
            else await cluster.StopGracefullyAsync(id);
        }
        foreach (var id in nodes) cluster.StartNode(id);
        await cluster.WaitUntilListeningAsync();

        foreach (var id in nodes) Assert.Equal((pages.Count, (long)pages.Count), await RecoveredAsync(cluster, id, room));
        foreach (var id in nodes)
        {
            var history = await HistoryOnJoinAsync(cluster.ClientPort(id), $"after{id}", room, shown => shown.Count >= pages.Count);
            Assert.Equal(pages.Select((text, index) => ((long)index + 1, text)), history);
        }
        // The room's sequence continues where it stopped, wherever the room is placed now.
        await cluster.WaitForLeaderAsync(leader: 3, nodes, Deadline);
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        await bob.SendAsync(new JObject { ["type"] = "join", ["room"] = room });
        await bob.SendAsync(new JObject { ["type"] = "say", ["room"] = room, ["text"] = "the sequel", ["id"] = 1 });
        var sequel = await bob.NextAsync(frame => Frame("message", room)(frame) && (string?)frame["text"] == "the sequel");
        Assert.Equal(pages.Count + 1, (long)sequel["seq"]!);
    }
}
