using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.TraceValidation;

/// <summary>
/// Merges the nodes' replication traces (--trace-file PATH writes them to PATH.replication,
/// Protocol.FSharp/ReplicationTrace.fs) of one room into one behaviour for
/// spec/TraceReplication.tla, by the causal merge of CausalMerger: a line that received a
/// replication message comes after the line that sent it (the messages are named by
/// ReplicationTrace.messageKey on both sides).
/// </summary>
public static class ReplicationTraceMerger
{
    public static string PathOf(string traceFile) => traceFile + ".replication";

    /// <summary>Node <paramref name="traceFile"/>'s replication lines of <paramref name="room"/>.</summary>
    public static List<JObject> ReadNode(string traceFile, string room) =>
        CausalMerger.ReadNode(PathOf(traceFile)).Where(line => (string?)line["room"] == room).ToList();

    private static readonly CausalMerger.Rules Rules = new(
        Received: (node, line) => line["received"]!.Values<string>().Select(key => $"{key}@{node}"),
        Sent: line => line["sent"]!.Select(message => $"{(string)message["key"]!}@{(int)message["to"]!}"));

    /// <summary>Writes the merged trace: a header (the nodes, the room's first owner, the client
    /// message ids the test posted), then one line per step. Returns the merged lines.</summary>
    public static List<JObject> Merge(IReadOnlyDictionary<int, List<JObject>> nodes, IEnumerable<long> messageIds, string mergedPath)
    {
        var merged = CausalMerger.Order(nodes, Rules);
        var owner = merged.FirstOrDefault(line => (bool)line["owner"]!)?["node"] ?? throw new InvalidOperationException("no node ever owned the room");
        var header = new JObject
        {
            ["nodes"] = new JArray(nodes.Keys.OrderBy(id => id)),
            ["owner"] = owner,
            ["msgs"] = new JArray(messageIds),
        };
        CausalMerger.Write(header, merged, mergedPath);
        return merged;
    }
}
