using FormalChat.Cluster.Tests.CrashTest;
using Xunit.Abstractions;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// The crash test in short: real node and client processes, kill -9 and restart of random nodes,
/// one at a time, while every client sends; nothing acknowledged may be lost or shown twice.
/// The long run is the benchmark: `dotnet run -c Release --project tests/Benchmarks -- crash`.
/// FORMALCHAT_CRASH_SEED=<n> replays a schedule; FORMALCHAT_TEST_LOGS=<dir> keeps the logs.
/// </summary>
public class CrashTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Kill_9_and_restart_of_random_nodes_while_clients_send_loses_and_duplicates_nothing_acknowledged()
    {
        var options = new CrashTestOptions
        {
            Nodes = 3,
            Duration = TimeSpan.FromSeconds(15),
            Seed = CrashTestOptions.SeedFromEnvironment(),
            Clients = 6,
            DrainDeadline = TimeSpan.FromSeconds(15),
            Progress = output.WriteLine,
        };

        var report = await CrashTestRun.RunAsync(options);
        output.WriteLine(report.Print());

        Assert.True(report.ChaosFailure is null, $"seed {options.Seed}: the chaos stopped: {report.ChaosFailure}");
        Assert.True(report.Lost == 0, $"seed {options.Seed}: {report.Lost} acknowledged messages lost\n{report.Print()}");
        Assert.True(report.Duplicated == 0, $"seed {options.Seed}: {report.Duplicated} duplicates\n{report.Print()}");
        Assert.True(report.OutOfOrder == 0, $"seed {options.Seed}: {report.OutOfOrder} order violations\n{report.Print()}");
        Assert.True(report.Restarts >= 1, $"seed {options.Seed}: no node was killed and restarted\n{report.Print()}");
        Assert.True(report.Failovers >= 1, $"seed {options.Seed}: no client failed over\n{report.Print()}");
        Assert.True(report.Acknowledged > 0, $"seed {options.Seed}: nothing acknowledged\n{report.Print()}");
        // Every line goes through in the end: a waiting post is sent to the room's owner again
        // every heartbeat until it is confirmed.
        Assert.True(report.Unacknowledged == 0, $"seed {options.Seed}: lines never acknowledged\n{report.Print()}");
        Assert.True(report.ClientsGone.Count == 0, $"seed {options.Seed}: clients gave up: {string.Join(", ", report.ClientsGone)}\n{report.Print()}");
    }
}
