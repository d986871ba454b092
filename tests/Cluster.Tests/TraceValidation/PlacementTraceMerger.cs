using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.TraceValidation;

/// <summary>
/// Merges the nodes' placement traces (--trace-file PATH writes them to PATH.placement,
/// Protocol.FSharp/PlacementTrace.fs) into one behaviour for spec/TracePlacement.tla, by the
/// causal merge of CausalMerger: a line that received a placement message comes after a line
/// that sent it (the messages are Placement.tla's records, the same text on both sides).
/// </summary>
public static class PlacementTraceMerger
{
    public static string PathOf(string traceFile) => traceFile + ".placement";

    public static List<JObject> ReadNode(string traceFile) => CausalMerger.ReadNode(PathOf(traceFile));

    /// <summary>The line a test appends to a node it killed with -9: Placement.tla's Crash(n).</summary>
    public static JObject CrashLine(int node, long clock) => new() { ["node"] = node, ["clock"] = clock, ["crash"] = true };

    private static IEnumerable<string> Messages(JToken? messages) =>
        messages?.Select(message => message.ToString(Formatting.None)) ?? [];

    private static readonly CausalMerger.Rules Rules = new(
        Received: (_, line) => Messages(line["received"]),
        Sent: line => Messages(line["sent"]));

    /// <summary>Writes the merged trace: a header (the nodes, every room named, in ordinal order as
    /// F# iterates a Map), then one line per step. Returns the merged lines.</summary>
    public static List<JObject> Merge(IReadOnlyDictionary<int, List<JObject>> nodes, string mergedPath)
    {
        var merged = CausalMerger.Order(nodes, Rules);
        var rooms = merged
            .SelectMany(line => (line["placements"] ?? new JArray()).Select(placement => (string)placement["room"]!)
                .Concat(Messages(line["sent"]).Concat(Messages(line["received"])).Select(message => (string)JObject.Parse(message)["room"]!)))
            .Distinct()
            .Order(StringComparer.Ordinal);
        CausalMerger.Write(new JObject { ["nodes"] = new JArray(nodes.Keys.OrderBy(id => id)), ["rooms"] = new JArray(rooms) }, merged, mergedPath);
        return merged;
    }
}
