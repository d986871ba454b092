using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.TraceValidation;

/// <summary>
/// Merges the nodes' --trace-file traces into one behaviour for spec/TraceFormalChat.tla, by
/// the causal merge of CausalMerger: a receive (RecvElection, RecvLeader, RecvLeave) comes after
/// a send of the same message. Two waits of its own: a heartbeat's receipt after the sender has
/// held the epoch and leader the heartbeat carries, and a crash or a graceful leave after the
/// last receipt of that node's heartbeats (the spec reads a live sender).
/// </summary>
public static class TraceMerger
{
    private static readonly HashSet<string> Receives = ["RecvElection", "RecvLeader", "RecvLeave"];

    /// <summary>The line a test appends to a node it killed with -9: the environment's Crash(i).</summary>
    public static JObject CrashLine(int node, long clock) => new()
    {
        ["node"] = node, ["step"] = 0, ["clock"] = clock, ["action"] = "Crash",
        ["msg"] = new JObject { ["type"] = "none", ["to"] = 0, ["id"] = 0, ["epoch"] = 0, ["leader"] = 0 },
        ["sent"] = new JArray(), ["view"] = new JArray(), ["age"] = new JArray(),
        ["epoch"] = 0, ["participant"] = false, ["leader"] = 0,
    };

    /// <summary>Writes the merged trace: a header (the nodes, K), then one line per action.
    /// Returns the merged lines, for the test's messages.</summary>
    public static List<JObject> Merge(IReadOnlyDictionary<int, List<JObject>> nodes, int suspectAfter, string mergedPath)
    {
        var merged = CausalMerger.Order(nodes, Rules(nodes.Keys));
        CausalMerger.Write(new JObject { ["nodes"] = new JArray(nodes.Keys.OrderBy(id => id)), ["suspectAfter"] = suspectAfter }, merged, mergedPath);
        return merged;
    }

    private static string MessageKey(JToken message, int to) =>
        $"{(string)message["type"]!}/{to}/{(int)message["id"]!}/{(int)message["epoch"]!}";

    private static CausalMerger.Rules Rules(IEnumerable<int> nodes)
    {
        // held[j]: the (epoch, leader) pairs node j has logged so far, which its heartbeats may carry.
        var held = nodes.ToDictionary(id => id, _ => new HashSet<(int, int)> { (0, 0) });

        IEnumerable<string> Received(int node, JObject line) =>
            Receives.Contains((string)line["action"]!) ? [MessageKey(line["msg"]!, node)] : [];

        IEnumerable<string> Sent(JObject line) => line["sent"]!.Select(message => MessageKey(message, (int)message["to"]!));

        bool MayAlsoGo(int node, JObject line, Func<int, IEnumerable<JObject>> remaining)
        {
            var action = (string)line["action"]!;
            if (action == "RecvHeartbeat")
            {
                var from = (int)line["msg"]!["id"]!;
                return !held.TryGetValue(from, out var states)
                       || states.Contains(((int)line["msg"]!["epoch"]!, (int)line["msg"]!["leader"]!));
            }
            if (action is "Crash" or "Leave")
            {
                // Every receipt of its heartbeats goes first: the spec reads a live sender (a
                // heartbeat sent before a graceful stop can arrive after it).
                return !held.Keys.Where(other => other != node).Any(other =>
                    remaining(other).Any(later => (string)later["action"]! == "RecvHeartbeat" && (int)later["msg"]!["id"]! == node));
            }
            return true;
        }

        void Went(int node, JObject line)
        {
            if ((string)line["action"]! != "Crash") held[node].Add(((int)line["epoch"]!, (int)line["leader"]!));
        }

        return new CausalMerger.Rules(Received, Sent, MayAlsoGo, Went);
    }
}
