using System.Diagnostics;
using FormalChat.Node.Security;
using FormalChat.CommandLine;
using FormalChat.Protocol;

namespace FormalChat.Node;

/// <summary>
/// `cluster --nodes N`: starts N node processes on this machine (so any one can be killed to
/// watch a failover), prints how to connect, and stops them all on Ctrl+C.
/// </summary>
public static class LocalCluster
{
    public static async Task<int> RunAsync(ClusterOptions cluster, CancellationToken stop)
    {
        // A fresh cluster key each run, so the quick start stays one command and is authenticated.
        ClusterKey.WriteNew(ClusterCommandLine.keyFile(cluster.DataDir));
        var processes = new List<Process>();
        for (var id = 1; id <= cluster.Nodes; id++)
        {
            processes.Add(StartNode(ClusterCommandLine.nodeOptions(cluster, id)));
        }
        PrintHowToConnect(cluster, processes);

        var anyExited = Task.WhenAll(processes.Select(process => process.WaitForExitAsync()));
        await Task.WhenAny(anyExited, Task.Delay(Timeout.Infinite, stop)).ConfigureAwait(false);

        Console.WriteLine("stopping the cluster...");
        foreach (var process in processes.Where(process => !process.HasExited))
        {
            // SIGTERM: each node announces its leave before exiting.
            try { Process.Start("kill", ["-TERM", process.Id.ToString()])?.WaitForExit(); } catch (Exception) { }
        }
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        foreach (var process in processes)
        {
            try { await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { process.Kill(entireProcessTree: true); }
        }
        return 0;
    }

    private static Process StartNode(NodeOptions node)
    {
        var timing = node.Timing;
        var arguments = new List<string>
        {
            "--id", node.Id.ToString(), "--port", node.ClientPort.ToString(), "--peer-port", node.PeerPort.ToString(),
            "--heartbeat-ms", timing.HeartbeatIntervalMs.ToString(), "--suspect-after", timing.SuspectAfter.ToString(),
            "--interface", timing.MulticastInterface,
            "--data-dir", node.DataDir, "--fsync", node.Fsync.Name,
        };
        if (timing.MulticastGroup is { } group) arguments.AddRange(["--multicast", group.Value.ToString()]);
        if (node.MetricsPort is { } metrics) arguments.AddRange(["--metrics-port", metrics.Value.ToString()]);
        if (node.ClusterKeyFile is { } keyFile) arguments.AddRange(["--cluster-key-file", keyFile.Value]);
        if (node.IrcPort is { } irc) arguments.AddRange(["--irc-port", irc.Value.ToString()]);

        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this program's path");
        var start = new ProcessStartInfo(self) { UseShellExecute = false };
        // Started as `dotnet Node.CSharp.dll`: the children need the dll too.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(LocalCluster).Assembly.Location);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        return Process.Start(start) ?? throw new InvalidOperationException($"could not start node {node.Id}");
    }

    private static void PrintHowToConnect(ClusterOptions cluster, List<Process> processes)
    {
        Console.WriteLine($"FormalChat: {cluster.Nodes} nodes on 127.0.0.1, heartbeat {cluster.Timing.HeartbeatIntervalMs} ms, suspect after {cluster.Timing.SuspectAfter} missed.");
        for (var id = 1; id <= cluster.Nodes; id++)
        {
            var node = ClusterCommandLine.nodeOptions(cluster, id);
            var irc = node.IrcPort is { } ircPort ? $", IRC 127.0.0.1:{ircPort.Value}" : "";
            Console.WriteLine($"  node {id}: clients 127.0.0.1:{node.ClientPort}{irc}, dashboard http://127.0.0.1:{node.MetricsPort?.Value}/ (metrics at /metrics), room logs in {node.DataDir}  (pid {processes[id - 1].Id})");
        }
        Console.WriteLine($"  cluster key (peer links and heartbeats are authenticated with it): {ClusterCommandLine.keyFile(cluster.DataDir)}");
        Console.WriteLine("Connect a client from another terminal:");
        Console.WriteLine($"  dotnet run --project Client.CSharp -- --nick alice --server 127.0.0.1:{cluster.BasePort}");
        Console.WriteLine($"or an IRC client, e.g. irssi:  /connect 127.0.0.1 {cluster.BasePort + ClusterCommandLine.ircPortOffset}");
        Console.WriteLine($"Kill the leader (node {cluster.Nodes}) to watch a re-election:  kill -9 {processes[^1].Id}");
        Console.WriteLine("Ctrl+C stops every node.");
    }
}
