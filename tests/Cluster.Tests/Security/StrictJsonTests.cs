using System.Text;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>
/// Issue 11, "lenient JSON": over a real socket, a frame a lenient parser would take is refused
/// as bad-frame with the reason, the connection is closed, and the node stays up for everyone else.
/// </summary>
public class StrictJsonTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    private static TheoryData<string, string> LenientFrames => new()
    {
        { "comment", "{\"v\":1,\"type\":\"say\",\"text\":\"hi\"} // a comment\n" },
        { "single quotes", "{'v':1,'type':'say','text':'hi'}\n" },
        { "unquoted keys", "{v:1,type:\"say\",text:\"hi\"}\n" },
        { "trailing comma", "{\"v\":1,\"type\":\"say\",\"text\":\"hi\",}\n" },
        { "NUL", "{\"v\":1,\"type\":\"say\",\"text\":\"hi\"}\u0000\n" },
        { "duplicate key", "{\"v\":1,\"type\":\"say\",\"text\":\"hi\",\"text\":\"FORGED\"}\n" },
    };

    [Fact]
    public async Task Lenient_frames_from_a_welcomed_client_get_bad_frame_and_a_close_and_the_node_stays_up()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(1), "bob");
        var index = 0;
        foreach (var (name, frame) in LenientFrames.Select(row => ((string)row[0], (string)row[1])))
        {
            // A nick of its own each time: the node may not have heard of the last close yet.
            await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), $"alice{index++}");
            await alice.SendRawAsync(frame);
            var error = await alice.NextAsync(reply => (string?)reply["type"] == "error", Deadline);
            Assert.True((string?)error["code"] == "bad-frame", $"{name}: {error}");
            Assert.False(string.IsNullOrWhiteSpace((string?)error["reason"]), name);
            await alice.WaitClosedAsync();
        }
        await bob.SendAsync(new JObject { ["type"] = "say", ["text"] = "nothing forged got through" });
        var shown = await bob.NextAsync(reply => (string?)reply["type"] == "message", Deadline);
        Assert.Equal("nothing forged got through", (string?)shown["text"]);
        Assert.False(cluster.HasExited(1));
    }

    [Fact]
    public async Task Invalid_utf8_gets_bad_frame_instead_of_reaching_members_as_replacement_characters()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(1), "bob");
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        // "bad " and then two bytes that are no UTF-8 at all.
        byte[] frame = [.. Encoding.UTF8.GetBytes("{\"v\":1,\"type\":\"say\",\"text\":\"bad "), 0xFF, 0xFE, .. Encoding.UTF8.GetBytes("\"}\n")];
        await alice.SendBytesAsync(frame);

        var error = await alice.NextAsync(reply => (string?)reply["type"] == "error", Deadline);
        Assert.Equal("bad-frame", (string?)error["code"]);
        Assert.Contains("UTF-8", (string?)error["reason"]);
        await alice.WaitClosedAsync();
        await bob.SendAsync(new JObject { ["type"] = "say", ["text"] = "after" });
        var next = await bob.NextAsync(reply => (string?)reply["type"] == "message", Deadline);
        Assert.Equal("after", (string?)next["text"]);
    }

    [Fact]
    public async Task A_peer_link_sending_a_frame_with_a_comment_is_closed_and_logged_and_the_node_stays_up()
    {
        // Without a cluster key, so the frame reaches the decoder: with one, a link that skips the
        // handshake is closed before any frame is read (PeerLinkAuthenticationTests).
        await using var cluster = await TestCluster.StartAsync(1, "--insecure-cluster");
        // The cluster waits for the client port; the peer port may open a moment later.
        await Eventually.TrueAsync(() => Ports.Accepts(cluster.PeerPort(1)), Deadline, "the peer port listening", () => cluster.Output);
        await using var link = await TestClient.OpenAsync(cluster.PeerPort(1));
        await link.SendRawAsync("{\"v\":1,\"type\":\"leave\",\"node\":7} /* forged */\n");
        await Eventually.TrueAsync(() => Task.FromResult(cluster.Output.Contains("sent a bad frame, closing it: not valid JSON")), Deadline,
            "the node logs the refused peer frame", () => cluster.Output);
        await link.WaitClosedAsync();
        var status = await cluster.StatusAsync(1);
        Assert.Equal(1, (int?)status["self"]);
    }
}
