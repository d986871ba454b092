using System.Diagnostics;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.CrashTest;

/// <summary>
/// A whole crash test: start the nodes and the clients, let every client join its rooms, then
/// send continuously while the chaos kills and restarts nodes; at the end stop the chaos, let the
/// clients drain, and check what they showed. Used by the xunit test and the benchmark.
/// </summary>
public static class CrashTestRun
{
    public static async Task<CrashReport> RunAsync(CrashTestOptions options)
    {
        var clock = Stopwatch.StartNew();
        var nodes = Enumerable.Range(1, options.Nodes).ToArray();
        var rooms = options.ExtraRooms.Prepend("#lobby").ToList();
        options.Progress($"crash test: seed {options.Seed} (FORMALCHAT_CRASH_SEED={options.Seed} replays the schedule), {options.Nodes} nodes, " +
                         $"{options.Clients} clients with a window of {options.Window} unacknowledged lines each, {options.Duration.TotalSeconds:0} s, heartbeat {TestCluster.HeartbeatMs} ms, K {TestCluster.SuspectAfter}" +
                         (options.NodeArguments.Count > 0 ? $", nodes with {string.Join(" ", options.NodeArguments)}" : ""));

        await using var cluster = await TestCluster.StartAsync(options.Nodes, options.NodeArguments.ToArray());
        await cluster.WaitForLeaderAsync(nodes.Max(), nodes, options.StepDeadline);
        var clients = new List<CrashClient>();
        try
        {
            for (var i = 0; i < options.Clients; i++)
            {
                var node = nodes[i % nodes.Length];
                clients.Add(CrashClient.Start($"c{i}", options.RoomsOf(i), node, cluster.ClientPort(node), cluster.MulticastGroup, clock, options.Window));
            }
            await Eventually.TrueAsync(() => Task.FromResult(clients.All(c => c.Welcomed)), options.StepDeadline, "every client welcomed",
                () => string.Join("\n", clients.Select(c => $"{c.Nick}: {c.Diagnostics}")));
            foreach (var client in clients)
            {
                foreach (var room in client.Rooms.Where(room => room != "#lobby")) await client.JoinAsync(room);
            }
            await Eventually.TrueAsync(() => Task.FromResult(clients.All(c => c.HasJoinedAll)), options.StepDeadline, "every client in its rooms");
            await WaitUntilPlacedAsync(cluster, nodes.Max(), rooms, options.StepDeadline);
            var chaos = new ChaosSchedule(cluster, options, clock);
            await chaos.WaitUntilReplicatedAsync();
            options.Progress($"{clock.Elapsed.TotalSeconds,6:0.0} s  {clients.Count} clients in their rooms, every room backed up; sending");

            var sendingStarted = clock.Elapsed;
            using var stop = new CancellationTokenSource();
            var senders = clients.Select((client, i) => SendAsync(client, new Random(options.Seed + 1 + i), options, stop.Token)).ToList();
            await chaos.RunAsync(until: sendingStarted + options.Duration);
            await stop.CancelAsync();
            await Task.WhenAll(senders);
            var sendingStopped = clock.Elapsed;
            options.Progress($"{sendingStopped.TotalSeconds,6:0.0} s  sending stopped after {clients.Sum(c => c.SentCount)} lines; draining");

            var drained = await DrainAsync(clients, options.DrainDeadline);
            var times = new CrashTimes(sendingStarted, sendingStopped, clock.Elapsed, drained);
            var records = clients.Select(c => new ClientRecord(c.Nick, c.Rooms, c.Sent, c.Events, Stayed: !c.Gone)).ToList();
            var report = CrashChecker.Check(options, records, chaos.Kills, times);
            report.ChaosFailure = chaos.Failure;
            await SaveAsync(options, records, clients, report);
            return report;
        }
        finally
        {
            foreach (var client in clients) await client.DisposeAsync();
        }
    }

    /// <summary>The workload of one client: a line every SendPauseMin..Max while fewer than Window
    /// await their ack, its rooms in turn.</summary>
    private static async Task SendAsync(CrashClient client, Random random, CrashTestOptions options, CancellationToken stop)
    {
        for (var n = 1; !stop.IsCancellationRequested; n++)
        {
            var room = client.Rooms[n % client.Rooms.Count];
            if (!await client.SayAsync(room, $"{client.Nick} m{n}", stop)) return;
            var pause = options.SendPauseMin + (options.SendPauseMax - options.SendPauseMin) * random.NextDouble();
            if (pause <= TimeSpan.Zero) continue;
            try
            {
                await Task.Delay(pause, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Waits until every line typed is acknowledged, then until every client has shown the last
    /// message of each of its rooms; false when the deadline passed first.
    /// </summary>
    private static async Task<bool> DrainAsync(IReadOnlyList<CrashClient> clients, TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        bool Acknowledged() => clients.Where(c => !c.Gone).All(c => c.Acknowledged >= c.SentCount);
        bool Shown() => clients.Where(c => !c.Gone).All(c => c.Rooms.All(room =>
            c.LastSeq(room) >= clients.Where(other => other.Rooms.Contains(room)).Max(other => other.LastSeq(room))));
        try
        {
            await Eventually.TrueAsync(() => Task.FromResult(Acknowledged()), deadline, "every line acknowledged");
            await Eventually.TrueAsync(() => Task.FromResult(Shown()), deadline - clock.Elapsed, "every room's last message shown by its members");
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Every room has an owner and a backup, as the leader sees it.</summary>
    private static async Task WaitUntilPlacedAsync(TestCluster cluster, int leader, IReadOnlyList<string> rooms, TimeSpan deadline)
    {
        await using var probe = await TestClient.OpenAsync(cluster.ClientPort(leader));
        JObject? last = null;
        await Eventually.TrueAsync(async () =>
        {
            await probe.SendAsync(new JObject { ["type"] = "rooms" });
            last = await probe.NextAsync(frame => (string?)frame["type"] == "rooms");
            var placed = last["rooms"]!.Where(room => room["owner"]?.Type == JTokenType.Integer && room["backup"]?.Type == JTokenType.Integer)
                .Select(room => (string)room["room"]!).ToHashSet();
            return rooms.All(placed.Contains);
        }, deadline, "every room placed with a backup", () => $"last rooms: {last}");
    }

    /// <summary>FORMALCHAT_TEST_LOGS=<dir> keeps every client's events and the report for a post-mortem.</summary>
    private static async Task SaveAsync(CrashTestOptions options, IReadOnlyList<ClientRecord> records, IReadOnlyList<CrashClient> clients, CrashReport report)
    {
        if (Environment.GetEnvironmentVariable("FORMALCHAT_TEST_LOGS") is not { Length: > 0 } logs) return;
        Directory.CreateDirectory(logs);
        var stem = Path.Combine(logs, $"crash-seed{options.Seed}-{DateTime.UtcNow:yyyyMMddTHHmmss}");
        await using (var events = new StreamWriter(stem + "-clients.jsonl"))
        {
            foreach (var record in records)
            {
                var lines = record.Sent.Select(sent => (sent.At, Json: new JObject { ["typed"] = sent.Text, ["room"] = sent.Room }))
                    .Concat(record.Events.Select(e => (e.At, e.Json)))
                    .OrderBy(line => line.At);
                foreach (var (at, json) in lines)
                {
                    var line = new JObject { ["client"] = record.Nick, ["ms"] = Math.Round(at.TotalMilliseconds, 1) };
                    line.Merge(json);
                    await events.WriteLineAsync(line.ToString(Formatting.None));
                }
            }
        }
        await File.WriteAllTextAsync(stem + "-stderr.txt", string.Join("\n", clients.Select(c => $"== {c.Nick}\n{c.Diagnostics}")));
        await File.WriteAllTextAsync(stem + "-report.txt", report.Print());
    }
}
