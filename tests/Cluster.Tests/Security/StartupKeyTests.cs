using System.Diagnostics;
using FormalChat.Node.Security;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>A node starts only with a usable cluster key, or when told plainly to run without one.</summary>
public class StartupKeyTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_node_without_a_key_and_without_insecure_cluster_exits_non_zero_and_says_why()
    {
        var (exitCode, output) = await RunNodeAsync();

        Assert.NotEqual(0, exitCode);
        Assert.Contains("no cluster key", output);
        Assert.Contains("--insecure-cluster", output);
    }

    [Fact]
    public async Task A_node_refuses_a_key_file_that_is_too_short()
    {
        if (OperatingSystem.IsWindows()) return; // file modes are Unix's
        var directory = Directory.CreateTempSubdirectory("formalchat-key-").FullName;
        try
        {
            var keyFile = Path.Combine(directory, "short.key");
            File.WriteAllText(keyFile, "00112233445566778899aabbccddeeff\n");
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

            var (exitCode, output) = await RunNodeAsync("--cluster-key-file", keyFile);

            Assert.NotEqual(0, exitCode);
            Assert.Contains("64 hex digits", output);
        }
        finally { Directory.Delete(directory, recursive: true); }
    }

    [Fact]
    public async Task A_node_refuses_a_key_file_that_others_can_read()
    {
        if (OperatingSystem.IsWindows()) return; // file modes are Unix's
        var directory = Directory.CreateTempSubdirectory("formalchat-key-").FullName;
        try
        {
            var keyFile = Path.Combine(directory, "cluster.key");
            ClusterKey.WriteNew(keyFile);
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

            var (exitCode, output) = await RunNodeAsync("--cluster-key-file", keyFile);

            Assert.NotEqual(0, exitCode);
            Assert.Contains("chmod 600", output);
        }
        finally { Directory.Delete(directory, recursive: true); }
    }

    [Fact]
    public async Task A_node_with_insecure_cluster_starts_and_says_so_in_its_log_and_every_status()
    {
        await using var cluster = await TestCluster.StartAsync(1, "--insecure-cluster");

        var status = await cluster.StatusAsync(1);

        Assert.False((bool)status["clusterSecurity"]!["authenticated"]!);
        Assert.Contains("INSECURE", (string?)status["clusterSecurity"]!["warning"]);
        await cluster.WaitForOutputAsync("INSECURE", Deadline);
    }

    [Fact]
    public async Task A_node_with_a_key_says_in_its_status_that_the_cluster_is_authenticated()
    {
        await using var cluster = await TestCluster.StartAsync(1);

        var status = await cluster.StatusAsync(1);

        Assert.True((bool)status["clusterSecurity"]!["authenticated"]!);
    }

    /// <summary>Runs a node that is expected to refuse to start; its exit code and all it printed.</summary>
    private static async Task<(int ExitCode, string Output)> RunNodeAsync(params string[] extraArguments)
    {
        var dataDir = Directory.CreateTempSubdirectory("formalchat-test-").FullName;
        try
        {
            var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Node.CSharp.dll"));
            foreach (var argument in new[] { "--id", "1", "--port", Ports.FreeTcpPair().ToString(), "--no-multicast", "--data-dir", dataDir }.Concat(extraArguments))
            {
                start.ArgumentList.Add(argument);
            }
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var deadline = new CancellationTokenSource(Deadline);
            try { await process.WaitForExitAsync(deadline.Token); }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"the node did not exit within {Deadline.TotalSeconds} s: {await output}{await errors}");
            }
            return (process.ExitCode, await output + await errors);
        }
        finally { Directory.Delete(dataDir, recursive: true); }
    }
}
