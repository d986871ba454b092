using System.Diagnostics;
using System.Net.Sockets;
using FormalChat.Cluster.Tests.RawClients;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// A short flood, so CI notices when load alone (no crash) destabilises the cluster: one raw
/// client on node 1 sends a few thousand messages into one room as fast as its socket takes
/// them (each with a client message id, as Client.CSharp sends it), while raw receivers on every node check the room's sequence numbers. Under load the
/// cluster must keep its leader and epoch, deliver every message once and in order, answer
/// status afterwards and stay within a memory bound. The benchmark's fan-out mode measures the
/// same thing at a larger scale (tests/Benchmarks/Fanout).
/// </summary>
public class LoadSmokeTests
{
    private const int Messages = 3000;
    private const int ReceiversPerNode = 2;
    private const string Room = "#load";
    private const double MaxResidentMegabytes = 512;
    private static readonly TimeSpan SetupDeadline = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan DeliveryDeadline = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StatusDeadline = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_flood_from_one_client_keeps_the_leader_and_delivers_every_message_once_in_order()
    {
        // No rate limit: the sender floods as fast as the cluster takes it.
        // No rebalancing either: a raw receiver does not follow a redirect.
        await using var cluster = await TestCluster.StartAsync(3, "--client-rate", "0", "--no-rebalance");
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], SetupDeadline);
        var receivers = new List<RawChatClient>();
        var tallies = new List<TextTally>();
        await using var sender = await RawChatClient.ConnectAsync(cluster.ClientPort(1), "flooder", Room);
        try
        {
            for (var n = 0; n < 3 * ReceiversPerNode; n++)
            {
                var tally = new TextTally();
                tallies.Add(tally);
                receivers.Add(await RawChatClient.ConnectAsync(cluster.ClientPort(n % 3 + 1), $"reader{n}", Room, tally.Count));
            }
            // Every receiver sees a first message before the flood, so the room is placed and replicated.
            await sender.SendAsync(sender.SayFrame("first", id: 1));
            await Eventually.TrueAsync(() => Task.FromResult(tallies.All(t => t.Distinct >= 1)), SetupDeadline, "the first message reached every receiver");
            // The epoch to keep is the one of a settled cluster just before the flood: starting
            // processes on two cores can cost an election during setup, which is not the flood's doing.
            await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], SetupDeadline);
            var before = new Dictionary<int, long>();
            foreach (var id in new[] { 1, 2, 3 }) before[id] = (long)(await cluster.StatusAsync(id))["epoch"]!;

            var sending = Task.Factory.StartNew(() => Flood(sender), TaskCreationOptions.LongRunning);
            var delivered = await WithinAsync(() => tallies.All(t => t.Distinct == Messages + 1), DeliveryDeadline);
            var sent = await sending;

            // One snapshot of the receivers' counts: a wedged cluster keeps delivering while the nodes are checked.
            var receiverCounts = Summary(receivers, tallies);
            var failures = new List<string>();
            if (sent != Messages) failures.Add($"the sender could send only {sent} of {Messages} messages (the node stopped reading)");
            if (!delivered) failures.Add($"not every receiver got all {Messages + 1} messages within {DeliveryDeadline.TotalSeconds:0} s");
            for (var n = 0; n < receivers.Count; n++)
            {
                var (seq, tally) = (receivers[n].Seq, tallies[n]);
                if (seq.Duplicates > 0 || seq.OutOfOrder > 0 || tally.Repeated > 0)
                {
                    failures.Add($"reader{n} (node {n % 3 + 1}): {seq.Duplicates} duplicate and {seq.OutOfOrder} out-of-order frames, " +
                                 $"{tally.Repeated} texts again under a new seq");
                }
            }
            foreach (var id in new[] { 1, 2, 3 }) failures.AddRange(await CheckNodeAsync(cluster, id, before[id]));
            Assert.True(failures.Count == 0, string.Join("\n", failures) + $"\nreceivers: {receiverCounts}\n{Tail(cluster.Output)}");
        }
        finally
        {
            foreach (var receiver in receivers) await receiver.DisposeAsync();
        }
    }

    /// <summary>Sends the flood; returns how many went out before the node stopped taking them.</summary>
    private static int Flood(RawChatClient sender)
    {
        for (var n = 0; n < Messages; n++)
        {
            try { sender.Send(sender.SayFrame($"m{n}", id: n + 2)); }
            catch (SocketException) { return n; }
        }
        return Messages;
    }

    /// <summary>The node answers status in time, with the same leader and epoch, and a bounded peak memory.</summary>
    private static async Task<IEnumerable<string>> CheckNodeAsync(TestCluster cluster, int id, long epochBefore)
    {
        var failures = new List<string>();
        JObject? status = null;
        try { status = await cluster.StatusAsync(id).WaitAsync(StatusDeadline); }
        catch (Exception error) when (error is TimeoutException or IOException or SocketException) { }
        if (status is null) failures.Add($"node {id} did not answer status within {StatusDeadline.TotalSeconds:0} s after the flood");
        else
        {
            if ((int?)status["leader"] != 3) failures.Add($"node {id} follows leader {status["leader"]} after the flood, not 3");
            if ((long)status["epoch"]! != epochBefore) failures.Add($"node {id}: epoch {epochBefore} before the flood, {status["epoch"]} after (an election happened)");
        }
        var peak = ProcessMemory.PeakMegabytes(cluster.ProcessId(id)) ?? cluster.NodeMemoryMegabytes(id);
        if (peak > MaxResidentMegabytes) failures.Add($"node {id} peaked at {peak:0} MB resident, over {MaxResidentMegabytes:0} MB");
        return failures;
    }

    /// <summary>Waits for a condition up to a deadline and says whether it came true, so every check can be reported together.</summary>
    private static async Task<bool> WithinAsync(Func<bool> condition, TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > deadline) return false;
            await Task.Delay(50);
        }
        return true;
    }

    private static string Summary(List<RawChatClient> receivers, List<TextTally> tallies) =>
        string.Join("; ", receivers.Select((r, n) => $"reader{n}: {tallies[n].Distinct} texts, {r.Seq.Distinct} seqs, {r.Seq.Frames} frames{(r.CloseReason is { } why ? $", closed: {why}" : "")}{(r.Problem is { } problem ? $", {problem}" : "")}"));

    /// <summary>Distinct texts one receiver got: a message sequenced twice shows as a new seq with an old text.</summary>
    private sealed class TextTally
    {
        private readonly HashSet<string> _texts = new();
        private readonly HashSet<long> _seqs = new();
        private int _distinct;
        private int _repeated;

        public int Distinct => Volatile.Read(ref _distinct);
        public int Repeated => Volatile.Read(ref _repeated);

        /// <summary>A RawChatClient.MessageHandler; a repeat under a seq already seen is the SeqChecker's duplicate, not counted here.</summary>
        public void Count(long seq, ReadOnlySpan<byte> text)
        {
            var newSeq = _seqs.Add(seq);
            if (_texts.Add(System.Text.Encoding.UTF8.GetString(text))) Volatile.Write(ref _distinct, _distinct + 1);
            else if (newSeq) Volatile.Write(ref _repeated, _repeated + 1);
        }
    }

    private static string Tail(string output) => string.Join("\n", output.Split('\n').TakeLast(40));
}
