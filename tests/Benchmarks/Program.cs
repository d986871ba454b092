using System.Diagnostics;
using FormalChat.Cluster.Tests;
using Newtonsoft.Json.Linq;

// Failover benchmarks on 127.0.0.1 with 100 ms heartbeats and K = 3 (the brief's setting).
//   election [trials]  kill -9 the leader of 3 nodes; time until both survivors agree on node 2
//   resume   [trials]  kill -9 a node under 2 scripted clients; time until both show a new message
var mode = args.FirstOrDefault() ?? "election";
TestCluster.SuspectAfter = 3;
var trials = args.Length > 1 && int.TryParse(args[1], out var n) && n is > 0 and <= 100 ? n : 5;
var samples = new List<double>();

for (var trial = 1; trial <= trials; trial++)
{
    var milliseconds = mode switch
    {
        "election" => await Election(),
        "resume" => await Resume(),
        _ => throw new ArgumentException("usage: Benchmarks election|resume [trials 1-100]"),
    };
    samples.Add(milliseconds);
    Console.WriteLine($"{mode} trial {trial}: {milliseconds:0} ms");
}
samples.Sort();
Console.WriteLine($"{mode}: {trials} trials, heartbeat {TestCluster.HeartbeatMs} ms, K {TestCluster.SuspectAfter}: " +
                  $"min {samples[0]:0} ms, median {samples[samples.Count / 2]:0} ms, max {samples[^1]:0} ms");
return 0;

static async Task<double> Election()
{
    await using var cluster = await TestCluster.StartAsync(3);
    await cluster.WaitForLeaderAsync(3, [1, 2, 3], TimeSpan.FromSeconds(20));
    var clock = Stopwatch.StartNew();
    cluster.Kill(3);
    await cluster.WaitForLeaderAsync(2, [1, 2], TimeSpan.FromSeconds(20));
    return clock.Elapsed.TotalMilliseconds;
}

static async Task<double> Resume()
{
    await using var cluster = await TestCluster.StartAsync(3);
    await cluster.WaitForLeaderAsync(3, [1, 2, 3], TimeSpan.FromSeconds(20));
    await using var speaker = await TestClient.ConnectAsync(cluster.ClientPort(1), "speaker");
    var victim = 2;
    await using var first = ClientProcess.Start("--nick", "moving1", "--server", $"127.0.0.1:{cluster.ClientPort(victim)}", "--multicast", cluster.MulticastGroup);
    await using var second = ClientProcess.Start("--nick", "moving2", "--server", $"127.0.0.1:{cluster.ClientPort(victim)}", "--multicast", cluster.MulticastGroup);
    foreach (var client in new[] { first, second }) await client.NextAsync(e => (string?)e["event"] == "welcome");

    var clock = Stopwatch.StartNew();
    cluster.Kill(victim);
    // The speaker keeps talking; a client has resumed when it shows a message sent after the kill.
    var resumed = new[] { first, second }.Select(client => client.NextAsync(e => (string?)e["event"] == "reconnected")).ToArray();
    await Task.WhenAll(resumed);
    await speaker.SendAsync(new JObject { ["type"] = "say", ["text"] = "after the crash" });
    foreach (var client in new[] { first, second })
    {
        await client.NextAsync(e => (string?)e["event"] == "message" && (string?)e["text"] == "after the crash");
    }
    return clock.Elapsed.TotalMilliseconds;
}
