using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>
/// Issue 11, "connections that never say hello are never closed": with --hello-timeout a
/// connection the node has not welcomed is closed with hello-first; welcomed clients and status
/// monitors stay.
/// </summary>
public class HelloTimeoutTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    // Short, but long enough for a node just started on a busy machine to welcome a hello in time.
    private const string HelloTimeoutSeconds = "2";

    [Fact]
    public async Task A_connection_that_never_says_hello_is_closed_after_the_timeout_and_the_node_logs_it()
    {
        await using var cluster = await TestCluster.StartAsync(1, "--hello-timeout", HelloTimeoutSeconds);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        await using var monitor = await TestClient.OpenAsync(cluster.ClientPort(1));
        await monitor.SendAsync(new JObject { ["type"] = "status" });
        await monitor.NextAsync(frame => (string?)frame["type"] == "status");

        // Each idle connection is accepted after the two above, so when it is closed their
        // timeouts have run out too; the second one leaves a whole timeout of margin.
        foreach (var _ in new[] { 1, 2 })
        {
            await using var idle = await TestClient.OpenAsync(cluster.ClientPort(1));
            var error = await idle.NextAsync(frame => (string?)frame["type"] == "error", Deadline);
            Assert.Equal("hello-first", (string?)error["code"]);
            Assert.Contains("no valid hello within 2 s", (string?)error["reason"]);
            await idle.WaitClosedAsync();
        }

        Assert.False(alice.Closed, "a welcomed client stays");
        Assert.False(monitor.Closed, "a connection that asked for status stays");
        await monitor.SendAsync(new JObject { ["type"] = "status" });
        await monitor.NextAsync(frame => (string?)frame["type"] == "status");
        await alice.SendAsync(new JObject { ["type"] = "say", ["text"] = "still here" });
        await alice.NextAsync(frame => (string?)frame["type"] == "message" && (string?)frame["text"] == "still here");
        await Eventually.TrueAsync(() => Task.FromResult(cluster.Output.Contains("was not welcomed within 2 s")), Deadline,
            "the node logs the closed connection", () => cluster.Output);
    }

    [Fact]
    public async Task A_hello_refused_for_a_taken_nick_does_not_count_as_welcomed()
    {
        await using var cluster = await TestCluster.StartAsync(1, "--hello-timeout", HelloTimeoutSeconds);
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        await using var impostor = await TestClient.OpenAsync(cluster.ClientPort(1));
        await impostor.SendAsync(new JObject { ["type"] = "hello", ["nick"] = "alice" });
        Assert.Equal("nick-taken", (string?)(await impostor.NextAsync(frame => (string?)frame["type"] == "error"))["code"]);

        // The node closes a connection whose hello it refused with nick-taken at once: the next
        // thing the impostor sees is the close, not the hello timeout's hello-first.
        await Assert.ThrowsAsync<IOException>(() => impostor.NextAsync(_ => true));
        await impostor.WaitClosedAsync();
        Assert.False(alice.Closed);
    }
}
