using FormalChat.Node;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// A room log damaged in the middle (docs/REPLICATION.md, "A damaged log"), with real node
/// processes: one byte flipped mid-log on one node while the cluster is down loses no
/// acknowledged message. The node keeps the records after the damage, fills the gap from its
/// peers and rewrites its log, and every node serves the whole history.
/// </summary>
public class DamagedLogOverLoopbackTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private const string Room = "#story";
    private const int Total = 200;

    private static Func<JObject, bool> Frame(string type, string? room = null) =>
        frame => (string?)frame["type"] == type && (room is null || (string?)frame["room"] == room);

    /// <summary>What a new client joining the room on a node is shown of its history: the seqs.</summary>
    private static async Task<List<long>> SeqsOnJoinAsync(int port, string nick)
    {
        await using var reader = await TestClient.ConnectAsync(port, nick);
        await reader.SendAsync(new JObject { ["type"] = "join", ["room"] = Room });
        // Read until the whole history has come, or no more comes within the reply deadline: a node
        // with no member in the room yet shows it only once the owner has sent what it missed
        // (RoomReplica.catchUp), so no later reply marks its end.
        var seqs = new List<long>();
        try
        {
            while (seqs.Count < Total) seqs.Add((long)(await reader.NextAsync(Frame("message", Room)))["seq"]!);
        }
        catch (TimeoutException) { }
        return seqs;
    }

    private static async Task EveryNodeServesEveryMessageAsync(TestCluster cluster, int[] nodes, string when)
    {
        var expected = Enumerable.Range(1, Total).Select(seq => (long)seq).ToList();
        foreach (var id in nodes)
        {
            var attempt = 0;
            List<long> seqs = [];
            await Eventually.TrueAsync(async () =>
            {
                seqs = await SeqsOnJoinAsync(cluster.ClientPort(id), $"{when}{id}x{++attempt}");
                return seqs.SequenceEqual(expected);
            }, Deadline, $"node {id} serves seqs 1..{Total} {when}",
                () => $"node {id} showed {seqs.Count} messages, first {seqs.FirstOrDefault()}, last {seqs.LastOrDefault()}, missing {string.Join(",", expected.Except(seqs).Take(20))}");
        }
    }

    private static LogReadBack ReadLog(string path)
    {
        using var reading = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return LogRecords.ReadAll(reading, Room, keepLast: Total * 2);
    }

    /// <summary>Alice posts lines first..last to the room through a node and waits until each is acknowledged.</summary>
    private static async Task PostAcknowledgedAsync(int port, int first, int last)
    {
        await using var alice = await TestClient.ConnectAsync(port, "alice");
        await alice.SendAsync(new JObject { ["type"] = "join", ["room"] = Room });
        await alice.NextAsync(Frame("joined", Room));
        for (var n = first; n <= last; n++) await alice.SendAsync(new JObject { ["type"] = "say", ["room"] = Room, ["text"] = $"line {n}", ["id"] = n });
        // A message shown to its sender is committed: acknowledged.
        long seq = 0;
        while (seq < last) seq = (long)(await alice.NextAsync(Frame("message", Room)))["seq"]!;
    }

    /// <summary>
    /// Raft's rule that a shorter log never wins (docs/REPLICATION.md, "A whole-cluster restart").
    /// Node 3 is down while seqs 101..200 commit; after a whole-cluster restart it leads again, with
    /// the shortest log. It used to place the room by load and hand the new owner its own shorter
    /// history, which replaced the owner's longer copy: 101..200 were lost and new messages
    /// numbered from 101 again.
    /// </summary>
    [Fact]
    public async Task A_leader_that_was_down_while_messages_committed_loses_none_of_them_after_a_whole_cluster_restart()
    {
        var nodes = new[] { 1, 2, 3 };
        string[] arguments = ["--history", "500"];
        await using var cluster = await TestCluster.StartAsync(3, arguments);
        await cluster.WaitForLeaderAsync(leader: 3, nodes, Deadline);
        await PostAcknowledgedAsync(cluster.ClientPort(1), 1, Total / 2);
        await cluster.StopGracefullyAsync(3);
        await cluster.WaitForLeaderAsync(leader: 2, [1, 2], Deadline);
        await PostAcknowledgedAsync(cluster.ClientPort(1), Total / 2 + 1, Total);

        foreach (var id in new[] { 1, 2 }) await cluster.StopGracefullyAsync(id);
        foreach (var id in nodes) cluster.StartNode(id, arguments);
        await cluster.WaitUntilListeningAsync();
        await cluster.WaitForLeaderAsync(leader: 3, nodes, Deadline);

        await EveryNodeServesEveryMessageAsync(cluster, nodes, "after");
        // The sequence goes on after the last acknowledged message, not after node 3's last one.
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(3), "bob");
        await bob.SendAsync(new JObject { ["type"] = "join", ["room"] = Room });
        await bob.NextAsync(Frame("joined", Room));
        await bob.SendAsync(new JObject { ["type"] = "say", ["room"] = Room, ["text"] = "after the restart", ["id"] = 1 });
        var next = await bob.NextAsync(frame => Frame("message", Room)(frame) && (string?)frame["text"] == "after the restart", Deadline);
        Assert.Equal(Total + 1, (long)next["seq"]!);
    }

    [Fact]
    public async Task A_byte_flipped_mid_log_on_one_node_loses_no_acknowledged_message_after_a_whole_cluster_restart()
    {
        var nodes = new[] { 1, 2, 3 };
        string[] arguments = ["--history", "500"];
        await using var cluster = await TestCluster.StartAsync(3, arguments);
        await cluster.WaitForLeaderAsync(leader: 3, nodes, Deadline);
        await PostAcknowledgedAsync(cluster.ClientPort(1), 1, Total);
        await EveryNodeServesEveryMessageAsync(cluster, nodes, "before");

        foreach (var id in nodes) await cluster.StopGracefullyAsync(id);
        // One bit of a record in the middle of node 2's log: its checksum no longer matches.
        var damaged = 2;
        var path = Path.Combine(cluster.DataDir(damaged), Room[1..] + ".log");
        var bytes = await File.ReadAllBytesAsync(path);
        Assert.Equal(Total, ReadLog(path).Records);
        bytes[bytes.Length / 2] ^= 0x04;
        await File.WriteAllBytesAsync(path, bytes);
        var readBack = ReadLog(path);
        Assert.Single(readBack.Damaged);
        Assert.Equal(Total - 1, readBack.Records);

        foreach (var id in nodes) cluster.StartNode(id, arguments);
        await cluster.WaitUntilListeningAsync();

        await EveryNodeServesEveryMessageAsync(cluster, nodes, "after");
        await cluster.WaitForOutputAsync($"[node {damaged}] WARN  {path}: room {Room} is damaged at byte", Deadline);
        // Another node may serve the whole history before the damaged node has logged its repair.
        await cluster.WaitForOutputAsync($"[node {damaged}] info  room {Room}: the gap left by the damaged log is filled", Deadline);
        // The repaired log is rewritten whole: the next start finds no damage.
        await Eventually.TrueAsync(() =>
        {
            var repaired = ReadLog(path);
            return Task.FromResult(repaired.Records == Total && repaired.Damaged.Count == 0 && repaired.StoppedBecause is null);
        }, Deadline, $"node {damaged} rewrites its repaired log of {Room}", () => cluster.Output);
    }
}
