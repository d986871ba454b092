using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>Issue 11: --max-connections-per-ip refuses the connection one address has too many.</summary>
public class ConnectionLimitTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task A_connection_over_the_per_address_limit_is_refused_with_server_full_and_a_freed_slot_is_reused()
    {
        await using var cluster = await TestCluster.StartAsync(1, "--max-connections-per-ip", "3");
        var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        await using var bob = await TestClient.ConnectAsync(cluster.ClientPort(1), "bob");
        await using var monitor = await TestClient.OpenAsync(cluster.ClientPort(1));
        await monitor.SendAsync(new JObject { ["type"] = "status" });
        await monitor.NextAsync(frame => (string?)frame["type"] == "status");

        await using (var extra = await TestClient.OpenAsync(cluster.ClientPort(1)))
        {
            var error = await extra.NextAsync(frame => (string?)frame["type"] == "error", Deadline);
            Assert.Equal("server-full", (string?)error["code"]);
            Assert.Contains("too many connections from 127.0.0.1", (string?)error["reason"]);
            await extra.WaitClosedAsync();
        }
        await cluster.WaitForOutputAsync("refused a client connection", Deadline);

        // The refused connection never counted as a client (the node reports alice and bob only,
        // the monitor being no client of the chat), and a slot freed is a slot again.
        await monitor.SendAsync(new JObject { ["type"] = "status" });
        var status = await monitor.NextAsync(frame => (string?)frame["type"] == "status");
        await alice.DisposeAsync();
        await Eventually.TrueAsync(async () =>
        {
            await using var carol = await TestClient.ConnectAsync(cluster.ClientPort(1), "carol");
            return true;
        }, Deadline, "a new client gets alice's slot", () => cluster.Output);
        Assert.False(bob.Closed);
        Assert.Equal(1, (int?)status["self"]);
    }
}
