using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Irc;

/// <summary>The IRC port over loopback, driven by a scripted raw-socket IRC client, with native
/// clients on another node: one cluster, two doors.</summary>
public class IrcGatewayTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    private static Func<JObject, bool> Frame(string type, string? text = null) =>
        frame => (string?)frame["type"] == type && (text is null || (string?)frame["text"] == text);

    private static Func<string, bool> Numeric(string numeric, string? containing = null) =>
        line => TestIrcClient.Numeric(line) == numeric && (containing is null || line.Contains(containing));

    [Fact]
    public async Task An_irc_user_and_a_native_client_on_different_nodes_chat_in_a_room_in_order_both_ways()
    {
        var (cluster, irc) = await IrcTestCluster.StartAsync(2);
        await using var _ = cluster;
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        await bob.SendAsync(new JObject { ["type"] = "join", ["room"] = "#dev" });
        await bob.NextAsync(frame => (string?)frame["type"] == "joined" && (string?)frame["room"] == "#dev");

        await using var alice = await TestIrcClient.RegisterAsync(irc[1], "alice");
        await alice.SendAsync("JOIN #dev");
        await alice.NextAsync(line => line == ":alice!alice@node1.formalchat JOIN #dev");
        await alice.NextAsync(Numeric("331", "#dev"));
        var names = await alice.NextAsync(Numeric("353", "#dev"));
        await alice.NextAsync(Numeric("366", "#dev"));
        Assert.Contains("alice", names.Split(':')[^1].Split(' '));
        Assert.Contains("bob", names.Split(':')[^1].Split(' '));

        // IRC -> native, in order.
        await alice.SendAsync("PRIVMSG #dev :one", "PRIVMSG #dev :two", "PRIVMSG #dev :three");
        var atBob = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var message = await bob.NextAsync(frame => Frame("message")(frame) && (string?)frame["room"] == "#dev");
            Assert.Equal("alice", (string?)message["from"]);
            atBob.Add((string)message["text"]!);
        }
        Assert.Equal(["one", "two", "three"], atBob);

        // Native -> IRC, in order.
        foreach (var text in new[] { "four", "five", "six" })
        {
            await bob.SendAsync(new JObject { ["type"] = "say", ["room"] = "#dev", ["text"] = text });
        }
        var atAlice = new List<string>();
        for (var i = 0; i < 3; i++) atAlice.Add(await alice.NextAsync(line => line.Contains(" PRIVMSG #dev ")));
        Assert.Equal(
            [":bob!bob@node2.formalchat PRIVMSG #dev :four", ":bob!bob@node2.formalchat PRIVMSG #dev :five", ":bob!bob@node2.formalchat PRIVMSG #dev :six"],
            atAlice);
        // IRC does not echo a client's own message back to it: the core's copy is only its acknowledgement.
        Assert.DoesNotContain(alice.Received, line => line.Contains("PRIVMSG #dev :one"));

        // Private lines both ways.
        await alice.SendAsync("PRIVMSG bob :psst bob");
        var whisper = await bob.NextAsync(Frame("private", "psst bob"));
        Assert.Equal("alice", (string?)whisper["from"]);
        await bob.SendAsync(new JObject { ["type"] = "msg", ["to"] = "alice", ["text"] = "psst alice" });
        await alice.NextAsync(line => line == ":bob!bob@node2.formalchat PRIVMSG alice :psst alice");
        Assert.DoesNotContain(alice.Received, line => line.Contains("PRIVMSG bob :"));
        // Each of bob's room messages reached alice once.
        Assert.Single(alice.Received, line => line.EndsWith("PRIVMSG #dev :four"));
    }

    [Fact]
    public async Task Irc_answers_ping_nick_collision_list_names_who_and_ison()
    {
        var (cluster, irc) = await IrcTestCluster.StartAsync(2);
        await using var _ = cluster;
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        await bob.SendAsync(new JObject { ["type"] = "join", ["room"] = "#dev" });
        await bob.NextAsync(frame => (string?)frame["type"] == "joined");
        await using var alice = await TestIrcClient.RegisterAsync(irc[1], "alice");

        await alice.SendAsync("PING :are-you-there");
        Assert.Equal(":node1.formalchat PONG node1.formalchat :are-you-there", await alice.NextAsync(line => TestIrcClient.Numeric(line) == "PONG"));

        // Node 1 learns of bob on node 2 through the cluster; until then the nickname looks free.
        await Eventually.TrueAsync(async () =>
        {
            await alice.SendAsync("ISON bob nobody");
            return (await alice.NextAsync(Numeric("303"))).EndsWith(":bob");
        }, Deadline, "node 1 knows bob");
        await using var impostor = await TestIrcClient.OpenAsync(irc[1]);
        await impostor.SendAsync("NICK bob", "USER bob 0 * :not bob");
        Assert.StartsWith(":node1.formalchat 433 * bob :", await impostor.NextAsync(Numeric("433")));
        await impostor.SendAsync("NICK bob2");
        await impostor.NextAsync(Numeric("001"));

        await alice.SendAsync("JOIN #dev");
        await alice.NextAsync(Numeric("366", "#dev"));
        await alice.SendAsync("LIST");
        await alice.NextAsync(Numeric("321"));
        var dev = await alice.NextAsync(Numeric("322", "#dev"));
        Assert.StartsWith(":node1.formalchat 322 alice #dev 2 :", dev);
        await alice.NextAsync(Numeric("323"));

        await alice.SendAsync("NAMES #dev");
        var names = await alice.NextAsync(Numeric("353", "#dev"));
        Assert.Equal(["alice", "bob"], names.Split(':')[^1].Split(' ').Order());
        await alice.NextAsync(Numeric("366", "#dev"));

        await alice.SendAsync("WHO #dev");
        var who = new List<string>();
        for (var i = 0; i < 2; i++) who.Add(await alice.NextAsync(Numeric("352")));
        Assert.Contains(who, line => line.Contains(" #dev bob node2.formalchat "));
        Assert.Contains(who, line => line.Contains(" #dev alice node1.formalchat "));
        await alice.NextAsync(Numeric("315", "#dev"));

        await alice.SendAsync("FROBNICATE");
        await alice.NextAsync(Numeric("421", "FROBNICATE"));

        await alice.SendAsync("QUIT :see you");
        await alice.NextAsync(line => line == "ERROR :Closing Link: alice (Quit: see you)");
        await alice.WaitClosedAsync(Deadline);
        await bob.NextAsync(Frame("system", "alice left"));
    }

    [Fact]
    public async Task A_line_over_512_bytes_is_refused_and_the_connection_closed_and_LF_alone_ends_a_line()
    {
        var (cluster, irc) = await IrcTestCluster.StartAsync(1);
        await using var _ = cluster;
        await using var alice = await TestIrcClient.OpenAsync(irc[1]);

        await alice.SendRawAsync("PING :lf-only\n");
        await alice.NextAsync(line => line.EndsWith(":lf-only"));
        await alice.SendRawAsync("PRIVMSG #lobby :" + new string('x', 600) + "\r\n");

        await alice.NextAsync(Numeric("417"));
        await alice.NextAsync(line => line.StartsWith("ERROR "));
        await alice.WaitClosedAsync(Deadline);
    }

    [Fact]
    public async Task A_connection_that_does_not_register_is_closed_after_the_registration_timeout()
    {
        var (cluster, irc) = await IrcTestCluster.StartAsync(1);
        await using var _ = cluster;
        await using var idle = await TestIrcClient.OpenAsync(irc[1]);

        await idle.SendAsync("NICK idle");

        var error = await idle.NextAsync(line => line.StartsWith("ERROR "), within: TimeSpan.FromSeconds(30));
        Assert.Contains("registration timed out", error);
        await idle.WaitClosedAsync(Deadline);
    }
}
