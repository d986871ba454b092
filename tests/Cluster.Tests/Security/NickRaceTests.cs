using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>
/// Issue 11, "the same nick sent to two nodes at the same moment was welcomed on both sides 41
/// times out of 50": a node welcomes a nickname only on the leader's grant (NickRegistry.fs,
/// spec/NickRegistry.tla), so a race has exactly one winner, decided before either node says
/// welcome.
/// </summary>
public class NickRaceTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);
    private const int Races = 100;

    private static bool IsAnswer(JObject frame) => (string?)frame["type"] is "welcome" or "error";

    [Fact]
    public async Task The_same_nick_sent_to_two_nodes_at_once_is_welcomed_exactly_once_in_100_races()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.WaitForLeaderAsync(leader: 3, nodes: [1, 2, 3], Deadline);
        var doubles = 0;
        var noWinner = 0;
        for (var race = 0; race < Races; race++)
        {
            // Two followers, then a follower against the leader (whose claim to itself is local).
            var (first, second) = race % 2 == 0 ? (1, 2) : (1, 3);
            await using var a = await TestClient.OpenAsync(cluster.ClientPort(first));
            await using var b = await TestClient.OpenAsync(cluster.ClientPort(second));
            var hello = new JObject { ["v"] = 1, ["type"] = "hello", ["nick"] = $"racer{race}" };
            await Task.WhenAll(a.SendAsync(hello), b.SendAsync(hello));

            var answers = await Task.WhenAll(a.NextAsync(IsAnswer, Deadline), b.NextAsync(IsAnswer, Deadline));

            var welcomes = answers.Count(answer => (string?)answer["type"] == "welcome");
            if (welcomes > 1) doubles++;
            if (welcomes == 0) noWinner++;
            foreach (var answer in answers.Where(answer => (string?)answer["type"] == "error"))
                Assert.Equal("nick-taken", (string?)answer["code"]);
        }
        Assert.Equal(0, doubles);
        Assert.Equal(0, noWinner);
    }
}
