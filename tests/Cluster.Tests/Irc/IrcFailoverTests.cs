using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Irc;

/// <summary>Node killed with -9 under an IRC user: the user reconnects to another node's IRC
/// port (as irssi does with its server list), rejoins, sees the room's recent history replayed
/// and chats on. What IRC does not get (gap-free resume, nick takeover) is in docs/IRC.md.</summary>
public class IrcFailoverTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Node_of_an_irc_user_killed_the_user_reconnects_to_another_node_rejoins_and_chats_on()
    {
        var (cluster, irc) = await IrcTestCluster.StartAsync(3);
        await using var _ = cluster;
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        await bob.SendAsync(new JObject { ["type"] = "join", ["room"] = "#dev" });
        await bob.NextAsync(frame => (string?)frame["type"] == "joined");
        var alice = await TestIrcClient.RegisterAsync(irc[1], "alice");
        await alice.SendAsync("JOIN #dev");
        await alice.NextAsync(line => line.StartsWith(":node1.formalchat 366 alice #dev "));
        await alice.SendAsync("PRIVMSG #dev :before the crash");
        await bob.NextAsync(frame => (string?)frame["type"] == "message" && (string?)frame["text"] == "before the crash");

        cluster.Kill(1);
        await alice.WaitClosedAsync(Deadline);
        await alice.DisposeAsync();

        // The nickname is free again once the survivors have suspected node 1: until then, 433.
        TestIrcClient? back = null;
        await Eventually.TrueAsync(async () =>
        {
            var attempt = await TestIrcClient.OpenAsync(irc[2]);
            await attempt.SendAsync("NICK alice", "USER alice 0 * :alice");
            var answer = await attempt.NextAsync(line => TestIrcClient.Numeric(line) is "001" or "433");
            if (TestIrcClient.Numeric(answer) == "001") back = attempt;
            else await attempt.DisposeAsync();
            return back is not null;
        }, Deadline, "alice welcomed again on node 2", () => cluster.Output);
        await using var reconnected = back!;
        await reconnected.SendAsync("JOIN #dev");
        await reconnected.NextAsync(line => line == ":alice!alice@node2.formalchat JOIN #dev");
        // The room's recent history is replayed on JOIN: here, alice's own line from before.
        await reconnected.NextAsync(line => line == ":alice!alice@node1.formalchat PRIVMSG #dev :before the crash");

        await bob.SendAsync(new JObject { ["type"] = "say", ["room"] = "#dev", ["text"] = "after the crash" });
        await reconnected.NextAsync(line => line == ":bob!bob@node2.formalchat PRIVMSG #dev :after the crash");
        await reconnected.SendAsync("PRIVMSG #dev :back again");
        await bob.NextAsync(frame => (string?)frame["type"] == "message" && (string?)frame["text"] == "back again");
    }
}
