using FormalChat.Benchmarks;
using System.Diagnostics;
using FormalChat.Cluster.Tests;
using FormalChat.Cluster.Tests.CrashTest;
using Newtonsoft.Json.Linq;

// Failover benchmarks on 127.0.0.1 with 100 ms heartbeats and K = 3 (the brief's setting).
//   election [trials]  kill -9 the leader of 3 nodes; time until both survivors agree on node 2
//   resume   [trials]  kill -9 a node under 2 scripted clients; time until both show a new message
//   clients  [count]   one node: connect `count` clients (default 10000), then one broadcast to all
//   crash [seconds] [nodes] [seed] [node arguments]  6 clients send for `seconds` (default 60),
//                      each with up to 32 lines unacknowledged and no pause (nodes with
//                      --client-rate 0 unless node arguments are given), while random
//                      nodes of `nodes` (default 3) are killed with -9 and restarted, one at a time;
//                      prints the window, sent, acknowledged, delivered, lost, duplicated,
//                      failovers, longest pause (tests/Cluster.Tests/CrashTest)
//   fanout [flags]     one room's fan-out against ngircd and FormalChat clusters, one table
//                      (Fanout/FanoutBenchmark.cs; `fanout --help` lists the flags)
//   codec [seconds]    Wire encode/decode of a peer `sequenced` and a client `say`/`message`
//                      frame: ops/s and bytes allocated per op (Codec/CodecBenchmark.cs)
var mode = args.FirstOrDefault() ?? "election";
TestCluster.SuspectAfter = 3;
// Nodes as shipped: fully optimized code from the first call (Node.CSharp.csproj).
TestCluster.QuickStart = false;
if (mode == "fanout") return await FormalChat.Benchmarks.Fanout.FanoutBenchmark.RunAsync(args[1..]);
if (mode == "codec") return FormalChat.Benchmarks.Codec.CodecBenchmark.Run(args[1..]);
if (mode == "crash") return await Crash(args);
if (mode == "clients") return await Clients(args.Length > 1 && int.TryParse(args[1], out var count) && count is > 0 and <= 50_000 ? count : 10_000);
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

static async Task<int> Crash(string[] args)
{
    // crash [seconds] [nodes] [seed] [node arguments...]: node arguments (from the first one
    // starting with --) replace the crash test's default; `--max-frame 65536` is the nodes' own.
    // Lines a client may have typed and not yet seen acknowledged.
    const int CrashWindow = 32;
    var positional = args.Skip(1).TakeWhile(arg => !arg.StartsWith("--", StringComparison.Ordinal)).ToArray();
    var nodeArguments = args.Skip(1).SkipWhile(arg => !arg.StartsWith("--", StringComparison.Ordinal)).ToArray();
    int Argument(int index, int fallback, int min, int max) =>
        positional.Length <= index ? fallback
        : int.TryParse(positional[index], out var value) && value >= min && value <= max ? value
        : throw new ArgumentException("usage: Benchmarks crash [seconds 1-3600] [nodes 2-9] [seed 1-2147483647] [node arguments]");
    var options = new CrashTestOptions
    {
        Duration = TimeSpan.FromSeconds(Argument(0, 60, 1, 3600)),
        Nodes = Argument(1, 3, 2, 9),
        Seed = positional.Length > 2 ? Argument(2, 0, 1, int.MaxValue) : CrashTestOptions.SeedFromEnvironment(),
        // Throughput under failover: each client sends as fast as its window of unacknowledged
        // lines allows, rather than one line every 20-50 ms.
        Window = CrashWindow,
        SendPauseMin = TimeSpan.Zero,
        SendPauseMax = TimeSpan.Zero,
        // The per-client flood guard (default 200 lines/s) would cap 6 clients at 1,200 lines/s
        // and be what this measures; the fan-out benchmark measures the guard's side.
        NodeArguments = ["--client-rate", "0"],
        // On a shared, loaded machine starting 6 client processes can take longer than the
        // test's 30 s; a step deadline bounds setup and chaos steps, not what is measured.
        StepDeadline = TimeSpan.FromSeconds(120),
        Progress = Console.WriteLine,
    };
    if (nodeArguments.Length > 0) options = options with { NodeArguments = nodeArguments };
    var report = await CrashTestRun.RunAsync(options);
    Console.WriteLine(report.Print());
    return report.Passed ? 0 : 1;
}

static async Task<int> Clients(int count)
{
    const string marker = "to everyone, once";
    // Every client comes from 127.0.0.1: lift the per-address limit (default 256) with the client limit.
    await using var cluster = await TestCluster.StartAsync(1, "--max-clients", (count + 10).ToString(), "--max-connections-per-ip", "0");
    var clients = new LoadClient[count];
    var clock = Stopwatch.StartNew();
    // 32 hellos in flight at a time, as a crowd of real users would arrive.
    await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 32 },
        async (n, _) => clients[n] = await LoadClient.ConnectAsync(cluster.ClientPort(1), $"u{n}", marker));
    var connectSeconds = clock.Elapsed.TotalSeconds;
    var status = await cluster.StatusAsync(1);
    var memory = cluster.NodeMemoryMegabytes(1);
    clock.Restart();
    await clients[0].SendAsync($"{{\"type\":\"say\",\"text\":\"{marker}\"}}");
    await Task.WhenAll(clients.Select(client => client.Seen)).WaitAsync(TimeSpan.FromSeconds(120));
    var fanOutMs = clock.Elapsed.TotalMilliseconds;
    Console.WriteLine($"clients: {count} connected to one node in {connectSeconds:0.0} s ({count / connectSeconds:0} hellos/s); " +
                      $"node reports {status["nodes"]![0]!["load"]!["clients"]} clients, {memory:0} MB resident; " +
                      $"one broadcast reached all {count} in {fanOutMs:0} ms");
    foreach (var client in clients) await client.DisposeAsync();
    return 0;
}

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
