using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>Chat between clients on different nodes, and bad input refused without harm.</summary>
public class ChatOverLoopbackTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    private static Func<JObject, bool> Frame(string type, string? text = null) =>
        frame => (string?)frame["type"] == type && (text is null || (string?)frame["text"] == text);

    [Fact]
    public async Task Clients_on_different_nodes_exchange_broadcast_and_private_messages()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        await using var carol = await TestClient.ConnectAsync(cluster.ClientPort(3), "carol");
        await alice.NextAsync(Frame("system", "carol joined on node 3"));

        await alice.SendAsync(new JObject { ["type"] = "say", ["text"] = "hello everyone" });
        var atBob = await bob.NextAsync(Frame("message", "hello everyone"));
        var atCarol = await carol.NextAsync(Frame("message", "hello everyone"));
        Assert.Equal("alice", (string?)atBob["from"]);
        Assert.Equal(1, (int?)atCarol["node"]);

        await bob.SendAsync(new JObject { ["type"] = "msg", ["to"] = "carol", ["text"] = "just for you" });
        var whisper = await carol.NextAsync(Frame("private", "just for you"));
        Assert.Equal("bob", (string?)whisper["from"]);
        await bob.NextAsync(Frame("private", "just for you"));

        await alice.SendAsync(new JObject { ["type"] = "who" });
        var who = await alice.NextAsync(Frame("who"));
        var users = who["users"]!.ToDictionary(user => (string)user["nick"]!, user => (int)user["node"]!);
        Assert.Equal(1, users["alice"]);
        Assert.Equal(2, users["bob"]);
        Assert.Equal(3, users["carol"]);
    }

    [Fact]
    public async Task A_nickname_in_use_on_another_node_is_refused_with_a_clear_error()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await cluster.WaitForLeaderAsync(leader: 2, nodes: [1, 2], Deadline);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");

        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(2), "bob");
        await Eventually.TrueAsync(async () =>
        {
            await bob.SendAsync(new JObject { ["type"] = "who" });
            var who = await bob.NextAsync(Frame("who"));
            return who["users"]!.Any(user => (string?)user["nick"] == "alice");
        }, Deadline, "node 2 knows alice");
        await using var other = await TestClient.OpenAsync(cluster.ClientPort(2));

        await other.SendAsync(new JObject { ["type"] = "hello", ["nick"] = "alice" });

        var reply = await other.NextAsync(frame => (string?)frame["type"] is "error" or "welcome");
        Assert.Equal("nick-taken", (string?)reply["code"]);
        Assert.Contains("alice", (string?)reply["reason"]);
        // Then the node closes the connection, as after any refused hello for a nickname (docs/PROTOCOL.md).
        await other.WaitClosedAsync();
        Assert.False(alice.Closed, "the nickname's own connection stays");
    }

    [Fact]
    public async Task Private_message_to_nobody_gets_an_error()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");

        await alice.SendAsync(new JObject { ["type"] = "msg", ["to"] = "ghost", ["text"] = "boo" });

        var error = await alice.NextAsync(Frame("error"));
        Assert.Equal("no-such-user", (string?)error["code"]);
    }

    public static TheoryData<string, string> BadFrames => new()
    {
        { "garbage bytes", "\u0001\u0002garbage\u00ff\n" },
        { "invalid JSON", "{\"type\": \"say\", \"text\": \n" },
        { "not an object", "[1, 2, 3]\n" },
        { "unknown type", "{\"v\":1,\"type\":\"launch-missiles\"}\n" },
        { "wrong field type", "{\"v\":1,\"type\":\"say\",\"text\":42}\n" },
        { "say id not positive", "{\"v\":1,\"type\":\"say\",\"text\":\"hi\",\"id\":-5}\n" },
        { "other version", "{\"v\":99,\"type\":\"who\"}\n" },
        { "oversized line", new string('x', 70_000) + "\n" },
        { "oversized without newline", new string('y', 70_000) },
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public async Task A_bad_frame_gets_an_error_and_closes_only_that_connection(string what, string frame)
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(1), "bob");
        await using var vandal = await TestClient.OpenAsync(cluster.ClientPort(1));

        await vandal.SendRawAsync(frame);

        var error = await vandal.NextAsync(Frame("error"));
        Assert.False(string.IsNullOrWhiteSpace((string?)error["reason"]), what);
        await vandal.WaitClosedAsync();
        await alice.SendAsync(new JObject { ["type"] = "say", ["text"] = $"still here after {what}" });
        await bob.NextAsync(Frame("message", $"still here after {what}"));
    }

    [Fact]
    public async Task A_request_before_hello_is_refused_but_the_connection_may_still_say_hello()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var early = await TestClient.OpenAsync(cluster.ClientPort(1));

        await early.SendAsync(new JObject { ["type"] = "say", ["text"] = "too soon" });
        var error = await early.NextAsync(Frame("error"));
        await early.SendAsync(new JObject { ["type"] = "hello", ["nick"] = "dave" });

        Assert.Equal("hello-first", (string?)error["code"]);
        await early.NextAsync(Frame("welcome"));
    }
}
