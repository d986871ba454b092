using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.TraceValidation;

/// <summary>
/// Merges the nodes' --trace-file traces into one behaviour for spec/TraceFormalChat.tla. The
/// order respects causality: each node's own lines stay in order, a receive comes after a send
/// of the same message, a heartbeat's receipt after the sender has held the epoch and leader the
/// heartbeat carries, and a crash after the last receipt of the crashed node's heartbeats. Among
/// the lines that may come next, the one with the earliest clock goes first: the nodes run on one
/// host and log a monotonic clock, so this is close to the real order. A receive whose message
/// was never sent cannot wait for ever: when nothing else may go, it goes, and TLC rejects it.
/// </summary>
public static class TraceMerger
{
    private static readonly HashSet<string> Receives = ["RecvElection", "RecvLeader", "RecvLeave"];

    /// <summary>The lines of one node's trace. A line cut short by kill -9 is dropped: its turn's
    /// effects never ran (the trace is flushed before them), so nothing it sent was seen.</summary>
    public static List<JObject> ReadNode(string path)
    {
        var lines = new List<JObject>();
        if (!File.Exists(path)) return lines;
        foreach (var text in File.ReadAllLines(path))
        {
            if (string.IsNullOrWhiteSpace(text)) continue;
            try { lines.Add(JObject.Parse(text)); }
            catch (JsonReaderException) { break; }
        }
        return lines;
    }

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
        var merged = Order(nodes);
        using var writer = new StreamWriter(mergedPath);
        var header = new JObject { ["nodes"] = new JArray(nodes.Keys.OrderBy(id => id)), ["suspectAfter"] = suspectAfter };
        writer.WriteLine(header.ToString(Formatting.None));
        foreach (var line in merged)
        {
            // TLC's integers are 32 bits: the clock only served the merge.
            var copy = (JObject)line.DeepClone();
            copy.Remove("clock");
            writer.WriteLine(copy.ToString(Formatting.None));
        }
        return merged;
    }

    private static string MessageKey(JToken message, int to) =>
        $"{(string)message["type"]!}/{to}/{(int)message["id"]!}/{(int)message["epoch"]!}";

    private static List<JObject> Order(IReadOnlyDictionary<int, List<JObject>> nodes)
    {
        var next = nodes.Keys.ToDictionary(id => id, _ => 0);
        var sent = new Dictionary<string, int>();
        var received = new Dictionary<string, int>();
        var held = nodes.Keys.ToDictionary(id => id, _ => new HashSet<(int, int)> { (0, 0) });
        var merged = new List<JObject>();

        bool MayGo(int node, JObject line)
        {
            var action = (string)line["action"]!;
            if (Receives.Contains(action))
            {
                var key = MessageKey(line["msg"]!, node);
                return sent.GetValueOrDefault(key) > received.GetValueOrDefault(key);
            }
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
                return !nodes.Where(other => other.Key != node).Any(other =>
                    other.Value.Skip(next[other.Key]).Any(later =>
                        (string)later["action"]! == "RecvHeartbeat" && (int)later["msg"]!["id"]! == node));
            }
            return true;
        }

        while (true)
        {
            var heads = nodes.Keys.Where(id => next[id] < nodes[id].Count)
                .Select(id => (Node: id, Line: nodes[id][next[id]]))
                .OrderBy(head => (long)head.Line["clock"]!).ThenBy(head => head.Node)
                .ToList();
            if (heads.Count == 0) return merged;
            var (node, line) = heads.FirstOrDefault(head => MayGo(head.Node, head.Line));
            if (line is null) (node, line) = heads[0];
            next[node]++;
            merged.Add(line);
            var action = (string)line["action"]!;
            if (Receives.Contains(action))
            {
                var key = MessageKey(line["msg"]!, node);
                received[key] = received.GetValueOrDefault(key) + 1;
            }
            foreach (var message in line["sent"]!)
            {
                var key = MessageKey(message, (int)message["to"]!);
                sent[key] = sent.GetValueOrDefault(key) + 1;
            }
            if (action != "Crash") held[node].Add(((int)line["epoch"]!, (int)line["leader"]!));
        }
    }
}
