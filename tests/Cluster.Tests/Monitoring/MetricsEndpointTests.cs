using FormalChat.Cluster.Tests.Monitoring;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>--metrics-port: /metrics parses as Prometheus text and moves while the cluster runs;
/// /status.json is the node's own view.</summary>
public sealed class MetricsEndpointTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private static async Task<List<PrometheusText.Sample>> ScrapeAsync(TestCluster cluster, int id) =>
        PrometheusText.Parse(await Http.GetStringAsync($"http://127.0.0.1:{cluster.DashboardPort(id)}/metrics"));

    [Fact]
    public async Task Metrics_parse_and_count_elections_messages_and_acknowledgements()
    {
        await using var cluster = await TestCluster.StartAsync(3, dashboards: true);
        await cluster.WaitForLeaderAsync(3, [1, 2, 3], TimeSpan.FromSeconds(20));

        var before = await ScrapeAsync(cluster, 1);
        Assert.Equal(3, before.Single("formalchat_view_size"));
        Assert.Equal(3, before.Single("formalchat_leader_id"));
        Assert.True(before.Single("process_working_set_bytes") > 0, "process metrics come with the default registry");
        Assert.Contains(before, sample => sample.Name.StartsWith("dotnet_collection_count_total"));

        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        const int messages = 20;
        for (var k = 1; k <= messages; k++)
        {
            await alice.SendAsync(new JObject { ["type"] = "say", ["text"] = $"message {k}", ["id"] = k });
        }
        await alice.NextAsync(frame => (string?)frame["text"] == $"message {messages}", TimeSpan.FromSeconds(20));

        List<PrometheusText.Sample> after = [];
        await Eventually.TrueAsync(async () =>
        {
            after = await ScrapeAsync(cluster, 1);
            return after.Single("formalchat_room_messages_acknowledged_total") >= messages;
        }, TimeSpan.FromSeconds(10), "20 acknowledgements counted on node 1");
        Assert.True(after.Single("formalchat_post_to_ack_seconds_count") >= messages);
        Assert.True(after.Single("formalchat_frames_received_total", ("link", "client"), ("kind", "Say")) >= messages);
        Assert.True(after.Single("formalchat_frames_received_total", ("link", "timer"), ("kind", "Ticked")) > before.Single("formalchat_frames_received_total", ("link", "timer"), ("kind", "Ticked")));
        Assert.True(after.Single("formalchat_clients_connected") >= 1);

        var leader = await ScrapeAsync(cluster, 3);
        Assert.True(leader.Single("formalchat_elections_won_total") >= 1, "node 3 won the election that made it leader");
    }

    [Fact]
    public async Task Status_json_is_the_nodes_view_and_the_dashboard_page_is_served()
    {
        await using var cluster = await TestCluster.StartAsync(2, dashboards: true);
        await cluster.WaitForLeaderAsync(2, [1, 2], TimeSpan.FromSeconds(20));

        var status = JObject.Parse(await Http.GetStringAsync($"http://127.0.0.1:{cluster.DashboardPort(1)}/status.json"));
        Assert.Equal(TestCluster.DashboardPortOffset, (int)status["dashboardPortOffset"]!);
        Assert.Equal(1, (int)status["node"]!["self"]!);
        Assert.Equal(2, (int)status["node"]!["leader"]!);
        Assert.Equal([1, 2], status["node"]!["nodes"]!.Select(node => (int)node["id"]!));

        var page = await Http.GetStringAsync($"http://127.0.0.1:{cluster.DashboardPort(1)}/");
        Assert.Contains("<title>FormalChat cluster</title>", page);
        Assert.DoesNotContain("http://", page.Replace("`http://${host}", ""));  // no CDN: every asset is in the page
    }
}
