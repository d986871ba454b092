using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.TraceValidation;

/// <summary>
/// Merges the nodes' replication traces (--trace-file PATH writes them to PATH.replication,
/// Protocol.FSharp/ReplicationTrace.fs) of one room into one behaviour for
/// spec/TraceReplication.tla. Each node's lines stay in order, and a line that received a
/// replication message comes after the line that sent it (the messages are named by
/// ReplicationTrace.messageKey on both sides); among the lines that may go, the earliest clock
/// first. A receipt whose send is not in the traces goes when nothing else may, and TLC judges it.
/// </summary>
public static class ReplicationTraceMerger
{
    public static string PathOf(string traceFile) => traceFile + ".replication";

    /// <summary>Node <paramref name="traceFile"/>'s replication lines of <paramref name="room"/>.</summary>
    public static List<JObject> ReadNode(string traceFile, string room) =>
        TraceMerger.ReadNode(PathOf(traceFile)).Where(line => (string?)line["room"] == room).ToList();

    /// <summary>Writes the merged trace: a header (the nodes, the room's first owner, the client
    /// message ids the test posted), then one line per step. Returns the merged lines.</summary>
    public static List<JObject> Merge(IReadOnlyDictionary<int, List<JObject>> nodes, IEnumerable<long> messageIds, string mergedPath)
    {
        var merged = Order(nodes);
        var owner = merged.FirstOrDefault(line => (bool)line["owner"]!)?["node"] ?? throw new InvalidOperationException("no node ever owned the room");
        using var writer = new StreamWriter(mergedPath);
        var header = new JObject
        {
            ["nodes"] = new JArray(nodes.Keys.OrderBy(id => id)),
            ["owner"] = owner,
            ["msgs"] = new JArray(messageIds),
        };
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

    private static List<JObject> Order(IReadOnlyDictionary<int, List<JObject>> nodes)
    {
        var next = nodes.Keys.ToDictionary(id => id, _ => 0);
        var sent = new Dictionary<(string Key, int To), int>();
        var received = new Dictionary<(string Key, int To), int>();
        var merged = new List<JObject>();

        bool MayGo(int node, JObject line) =>
            line["received"]!.Values<string>().GroupBy(key => key!).All(keys =>
                sent.GetValueOrDefault((keys.Key, node)) >= received.GetValueOrDefault((keys.Key, node)) + keys.Count());

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
            foreach (var key in line["received"]!.Values<string>()) received[(key!, node)] = received.GetValueOrDefault((key!, node)) + 1;
            foreach (var message in line["sent"]!)
            {
                var key = ((string)message["key"]!, (int)message["to"]!);
                sent[key] = sent.GetValueOrDefault(key) + 1;
            }
        }
    }
}
