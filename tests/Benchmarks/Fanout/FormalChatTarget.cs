using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using FormalChat.Cluster.Tests;
using FormalChat.Cluster.Tests.RawClients;
using Newtonsoft.Json.Linq;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// A fresh FormalChat cluster of 1–9 Release nodes (TestCluster: 100 ms heartbeats, K as the
/// benchmark sets it, a data directory of its own), a raw sender on node 1 and raw receivers
/// spread round-robin over the nodes, all in #bench. Status probes are connected before the
/// flood so the figures during and after it are the node's answer time, not a connection's.
/// </summary>
public sealed class FormalChatTarget : IFanoutTarget
{
    private const string Room = "#bench";
    private const string LateTick = "the loop fell behind";
    private const string LongStep = "one step took";
    private static readonly TimeSpan ProbeDeadline = TimeSpan.FromSeconds(10);

    private readonly TestCluster _cluster;
    private readonly int _nodes;
    private readonly List<RawChatClient> _clients = new();
    private readonly List<DeliveryLog> _logs = new();
    private readonly ConcurrentDictionary<int, TestClient> _probes = new();
    private readonly List<PeriodicProbe> _probesDuringRun = new();
    private readonly List<int> _pids = new();
    private RawChatClient? _sender;
    private long _epochBefore;
    private long? _epochAfterFlood;
    private int _electionsBefore;
    private int _viewLossesBefore;
    private int _lateTicksBefore;
    private int _longStepsBefore;

    private FormalChatTarget(TestCluster cluster, int nodes)
    {
        _cluster = cluster;
        _nodes = nodes;
    }

    public IReadOnlyList<DeliveryLog> Receivers => _logs;

    private IEnumerable<int> NodeIds => Enumerable.Range(1, _nodes);

    public static async Task<FormalChatTarget> StartAsync(int nodes, int receivers, int messages, TimeSpan setupDeadline)
    {
        // Started node by node rather than with TestCluster.StartAsync, so a node that fails to
        // come up is still killed with the others.
        var target = new FormalChatTarget(new TestCluster(), nodes);
        try
        {
            foreach (var id in target.NodeIds)
            {
                // No rate limit: the sender floods as fast as the node takes it (ngircd's flood
                // penalties are off too, MaxPenaltyTime = 0). No rebalancing: the receivers are
                // spread over the nodes on purpose, and a node that redirected some while the others
                // were still connecting theirs undid that. Receivers share the 2 cores with the
                // servers and fall seconds behind in a flood: a 16 MB queue each rather than the
                // default 1 MB, so the node's total bound (64 MB, then it stops reading the sender)
                // is what holds them, not a disconnect.
                target._cluster.StartNode(id, "--client-rate", "0", "--no-rebalance", "--max-client-queue-bytes", "16777216");
                target._pids.Add(target._cluster.ProcessId(id));
                ChildProcesses.Track(target._pids[^1]);
            }
            await target._cluster.WaitUntilListeningAsync();
            await target.SetUpAsync(receivers, messages).WaitAsync(setupDeadline);
            return target;
        }
        catch
        {
            await target.DisposeAsync();
            throw;
        }
    }

    private async Task SetUpAsync(int receivers, int messages)
    {
        var ids = NodeIds.ToArray();
        await _cluster.WaitForLeaderAsync(_nodes, ids, TimeSpan.FromSeconds(30));
        var clients = new RawChatClient[receivers];
        for (var n = 0; n < receivers; n++) _logs.Add(new DeliveryLog(messages));
        // 16 hellos in flight: quick, and well inside the node's accept backlog.
        await Parallel.ForEachAsync(Enumerable.Range(0, receivers), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (n, _) =>
        {
            var log = _logs[n];
            clients[n] = await RawChatClient.ConnectAsync(_cluster.ClientPort(n % _nodes + 1), $"r{n}", Room, (_, text) => log.Record(text));
        });
        _clients.AddRange(clients);
        _sender = await RawChatClient.ConnectAsync(_cluster.ClientPort(1), "snd", Room);
        _clients.Add(_sender);

        await _sender.SendAsync(_sender.SayFrame(DeliveryLog.WarmUpText, id: 1));
        await Eventually.TrueAsync(() => Task.FromResult(_logs.All(log => log.WarmedUp)), TimeSpan.FromSeconds(30), "the warm-up message reached every receiver");
        // The cluster must be settled before the clock starts: a start-up wobble is not the flood's doing.
        await _cluster.WaitForLeaderAsync(_nodes, ids, TimeSpan.FromSeconds(30));
        foreach (var id in ids) _probes[id] = await TestClient.OpenAsync(_cluster.ClientPort(id));
        // A connection of their own: one status question outstanding per connection, whatever the other probe asks.
        foreach (var id in ids)
            _probesDuringRun.Add(await PeriodicProbe.OpenAsync(_cluster.ClientPort(id), "{\"type\":\"status\"}\n", IsStatus, ProbeDeadline));
        _epochBefore = (await Task.WhenAll(ids.Select(id => StatusAsync(id, ProbeDeadline)))).Max(status => (long)status!["epoch"]!);
        var output = _cluster.Output;
        _electionsBefore = Count(output, "election won");
        _viewLossesBefore = Count(output, "left the view");
        _lateTicksBefore = Count(output, LateTick);
        _longStepsBefore = Count(output, LongStep);
    }

    // Client message ids as Client.CSharp sends them: the node's retry de-duplication relies on them.
    public void Send(int number) => _sender!.Send(_sender.SayFrame(DeliveryLog.Text(number), id: number + 2));

    public void StartProbes() => _probesDuringRun.ForEach(probe => probe.Start());

    public Task<string> StopProbesAsync() => PeriodicProbe.StopAllAsync(_probesDuringRun);

    private static bool IsStatus(string frame) => frame.Contains("\"type\":\"status\"", StringComparison.Ordinal);

    /// <summary>Every node's first answer to a status asked once the last message was sent, on its probe's own
    /// thread (PeriodicProbe); then each node's epoch, for the elections column if a node is gone by the end.</summary>
    public async Task<string> ProbeAsync()
    {
        var answers = await PeriodicProbe.AskAfterLastSend(_probesDuringRun);
        var statuses = await Task.WhenAll(NodeIds.Select(id => StatusAsync(id, ProbeDeadline)));
        _epochAfterFlood = statuses.Where(status => status is not null).Select(status => (long?)(long)status!["epoch"]!).Max();
        return answers;
    }

    /// <summary>Elections won during the run (from the nodes' logs), with the epoch before and after.</summary>
    public async Task<string> ElectionsAsync()
    {
        var final = await Task.WhenAll(NodeIds.Select(id => StatusAsync(id, TimeSpan.FromSeconds(5))));
        var answered = final.Where(status => status is not null).Select(status => (long)status!["epoch"]!).ToList();
        long? after = answered.Count > 0 ? answered.Max() : _epochAfterFlood;
        var won = Count(_cluster.Output, "election won") - _electionsBefore;
        // An election that never completes still raises the epoch, so both are shown.
        var epochs = after == _epochBefore ? "" : $", epoch {_epochBefore}→{(after is { } e ? e.ToString() : "?")}";
        return $"{won} won{epochs}";
    }

    /// <summary>View losses during the run: each node logs "left the view" for every node it stops counting as alive.</summary>
    public string Suspicions() => (Count(_cluster.Output, "left the view") - _viewLossesBefore).ToString(CultureInfo.InvariantCulture);

    public (int Duplicates, int OutOfOrder) Anomalies() =>
        (_clients.Take(_logs.Count).Sum(c => c.Seq.Duplicates), _clients.Take(_logs.Count).Sum(c => c.Seq.OutOfOrder));

    public string PeakMemory() =>
        string.Join("/", NodeIds.Select(id => ProcessMemory.PeakMegabytes(_cluster.ProcessId(id)) is { } mb ? $"{mb:0}" : "gone"));

    public string Notes()
    {
        var notes = new List<string>();
        var receivers = _clients.Take(_logs.Count).ToList();
        // A message the owner sequenced twice arrives as a new seq with an old text.
        var resequenced = _logs.Sum(log => log.Repeats) - receivers.Sum(c => c.Seq.Duplicates);
        if (resequenced > 0) notes.Add($"{resequenced} copies under a new seq");
        // What the nodes' LoopWatch said: the usual cause of a suspicion or a slow status under load.
        var lateTicks = Count(_cluster.Output, LateTick) - _lateTicksBefore;
        var longSteps = Count(_cluster.Output, LongStep) - _longStepsBefore;
        if (lateTicks + longSteps > 0) notes.Add($"loops fell behind: {lateTicks} late ticks, {longSteps} steps over 50 ms");
        foreach (var group in receivers.Where(c => c.CloseReason is not null).GroupBy(c => c.CloseReason))
            notes.Add($"{group.Count()} receivers closed ({group.Key})");
        foreach (var group in _clients.Where(c => c.Problem is not null).GroupBy(c => Shorten(c.Problem!)))
            notes.Add($"{group.Count()}× {group.Key}");
        foreach (var id in NodeIds.Where(_cluster.HasExited)) notes.Add($"node {id} exited");
        return string.Join("; ", notes);
    }

    private async Task<JObject?> StatusAsync(int id, TimeSpan within)
    {
        var probe = _probes.GetValueOrDefault(id);
        try
        {
            probe ??= _probes[id] = await TestClient.OpenAsync(_cluster.ClientPort(id));
            await probe.SendAsync(new JObject { ["type"] = "status" });
            return await probe.NextAsync(frame => (string?)frame["type"] == "status", within);
        }
        catch (Exception error) when (error is TimeoutException or IOException or System.Net.Sockets.SocketException)
        {
            // A probe that timed out may still get the late answer; the next question uses a new connection.
            if (probe is not null) await probe.DisposeAsync();
            _probes.TryRemove(id, out _);
            return null;
        }
    }

    private static int Count(string text, string what)
    {
        var count = 0;
        for (var at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "…";

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients) await client.DisposeAsync();
        foreach (var probe in _probes.Values) await probe.DisposeAsync();
        foreach (var probe in _probesDuringRun) await probe.DisposeAsync();
        await _cluster.DisposeAsync();
        foreach (var pid in _pids) ChildProcesses.Untrack(pid);
    }
}
