using System.Diagnostics;
using System.Net.Sockets;
using FormalChat.Cluster.Tests.RawClients;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// Load and a fault at once, seen by raw sockets (Client.CSharp filters duplicates, so it could
/// hide them): a room's owner killed with -9 in the middle of a flood, and SIGTERM to a node
/// that is being flooded.
/// </summary>
public class FailoverUnderLoadTests
{
    private const string Room = "#storm";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Members_never_see_a_seq_twice_or_out_of_order_when_the_owner_dies_in_a_flood()
    {
        // No rebalancing: a raw watcher does not follow a redirect.
        await using var cluster = await TestCluster.StartAsync(3, "--client-rate", "0", "--no-rebalance");
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        await using var probe = await TestClient.ConnectAsync(cluster.ClientPort(1), "probe");
        await probe.SendAsync(new JObject { ["type"] = "join", ["room"] = Room });
        var owner = await OwnerAsync(probe);
        var survivors = new[] { 1, 2, 3 }.Where(id => id != owner).ToArray();
        await using var sender = await RawChatClient.ConnectAsync(cluster.ClientPort(survivors[0]), "stormer", Room);
        var receivers = new List<RawChatClient>();
        var sawLast = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        try
        {
            foreach (var id in survivors.Concat(survivors))
            {
                var watcher = receivers.Count;
                receivers.Add(await RawChatClient.ConnectAsync(cluster.ClientPort(id), $"watcher{watcher}", Room,
                    (_, text) => { if (text.SequenceEqual("last"u8)) sawLast[watcher] = true; }));
            }
            const int messages = 3000;
            var sending = Task.Factory.StartNew(() =>
            {
                for (var n = 1; n <= messages; n++)
                {
                    try { sender.Send(sender.SayFrame($"m{n}", id: n)); }
                    catch (SocketException) { return; }
                }
            }, TaskCreationOptions.LongRunning);

            await Eventually.TrueAsync(() => Task.FromResult(receivers.All(r => r.Seq.Distinct >= 300)), Deadline, "the flood reaches every watcher");
            cluster.Kill(owner);
            var atKill = receivers.Max(r => r.Seq.Distinct);
            await sending;
            // The room goes on under its new owner: a message sent after the flood reaches every
            // watcher (messages in flight at the kill may never commit, so no count is awaited).
            sender.Send(sender.SayFrame("last", id: messages + 1));
            await Eventually.TrueAsync(() => Task.FromResult(sawLast.Count == receivers.Count && receivers.All(r => r.Seq.Distinct > atKill)),
                Deadline, "the room goes on under its new owner",
            () => $"at the kill {atKill}; now {string.Join(", ", receivers.Select(r => $"{r.Seq.Distinct}{(r.CloseReason is { } why ? $" (closed: {why})" : "")}"))}\n{cluster.Output}");

            foreach (var (receiver, n) in receivers.Select((r, n) => (r, n)))
            {
                Assert.True(receiver.Seq.Duplicates == 0 && receiver.Seq.OutOfOrder == 0,
                    $"watcher{n}: {receiver.Seq.Duplicates} duplicate and {receiver.Seq.OutOfOrder} out-of-order frames of {receiver.Seq.Frames}\n{cluster.Output}");
            }
        }
        finally
        {
            foreach (var receiver in receivers) await receiver.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_node_under_a_flood_stops_within_two_seconds_of_SIGTERM()
    {
        await using var cluster = await TestCluster.StartAsync(1, "--client-rate", "0");
        await cluster.WaitForLeaderAsync(leader: 1, nodes: [1], Deadline);
        await using var sender = await RawChatClient.ConnectAsync(cluster.ClientPort(1), "stormer", Room);
        await using var watcher = await RawChatClient.ConnectAsync(cluster.ClientPort(1), "watcher", Room);
        using var stop = new CancellationTokenSource();
        var sending = Task.Factory.StartNew(() =>
        {
            for (var n = 1; !stop.IsCancellationRequested && n < 1_000_000; n++)
            {
                try { sender.Send(sender.SayFrame($"m{n}", id: n)); }
                catch (Exception error) when (error is SocketException or IOException or ObjectDisposedException) { return; }
            }
        }, TaskCreationOptions.LongRunning);
        await Eventually.TrueAsync(() => Task.FromResult(watcher.Seq.Distinct >= 2000), Deadline, "the node is under the flood");

        var clock = Stopwatch.StartNew();
        await cluster.StopGracefullyAsync(1);
        var took = clock.Elapsed;
        stop.Cancel();
        await sending;

        Assert.True(took < TimeSpan.FromSeconds(2.5), $"the node took {took.TotalMilliseconds:0} ms to stop\n{cluster.Output}");
    }

    private static async Task<int> OwnerAsync(TestClient probe)
    {
        var owner = 0;
        await Eventually.TrueAsync(async () =>
        {
            await probe.SendAsync(new JObject { ["type"] = "rooms" });
            var rooms = await probe.NextAsync(frame => (string?)frame["type"] == "rooms");
            owner = rooms["rooms"]!.Where(r => (string?)r["room"] == Room).Select(r => (int?)r["owner"] ?? 0).FirstOrDefault();
            return owner != 0;
        }, Deadline, $"{Room} is placed");
        return owner;
    }
}
