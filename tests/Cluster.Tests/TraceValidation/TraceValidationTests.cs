using System.Diagnostics;
using Newtonsoft.Json.Linq;
using Xunit.Abstractions;

namespace FormalChat.Cluster.Tests.TraceValidation;

/// <summary>
/// Validation of real runs (spec/README.md, "Trace validation"): a 3-node cluster on loopback
/// writes the spec actions it takes (--trace-file); the test merges the three traces in causal
/// order and TLC checks that FormalChat.tla can take exactly those steps (TraceFormalChat.tla),
/// and likewise their Replication.tla and Placement.tla variables (TraceReplication.tla,
/// TracePlacement.tla). Each spec is checked on 3 runs, and a node wrong on purpose is rejected.
/// Skipped, with the reason, where TLC or java is missing.
/// </summary>
public class TraceValidationTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static string RequireTlc()
    {
        var jar = TlcRunner.FindJar();
        Skip.If(jar is null, "TLC not found: set TLA2TOOLS_JAR, or put tla2tools.jar in /opt/tlaplus or ~/.cache/tlaplus");
        Skip.IfNot(TlcRunner.JavaAvailable(), "TLC needs java on the PATH");
        return jar!;
    }

    /// <summary>Election, a room with a few messages (placed and replicated: chat traffic between
    /// the coordination steps), kill -9 of the leader, re-election, a message after it, graceful
    /// stop of the survivors.</summary>
    [SkippableTheory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_real_run_with_an_election_a_leader_crash_and_a_re_election_follows_FormalChat(int run)
    {
        var jar = RequireTlc();
        var directory = Directory.CreateTempSubdirectory($"formalchat-trace-{run}-").FullName;
        try
        {
            var traces = new Dictionary<int, List<JObject>>();
            await using (var cluster = await TestCluster.StartTracedAsync(3, directory))
            {
                await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
                await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
                await alice.SendAsync(new JObject { ["type"] = "join", ["room"] = "#trace" });
                await alice.NextAsync(Frame("joined", "#trace"));
                await SayAsync(alice, 1, 2, 3);
                cluster.Kill(3);
                var crashed = Stopwatch.GetTimestamp();
                await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
                await SayAsync(alice, 4);
                await cluster.StopGracefullyAsync(1);
                await cluster.StopGracefullyAsync(2);
                for (var id = 1; id <= 3; id++) traces[id] = CausalMerger.ReadNode(cluster.TracePath(id));
                traces[3].Add(TraceMerger.CrashLine(3, crashed));
            }

            var (result, _) = await ValidateAsync(jar, directory, traces);

            Assert.True(result.Accepted, $"TLC rejected run {run}'s trace (kept in {directory}):\n{Tail(result.Output)}");
            Assert.Contains(traces[1], line => (string)line["action"]! == "RecvLeader" && (int)line["leader"]! == 2);
            Discard(directory);
        }
        catch
        {
            output.WriteLine($"traces kept in {directory}");
            throw;
        }
    }

    /// <summary>Replication (spec/TraceReplication.tla): a settled 3-node cluster places a room,
    /// the leader gives it a backup, and the owner sequences, replicates and commits a few posts
    /// that reach every node. TLC must find Replication.tla actions of each logged node that
    /// lead to the variables it logged, line after line.</summary>
    [SkippableTheory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_real_run_placing_and_replicating_a_room_follows_Replication(int run)
    {
        var (result, lines, directory) = await ValidateReplicationRunAsync(fault: null, run);

        Assert.True(result.Accepted, $"TLC rejected the replication trace (kept in {directory}):\n{Tail(result.Output)}");
        Discard(directory);
    }

    /// <summary>The backup confirms appends it does not keep (FORMALCHAT_TEST_FAULT
    /// skip-replica-store, on every node: only the backup receives appends): TLC must reject the
    /// trace at the backup's line that received an append.</summary>
    [SkippableFact]
    public async Task A_backup_that_confirms_what_it_did_not_store_is_rejected()
    {
        var (result, lines, directory) = await ValidateReplicationRunAsync(fault: "skip-replica-store", run: 1);

        var rejected = RejectedLine(result, lines, "the wrong backup's trace");
        Assert.Contains(rejected["received"]!.Values<string>(), key => key!.StartsWith("append/", StringComparison.Ordinal));
        Discard(directory);
    }

    /// <summary>A settled 3-node cluster, a room joined on every node and four posts that every node
    /// ends up holding; the nodes' replication traces of the room merged and checked by TLC.</summary>
    private Task<(TlcRunner.Result Result, List<JObject> Lines, string Directory)> ValidateReplicationRunAsync(string? fault, int run)
    {
        long[] posted = [1, 2, 3, 4];
        return ValidateRunAsync("replication", fault, run, "TraceReplication", async cluster =>
        {
            await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
            await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
            await alice.SendAsync(new JObject { ["type"] = "join", ["room"] = "#trace" });
            await alice.NextAsync(Frame("joined", "#trace"));
            // A member on every node: committed messages go only to nodes with members (plus the
            // backup and the leader), and the test checks every node's whole history.
            await using var bob = await JoinedAsync(cluster.ClientPort(2), "bob");
            await using var carol = await JoinedAsync(cluster.ClientPort(3), "carol");
            await SayAsync(alice, posted.Select(id => (int)id).ToArray());
            bool EveryNodeHoldsAll() => Enumerable.Range(1, 3).All(id =>
                ReplicationTraceMerger.ReadNode(cluster.TracePath(id), "#trace").LastOrDefault()?["history"] is JArray history
                && history.Count == posted.Length);
            await Eventually.TrueAsync(() => Task.FromResult(EveryNodeHoldsAll()), Deadline,
                "every node logged the room's history with every post", () => cluster.Output);
            return Enumerable.Range(1, 3).ToDictionary(id => id, id => ReplicationTraceMerger.ReadNode(cluster.TracePath(id), "#trace"));
        }, (traces, merged) => ReplicationTraceMerger.Merge(traces, posted, merged));
    }

    /// <summary>A traced 3-node cluster (every node with <paramref name="fault"/>, if any) taken
    /// through <paramref name="scenario"/>, which returns each node's trace lines; the lines merged
    /// by <paramref name="merge"/> and checked by TLC against spec/<paramref name="module"/>.tla.
    /// The traces are kept, and their directory printed, when the run fails.</summary>
    private async Task<(TlcRunner.Result Result, List<JObject> Lines, string Directory)> ValidateRunAsync(
        string kind, string? fault, int run, string module,
        Func<TestCluster, Task<Dictionary<int, List<JObject>>>> scenario,
        Func<Dictionary<int, List<JObject>>, string, List<JObject>> merge)
    {
        var jar = RequireTlc();
        var directory = Directory.CreateTempSubdirectory($"formalchat-trace-{kind}-{fault ?? "run"}-{run}-").FullName;
        try
        {
            Dictionary<int, List<JObject>> traces;
            await using (var cluster = await TestCluster.StartTracedAsync(3, directory, _ =>
                             fault is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["FORMALCHAT_TEST_FAULT"] = fault }))
            {
                traces = await scenario(cluster);
            }

            var merged = Path.Combine(directory, $"merged-{kind}.ndjson");
            var lines = merge(traces, merged);
            var result = await TlcRunner.ValidateAsync(jar, module, merged, directory);
            var verdict = result.Accepted ? "accepted" : $"rejected line {result.Matched + 1} of {result.Steps}: {(result.Matched < lines.Count ? lines[result.Matched].ToString(Newtonsoft.Json.Formatting.None) : "-")}";
            output.WriteLine($"run {run}: {lines.Count} {kind} trace lines ({string.Join(", ", traces.Select(node => $"node {node.Key}: {node.Value.Count}"))}); TLC {verdict} in {result.Elapsed.TotalSeconds:0.0} s");
            return (result, lines, directory);
        }
        catch
        {
            output.WriteLine($"traces kept in {directory}");
            throw;
        }
    }

    /// <summary>Placement (spec/TracePlacement.tla): three rooms (and #lobby) placed by the first
    /// leader, spread over the nodes (fewest rooms first), kill -9 of the leader, re-election, and the new leader
    /// giving the dead leader's room to another node. TLC must find Placement.tla actions of each
    /// logged node that lead to the placements it logged, line after line.</summary>
    [SkippableTheory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_real_run_placing_rooms_and_reassigning_the_crashed_leaders_room_follows_Placement(int run)
    {
        var (result, lines, directory) = await ValidatePlacementRunAsync(fault: null, run);

        Assert.True(result.Accepted, $"TLC rejected run {run}'s placement trace (kept in {directory}):\n{Tail(result.Output)}");
        Discard(directory);
    }

    /// <summary>The leader keeps each placement it makes with the room's previous version
    /// (FORMALCHAT_TEST_FAULT stale-placement-version, on every node: only the leader places):
    /// TLC must reject the trace at the leader's line that placed a room.</summary>
    [SkippableFact]
    public async Task A_leader_that_places_a_room_with_a_stale_version_is_rejected()
    {
        var (result, lines, directory) = await ValidatePlacementRunAsync(fault: "stale-placement-version", run: 1);

        var rejected = RejectedLine(result, lines, "the wrong leader's trace");
        Assert.Equal(3, (int)rejected["node"]!);
        Assert.Contains(rejected["placements"]!, placement => (int)placement["version"]! == 0);
        Discard(directory);
    }

    private static readonly string[] PlacedRooms = ["#a", "#b", "#c"];

    /// <summary>The room a node's last placement line places on <paramref name="owner"/>, if any.</summary>
    private static string? RoomOwnedBy(List<JObject> lines, int owner) =>
        lines.LastOrDefault()?["placements"]?.FirstOrDefault(placement => (int)placement["owner"]! == owner)?["room"]?.Value<string>();

    /// <summary>A settled 3-node cluster; alice on node 1 joins three rooms, which the leader (3)
    /// spreads over the nodes. Without a fault: kill -9 of node 3, and the new leader (2) moves
    /// node 3's room to a live node, which nodes 1 and 2 log. With one: the run ends once the
    /// leader has logged a placement. The nodes' placement traces merged and checked by TLC.</summary>
    private Task<(TlcRunner.Result Result, List<JObject> Lines, string Directory)> ValidatePlacementRunAsync(string? fault, int run) =>
        ValidateRunAsync("placement", fault, run, "TracePlacement", async cluster =>
        {
            List<JObject> Lines(int id) => PlacementTraceMerger.ReadNode(cluster.TracePath(id));
            long? crashed = null;
            await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
            await using (var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice"))
            {
                foreach (var room in fault is null ? PlacedRooms : PlacedRooms.Take(1))
                {
                    await alice.SendAsync(new JObject { ["type"] = "join", ["room"] = room });
                    await alice.NextAsync(Frame("joined", room));
                }
                if (fault is null)
                {
                    // The same placements at every node, with every room joined, and one room on
                    // the leader (fewest rooms first: 3 rooms or more give every node one).
                    bool PlacedEverywhere() =>
                        Enumerable.Range(1, 3).Select(id => Lines(id).LastOrDefault()?["placements"]?.ToString(Newtonsoft.Json.Formatting.None)).Distinct().Count() == 1
                        && Lines(1).LastOrDefault()?["placements"] is JArray placements
                        && PlacedRooms.All(room => placements.Any(placement => (string)placement["room"]! == room))
                        && RoomOwnedBy(Lines(1), owner: 3) is not null;
                    await Eventually.TrueAsync(() => Task.FromResult(PlacedEverywhere()), Deadline,
                        "every node logged the same placements, with the three rooms and one on node 3", () => cluster.Output);
                    var moved = RoomOwnedBy(Lines(1), owner: 3)!;
                    cluster.Kill(3);
                    crashed = Stopwatch.GetTimestamp();
                    await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
                    bool MovedOnBoth() => new[] { 1, 2 }.All(id =>
                        Lines(id).LastOrDefault()?["placements"]?.Any(placement => (string)placement["room"]! == moved && (int)placement["owner"]! != 3) == true);
                    await Eventually.TrueAsync(() => Task.FromResult(MovedOnBoth()), Deadline,
                        $"nodes 1 and 2 logged {moved} moved off node 3", () => cluster.Output);
                }
                else
                {
                    bool WrongStepLogged() => Lines(3).Any(line => line["placements"]!.Any(placement => (int)placement["version"]! == 0));
                    await Eventually.TrueAsync(() => Task.FromResult(WrongStepLogged()), Deadline,
                        "the leader logged a placement with a stale version", () => cluster.Output);
                }
            }
            for (var id = 1; id <= 3; id++)
            {
                if (!cluster.HasExited(id)) await cluster.StopGracefullyAsync(id);
            }
            var traces = Enumerable.Range(1, 3).ToDictionary(id => id, Lines);
            if (crashed is { } clock) traces[3].Add(PlacementTraceMerger.CrashLine(3, clock));
            return traces;
        }, PlacementTraceMerger.Merge);

    /// <summary>Node 1 is wrong on purpose (FORMALCHAT_TEST_FAULT, Node.CSharp/TestFault.cs): TLC
    /// must reject the trace at one of node 1's lines of the action the fault breaks. The run
    /// goes on until node 1 has logged a wrong step (with a kill -9 of the leader, if the first
    /// election did not make node 1 forward a candidate).</summary>
    [SkippableTheory]
    [InlineData("skip-age-reset", "RecvHeartbeat")]
    [InlineData("forget-participant", "RecvElection")]
    public async Task A_wrong_node_is_rejected(string fault, string brokenAction)
    {
        var jar = RequireTlc();
        var directory = Directory.CreateTempSubdirectory($"formalchat-trace-{fault}-").FullName;
        var traces = new Dictionary<int, List<JObject>>();
        await using (var cluster = await TestCluster.StartTracedAsync(3, directory, id =>
                         id == 1 ? new Dictionary<string, string> { ["FORMALCHAT_TEST_FAULT"] = fault } : new()))
        {
            bool WrongStepLogged() => CausalMerger.ReadNode(cluster.TracePath(1)).Any(line => IsWrong(fault, line));
            long? crashed = null;
            if (fault == "forget-participant")
            {
                await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
                if (!WrongStepLogged())
                {
                    cluster.Kill(3);
                    crashed = Stopwatch.GetTimestamp();
                }
            }
            await Eventually.TrueAsync(() => Task.FromResult(WrongStepLogged()), Deadline,
                $"node 1 logged a wrong {brokenAction} step", () => cluster.Output);
            for (var id = 1; id <= 3; id++)
            {
                if (!cluster.HasExited(id)) await cluster.StopGracefullyAsync(id);
            }
            for (var id = 1; id <= 3; id++) traces[id] = CausalMerger.ReadNode(cluster.TracePath(id));
            if (crashed is { } clock) traces[3].Add(TraceMerger.CrashLine(3, clock));
        }

        var (result, lines) = await ValidateAsync(jar, directory, traces);

        var rejected = RejectedLine(result, lines, "the wrong node's trace");
        Assert.Equal(brokenAction, (string)rejected["action"]!);
        Assert.Equal(1, (int)rejected["node"]!);
        Discard(directory);
    }

    /// <summary>A line of node 1 that shows its fault: a heartbeat that left the sender's age above 0,
    /// or a forwarded candidate without taking part in the round.</summary>
    private static bool IsWrong(string fault, JObject line)
    {
        var received = line["msg"]!;
        return (fault, (string)line["action"]!) switch
        {
            ("skip-age-reset", "RecvHeartbeat") =>
                line["age"]!.Any(pair => (int)pair[0]! == (int)received["id"]! && (int)pair[1]! > 0),
            ("forget-participant", "RecvElection") =>
                (int)received["id"]! > (int)line["node"]! && line["sent"]!.Any() && !(bool)line["participant"]!,
            _ => false,
        };
    }

    /// <summary>The merge puts a receive after its send even when the receiver's clock says earlier.</summary>
    [Fact]
    public void The_merge_puts_a_receive_after_its_send_whatever_the_clocks_say()
    {
        JObject Line(int node, long clock, string action, JObject message, params JObject[] sent) => new()
        {
            ["node"] = node, ["step"] = 1, ["clock"] = clock, ["action"] = action, ["msg"] = message,
            ["sent"] = new JArray(sent.Cast<object>().ToArray()), ["view"] = new JArray(), ["age"] = new JArray(),
            ["epoch"] = 1, ["participant"] = false, ["leader"] = 0,
        };
        var election = new JObject { ["type"] = "election", ["to"] = 2, ["id"] = 1, ["epoch"] = 1, ["leader"] = 0 };
        var none = new JObject { ["type"] = "none", ["to"] = 0, ["id"] = 0, ["epoch"] = 0, ["leader"] = 0 };
        var nodes = new Dictionary<int, List<JObject>>
        {
            [1] = [Line(1, 20, "StartElection", none, election)],
            [2] = [Line(2, 10, "RecvElection", election), Line(2, 30, "Tick", none)],
        };
        var path = Path.GetTempFileName();
        try
        {
            var merged = TraceMerger.Merge(nodes, 5, path);
            Assert.Equal(["StartElection", "RecvElection", "Tick"], merged.Select(line => (string)line["action"]!));
            Assert.Equal(4, File.ReadAllLines(path).Length);
        }
        finally { File.Delete(path); }
    }

    /// <summary>The placement merge, by the same causal merge: a receipt after its send whatever the
    /// clocks say, the rooms in the header in ordinal order, a crash line kept as it is.</summary>
    [Fact]
    public void The_placement_merge_puts_a_receipt_after_its_send_and_names_the_rooms_in_ordinal_order()
    {
        var placed = JObject.Parse("""{"type":"placed","to":1,"room":"#b","assignment":{"owner":1,"epoch":2,"leader":3,"version":1}}""");
        JObject Line(int node, long clock, JObject[] received, JObject[] sent, params string[] rooms) => new()
        {
            ["node"] = node, ["step"] = 1, ["clock"] = clock,
            ["received"] = new JArray(received.Cast<object>().ToArray()), ["sent"] = new JArray(sent.Cast<object>().ToArray()),
            ["placements"] = new JArray(rooms.Select(room => new JObject { ["room"] = room }).Cast<object>().ToArray()),
        };
        var nodes = new Dictionary<int, List<JObject>>
        {
            [1] = [Line(1, 10, [placed], [], "#b")],
            [3] = [Line(3, 20, [], [placed], "#b", "#B"), PlacementTraceMerger.CrashLine(3, 30)],
        };
        var path = Path.GetTempFileName();
        try
        {
            var merged = PlacementTraceMerger.Merge(nodes, path);
            Assert.Equal([3, 1, 3], merged.Select(line => (int)line["node"]!));
            var header = JObject.Parse(File.ReadLines(path).First());
            Assert.Equal(["#B", "#b"], header["rooms"]!.Values<string>());
            Assert.True((bool)merged[2]["crash"]!);
        }
        finally { File.Delete(path); }
    }

    private static Func<JObject, bool> Frame(string type, string room) =>
        frame => (string?)frame["type"] == type && (string?)frame["room"] == room;

    /// <summary>A client of the node at <paramref name="port"/> that has joined #trace.</summary>
    private static async Task<TestClient> JoinedAsync(int port, string nick)
    {
        var client = await TestClient.ConnectAsync(port, nick);
        await client.SendAsync(new JObject { ["type"] = "join", ["room"] = "#trace" });
        await client.NextAsync(Frame("joined", "#trace"));
        return client;
    }

    /// <summary>Posts each message to #trace and waits until it comes back sequenced.</summary>
    private static async Task SayAsync(TestClient client, params int[] ids)
    {
        foreach (var id in ids)
        {
            await client.SendAsync(new JObject { ["type"] = "say", ["room"] = "#trace", ["text"] = $"line {id}", ["id"] = id });
            await client.NextAsync(frame => Frame("message", "#trace")(frame) && (string?)frame["text"] == $"line {id}", TimeSpan.FromSeconds(20));
        }
    }

    /// <summary>Merges the traces and has TLC check them; returns TLC's verdict and the merged lines.</summary>
    private async Task<(TlcRunner.Result Result, List<JObject> Lines)> ValidateAsync(string jar, string directory, Dictionary<int, List<JObject>> traces)
    {
        var merged = Path.Combine(directory, "merged.ndjson");
        var lines = TraceMerger.Merge(traces, TestCluster.SuspectAfter, merged);
        var result = await TlcRunner.ValidateAsync(jar, "TraceFormalChat", merged, directory);
        var verdict = result.Accepted ? "accepted" : $"rejected line {result.Matched + 1} of {result.Steps}: {(result.Matched < lines.Count ? lines[result.Matched].ToString(Newtonsoft.Json.Formatting.None) : "-")}";
        output.WriteLine($"{lines.Count} trace lines ({string.Join(", ", traces.Select(node => $"node {node.Key}: {node.Value.Count}"))}); TLC {verdict} in {result.Elapsed.TotalSeconds:0.0} s");
        return (result, lines);
    }

    /// <summary>The line TLC could not follow, once it has rejected the trace short of its end.</summary>
    private static JObject RejectedLine(TlcRunner.Result result, List<JObject> lines, string what)
    {
        Assert.False(result.Accepted, $"TLC accepted {what}:\n{Tail(result.Output)}");
        Assert.True(result.Matched < lines.Count, $"TLC followed no line short of the end:\n{Tail(result.Output)}");
        return lines[result.Matched];
    }

    /// <summary>FORMALCHAT_TRACE_KEEP=1 keeps the traces and TLC's files of passing runs too.</summary>
    private void Discard(string directory)
    {
        if (Environment.GetEnvironmentVariable("FORMALCHAT_TRACE_KEEP") == "1") output.WriteLine($"traces kept in {directory}");
        else Directory.Delete(directory, recursive: true);
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];
}
