using System.Diagnostics;
using FormalChat.Cluster.Tests;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// `Benchmarks fanout`: the same fan-out workloads against ngircd and FormalChat clusters, on
/// this machine in one run, printed as one markdown table. Each scenario gets fresh servers,
/// so a wedged run cannot poison the next, and each is bounded by --cap.
/// </summary>
public static class FanoutBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args is ["--help"] or ["-h"])
        {
            Console.WriteLine(FanoutOptions.Usage);
            return 0;
        }
        var options = FanoutOptions.Parse(args, out var error);
        if (options is null)
        {
            Console.Error.WriteLine(error);
            Console.Error.WriteLine(FanoutOptions.Usage);
            return 2;
        }
        // The brief's failover setting: 100 ms heartbeats (TestCluster's), K = 3.
        TestCluster.SuspectAfter = 3;
        string? ngircd = null, ngircdMissing = null;
        if (options.Targets.Contains("ngircd")) ngircd = NgircdServer.FindOrInstall(out ngircdMissing);
        if (ngircdMissing is not null) Console.WriteLine($"ngircd skipped: {ngircdMissing}");

        var loadBefore = LoadAverage();
        var clock = Stopwatch.StartNew();
        var results = new List<FanoutResult>();
        foreach (var scenario in options.Scenarios)
        {
            Console.WriteLine($"== {scenario.Name}: {scenario.Describe(options)}");
            foreach (var target in options.Targets)
            {
                var result = await FanoutRun.RunAsync(target, scenario, options, ngircd);
                results.Add(result);
                Console.WriteLine($"   {FanoutTable.Name(target)}: {result.DeliveriesPerSecond:#,0} deliveries/s, {result.Delivered:#,0}/{result.Expected:#,0} delivered, " +
                                  $"p99 {result.P99:0.0} ms{(result.Notes.Length > 0 ? $"; {result.Notes}" : "")} ({clock.Elapsed.TotalSeconds:0} s so far)");
            }
        }

        var report = Header(options, clock.Elapsed, loadBefore, LoadAverage()) + "\n" + FanoutTable.Render(results) + "\n" + Legend;
        Console.WriteLine();
        Console.WriteLine(report);
        if (options.OutputPath is { } path) await File.WriteAllTextAsync(path, report);
        return 0;
    }

    /// <summary>The 1-minute load average: other work on this machine skews every figure, so the table says how much there was.</summary>
    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "?"; }
    }

    private static string Header(FanoutOptions options, TimeSpan took, string loadBefore, string loadAfter) =>
        $"Fan-out benchmark, {DateTime.Now:yyyy-MM-dd HH:mm}, {Environment.ProcessorCount} cores, 127.0.0.1, Release; " +
        $"FormalChat nodes at --heartbeat-ms {TestCluster.HeartbeatMs} --suspect-after {TestCluster.SuspectAfter}, default --fsync batch; " +
        $"flood {options.Messages:#,0} messages, paced runs {options.Seconds} s, cap {options.CapSeconds} s per scenario; whole run {took.TotalSeconds:0} s. " +
        $"Senders, receivers and servers share this machine's cores; 1-minute load average {loadBefore} at the start, {loadAfter} at the end.\n";

    private const string Legend =
        "deliveries/s: distinct messages received, summed over receivers, from the first send to the last arrival. " +
        "Latency: send to first arrival of each copy. Duplicate / out-of-order frames: FormalChat by each room message's seq " +
        "(a seq seen again / a seq below the last one seen), ngircd by the message number in the text. " +
        "Elections: won during the run (\"election won\" in the nodes' logs), and the highest epoch before and after when it changed (an election that never completes raises it too). " +
        "Suspicions: view losses during the run (\"left the view\" in the nodes' logs; each node that drops a peer counts once). " +
        "Peak RSS: VmHWM of each server process. Status during flood: the slowest answer to a status request asked of each node every 250 ms " +
        "from the first send until the run ends, one outstanding at a time, read on a thread of the probe's own " +
        "(ngircd: PING on a connection outside the channel; >N: no answer within N ms; n×: answers from the node that gave the fewest). Answer after flood: the first answer of each node's probe to a status request (ngircd: PING) " +
        "asked once the last message was sent (at once, after its outstanding one), timed on the probe's own thread as above.\n";
}
