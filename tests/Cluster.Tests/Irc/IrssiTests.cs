using System.Diagnostics;
using Newtonsoft.Json.Linq;
using Xunit.Abstractions;

namespace FormalChat.Cluster.Tests.Irc;

/// <summary>
/// A real IRC client: irssi from Debian, driven in a tmux session of its own (send-keys to type,
/// capture-pane to read the screen). It installs irssi and tmux with apt-get when they are
/// missing, and returns early with a printed reason when it cannot (no root, no network).
/// irssi runs with --home in a temporary directory, so no user's configuration is touched.
/// </summary>
public class IrssiTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [SkippableFact]
    public async Task Irssi_on_node_1_a_native_client_and_a_raw_irc_client_on_node_2_chat_in_a_room()
    {
        var reason = await WhyNotAvailableAsync();
        Skip.If(reason is not null, $"irssi test not run: {reason}");
        var (cluster, irc) = await IrcTestCluster.StartAsync(2);
        await using var _ = cluster;
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        await bob.SendAsync(new JObject { ["type"] = "join", ["room"] = "#dev" });
        await bob.NextAsync(frame => (string?)frame["type"] == "joined");
        await using var carol = await TestIrcClient.RegisterAsync(irc[2], "carol");
        await carol.SendAsync("JOIN #dev");
        await carol.NextAsync(line => line.StartsWith(":node2.formalchat 366 carol #dev "));

        var home = Directory.CreateTempSubdirectory("formalchat-irssi-").FullName;
        await using var irssi = await Tmux.StartAsync($"irssi --home={Tmux.Quote(home)} -n ircalice -c 127.0.0.1 -p {irc[1]}", deleteOnDispose: home);
        await irssi.WaitForScreenAsync(screen => screen.Contains("FormalChat IRC gateway"), Deadline, "irssi welcomed");

        await irssi.TypeAsync("/join #dev");
        // bob sees ircalice arrive in #dev through node 1 and the cluster.
        await Eventually.TrueAsync(async () =>
        {
            await bob.SendAsync(new JObject { ["type"] = "who", ["room"] = "#dev" });
            var who = await bob.NextAsync(frame => (string?)frame["type"] == "who");
            return who["users"]!.Any(user => (string?)user["nick"] == "ircalice");
        }, Deadline, "ircalice in #dev as node 2 sees it", () => irssi.Screen);

        await irssi.TypeAsync("hello from irssi");
        var message = await bob.NextAsync(frame => (string?)frame["type"] == "message" && (string?)frame["text"] == "hello from irssi");
        Assert.Equal("ircalice", (string?)message["from"]);
        Assert.Equal("#dev", (string?)message["room"]);
        await carol.NextAsync(line => line == ":ircalice!ircalice@node1.formalchat PRIVMSG #dev :hello from irssi");

        // With a client message id, as Client.CSharp sends it: a post re-sent after an owner change
        // (a loaded machine) is then sequenced once, which is what the single line below checks.
        await bob.SendAsync(new JObject { ["type"] = "say", ["room"] = "#dev", ["text"] = "hello from the native client", ["id"] = 1 });
        await irssi.WaitForScreenAsync(screen => screen.Contains("hello from the native client"), Deadline, "irssi shows bob's message");
        await carol.SendAsync("PRIVMSG #dev :hello from a raw IRC client");
        await irssi.WaitForScreenAsync(screen => screen.Contains("hello from a raw IRC client"), Deadline, "irssi shows carol's message");
        await bob.NextAsync(frame => (string?)frame["type"] == "message" && (string?)frame["text"] == "hello from a raw IRC client");
        output.WriteLine(irssi.Screen);
        Assert.Single(irssi.Screen.Split('\n'), line => line.Contains("hello from the native client"));
    }

    private static async Task<string?> WhyNotAvailableAsync()
    {
        if (await Tmux.HasAsync("irssi") && await Tmux.HasAsync("tmux")) return null;
        var (code, text) = await Tmux.RunAsync("apt-get", ["install", "-y", "irssi", "tmux"], TimeSpan.FromMinutes(5));
        if (code == 0 && await Tmux.HasAsync("irssi") && await Tmux.HasAsync("tmux")) return null;
        return $"irssi or tmux missing and `apt-get install -y irssi tmux` failed (exit {code}): {text.Split('\n').LastOrDefault(line => line.Length > 0)}";
    }
}

/// <summary>One detached tmux session on a server socket of its own, killed on disposal.</summary>
public sealed class Tmux : IAsyncDisposable
{
    private readonly string _socket = $"formalchat-irc-{Guid.NewGuid():N}";
    private string? _ownedDirectory;
    private string _screen = "";

    public string Screen => _screen;

    /// <param name="deleteOnDispose">A directory the program used (irssi's --home), removed with the session.</param>
    public static async Task<Tmux> StartAsync(string command, string? deleteOnDispose = null)
    {
        var tmux = new Tmux { _ownedDirectory = deleteOnDispose };
        var (code, text) = await RunAsync("tmux", ["-L", tmux._socket, "new-session", "-d", "-s", "test", "-x", "160", "-y", "48", command], TimeSpan.FromSeconds(20));
        if (code != 0) throw new InvalidOperationException($"tmux did not start: {text}");
        return tmux;
    }

    /// <summary>Types a line and presses Enter; -l sends the text literally.</summary>
    public async Task TypeAsync(string text)
    {
        await RunAsync("tmux", ["-L", _socket, "send-keys", "-t", "test", "-l", text], TimeSpan.FromSeconds(10));
        await RunAsync("tmux", ["-L", _socket, "send-keys", "-t", "test", "Enter"], TimeSpan.FromSeconds(10));
    }

    public async Task WaitForScreenAsync(Func<string, bool> shows, TimeSpan deadline, string what)
    {
        await Eventually.TrueAsync(async () =>
        {
            var (_, text) = await RunAsync("tmux", ["-L", _socket, "capture-pane", "-p", "-t", "test"], TimeSpan.FromSeconds(10));
            _screen = text;
            return shows(text);
        }, deadline, what, () => $"screen:\n{_screen}");
    }

    public static string Quote(string path) => "'" + path.Replace("'", "'\\''") + "'";

    public static async Task<bool> HasAsync(string program) => (await RunAsync("sh", ["-c", $"command -v {program}"], TimeSpan.FromSeconds(10))).Code == 0;

    public static async Task<(int Code, string Output)> RunAsync(string program, string[] arguments, TimeSpan deadline)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["TERM"] = "xterm-256color";
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        try
        {
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(deadline);
            try { await process.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                return (-1, $"{program} did not finish within {deadline.TotalSeconds:0} s");
            }
            return (process.ExitCode, await stdout + await stderr);
        }
        catch (System.ComponentModel.Win32Exception error) { return (-1, $"{program}: {error.Message}"); }
    }

    public async ValueTask DisposeAsync()
    {
        await RunAsync("tmux", ["-L", _socket, "kill-server"], TimeSpan.FromSeconds(10));
        if (_ownedDirectory is not null) try { Directory.Delete(_ownedDirectory, recursive: true); } catch (IOException) { }
    }
}
