using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Irc;

/// <summary>
/// IRC PASS for a registered nick (docs/IRC.md, docs/SECURITY.md "Accounts"): a nick registered
/// over the native protocol needs its password over IRC too, on every node. PASS before NICK and
/// USER (RFC 2812 3.1.1); a wrong or missing one is 464 ERR_PASSWDMISMATCH, then ERROR and the
/// connection closes.
/// </summary>
public class IrcPasswordTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private const string Secret = "correct horse battery staple";

    private static async Task RegisterNativelyAsync(int port, string nick, string password)
    {
        await using var client = await TestClient.ConnectAsync(port, nick);
        await client.SendAsync(new JObject { ["v"] = 1, ["type"] = "register", ["password"] = password });
        await client.NextAsync(frame => (string?)frame["type"] == "system" && ((string?)frame["text"] ?? "").StartsWith("registered"), Deadline);
    }

    /// <summary>Until the nick's last session has left the node, a hello gets 433 instead: waits for the 464 of a hello without PASS.</summary>
    private static Task WaitUntilPasswordNeededAsync(int ircPort, string nick) =>
        Eventually.TrueAsync(async () => (await RefusedAsync(ircPort, pass: null, nick)) is not null, Deadline, $"{nick} needs a password on IRC port {ircPort}");

    /// <summary>Registers over IRC with an optional PASS: the 464 line when the password is
    /// refused (having checked the ERROR line and the close that follow), null on 433.</summary>
    private static async Task<string?> RefusedAsync(int ircPort, string? pass, string nick)
    {
        await using var client = await TestIrcClient.OpenAsync(ircPort);
        if (pass is not null) await client.SendAsync($"PASS :{pass}");
        await client.SendAsync($"NICK {nick}", $"USER {nick} 0 * :{nick}");
        var answer = await client.NextAsync(line => TestIrcClient.Numeric(line) is "001" or "433" or "464");
        if (TestIrcClient.Numeric(answer) == "433") return null;
        Assert.Equal("464", TestIrcClient.Numeric(answer));
        Assert.StartsWith("ERROR :Closing Link: * (Password incorrect", await client.NextAsync(line => line.StartsWith("ERROR ")));
        await client.WaitClosedAsync(Deadline);
        return answer;
    }

    private static async Task<TestIrcClient> LogInAsync(int ircPort, string nick, string pass)
    {
        var client = await TestIrcClient.OpenAsync(ircPort);
        await client.SendAsync($"PASS :{pass}", $"NICK {nick}", $"USER {nick} 0 * :{nick}");
        await client.NextAsync(line => TestIrcClient.Numeric(line) == "001");
        await client.NextAsync(line => TestIrcClient.Numeric(line) == "366" && line.Contains("#lobby"));
        return client;
    }

    [Fact]
    public async Task A_nick_registered_natively_needs_its_pass_over_irc_on_every_node_and_wrong_or_missing_is_464_and_closed()
    {
        var (cluster, irc) = await IrcTestCluster.StartAsync(2);
        await using var _ = cluster;
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await RegisterNativelyAsync(cluster.ClientPort(1), "alice", Secret);

        foreach (var node in new[] { 2, 1 })
        {
            await WaitUntilPasswordNeededAsync(irc[node], "alice");
            var wrong = await RefusedAsync(irc[node], "guess", "alice");
            Assert.Equal($":node{node}.formalchat 464 * :Password incorrect", wrong);

            await using var alice = await LogInAsync(irc[node], "alice", Secret);
            Assert.False(alice.Closed);
            await alice.SendAsync("QUIT :done");
            await alice.WaitClosedAsync(Deadline);
        }

        // A nick without an account ignores PASS, as before accounts.
        await using var bob = await LogInAsync(irc[1], "bob", "anything");
        var security = (await cluster.StatusAsync(1))["clientSecurity"]!;
        Assert.True((long)security["failedLogins"]! >= 1, "the wrong PASS on node 1 counts as a failed login");
    }
}
