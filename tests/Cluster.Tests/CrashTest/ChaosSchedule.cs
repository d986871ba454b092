using System.Diagnostics;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.CrashTest;

/// <summary>One kill -9 and restart: when each step was done, on the run's clock.</summary>
public sealed record KillRecord(int Node, TimeSpan KilledAt)
{
    /// <summary>The survivors agreed on a leader and a view without the killed node.</summary>
    public TimeSpan? SurvivorsAgreedAt { get; set; }
    public TimeSpan? RestartedAt { get; set; }
    /// <summary>Every node shows the full view and the same leader again.</summary>
    public TimeSpan? RejoinedAt { get; set; }
    /// <summary>Every node reports every room with an up-to-date backup: ready for the next crash.</summary>
    public TimeSpan? ReplicatedAt { get; set; }

    public override string ToString()
    {
        static string After(TimeSpan from, TimeSpan? to) => to is { } t ? $"{(t - from).TotalMilliseconds:0} ms" : "never";
        return $"node {Node} killed at {KilledAt.TotalSeconds:0.0} s: survivors agreed after {After(KilledAt, SurvivorsAgreedAt)}, " +
               $"rejoined after {After(KilledAt, RejoinedAt)}, rooms backed up after {After(KilledAt, ReplicatedAt)}";
    }
}

/// <summary>
/// The chaos: every few seconds a random node gets kill -9; once the survivors agree on a leader
/// the node is started again (same id, same ports), and the next kill waits until it has rejoined
/// and every room has an up-to-date backup again, so never more than one node is down or
/// without its copy. Starts no new kill after the run's duration.
/// </summary>
public sealed class ChaosSchedule(TestCluster cluster, CrashTestOptions options, Stopwatch clock)
{
    private readonly Random _random = new(options.Seed);
    private readonly List<KillRecord> _kills = new();

    public IReadOnlyList<KillRecord> Kills { get { lock (_kills) return _kills.ToList(); } }

    /// <summary>Why the chaos stopped early (a step missed its deadline), or null.</summary>
    public string? Failure { get; private set; }

    private int[] AllNodes => Enumerable.Range(1, options.Nodes).ToArray();

    public async Task RunAsync(TimeSpan until)
    {
        try
        {
            while (true)
            {
                var pause = options.KillPauseMin + (options.KillPauseMax - options.KillPauseMin) * _random.NextDouble();
                // The pause is the workload's rhythm, not a wait for a condition.
                await Task.Delay(pause);
                if (clock.Elapsed >= until) return;
                await KillAndRestartAsync(_random.Next(1, options.Nodes + 1));
            }
        }
        catch (TimeoutException error)
        {
            Failure = FirstLines(error.Message, 40);
            options.Progress($"chaos stopped: {Failure}");
        }
    }

    private async Task KillAndRestartAsync(int victim)
    {
        var survivors = AllNodes.Where(id => id != victim).ToArray();
        var record = new KillRecord(victim, clock.Elapsed);
        lock (_kills) _kills.Add(record);
        cluster.Kill(victim);
        options.Progress($"{clock.Elapsed.TotalSeconds,6:0.0} s  kill -9 node {victim}");

        await cluster.WaitForLeaderAsync(survivors.Max(), survivors, options.StepDeadline);
        record.SurvivorsAgreedAt = clock.Elapsed;

        cluster.StartNode(victim, options.NodeArguments.ToArray());
        record.RestartedAt = clock.Elapsed;
        await cluster.WaitUntilListeningAsync();
        await cluster.WaitForLeaderAsync(AllNodes.Max(), AllNodes, options.StepDeadline);
        record.RejoinedAt = clock.Elapsed;

        await WaitUntilReplicatedAsync();
        record.ReplicatedAt = clock.Elapsed;
        options.Progress($"{clock.Elapsed.TotalSeconds,6:0.0} s  {record}");
    }

    /// <summary>
    /// Every node agrees on the leader and the full view, and none lists a room without an
    /// up-to-date backup: a crash now is a single crash.
    /// </summary>
    public async Task WaitUntilReplicatedAsync()
    {
        JObject? last = null;
        await Eventually.TrueAsync(async () =>
        {
            foreach (var id in AllNodes)
            {
                last = await cluster.StatusAsync(id);
                var view = last["nodes"]!.Select(node => (int)node["id"]!).Order();
                if ((int?)last["leader"] != AllNodes.Max() || !view.SequenceEqual(AllNodes)) return false;
                if (last["unreplicated"] is JArray { Count: > 0 }) return false;
            }
            return true;
        }, options.StepDeadline, "every room has an up-to-date backup at every node", () => $"last status: {last}");
    }

    private static string FirstLines(string text, int count) => string.Join("\n", text.Split('\n').Take(count));
}
