using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.TraceValidation;

/// <summary>
/// The one causal merge of the nodes' traces, for every trace kind (TraceMerger for
/// FormalChat.tla, ReplicationTraceMerger for Replication.tla, PlacementTraceMerger for
/// Placement.tla): each node's own lines stay in order, and a line that received a message comes
/// after a line that sent it. Among the lines that may go next, the earliest clock goes first:
/// the nodes run on one host and log one monotonic clock, so this is close to the real order. A
/// receipt whose send is not in the traces cannot wait for ever: when nothing else may go, the
/// earliest line goes, and TLC judges it. The kinds differ only in how a line names the messages
/// it received and sent (<see cref="Rules"/>) and in their own extra waits.
/// </summary>
public static class CausalMerger
{
    /// <summary>How one trace kind's lines name messages: <paramref name="Received"/>(node, line)
    /// and <paramref name="Sent"/>(line) give keys that are equal for a message at its sender and
    /// at its receiver (the receiver part of the key included). <paramref name="MayAlsoGo"/>, if
    /// given, is a further wait (node, line, the lines not merged yet of a node); <paramref
    /// name="Went"/> is told of every line merged.</summary>
    public sealed record Rules(
        Func<int, JObject, IEnumerable<string>> Received,
        Func<JObject, IEnumerable<string>> Sent,
        Func<int, JObject, Func<int, IEnumerable<JObject>>, bool>? MayAlsoGo = null,
        Action<int, JObject>? Went = null);

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

    /// <summary>The nodes' lines in one order that respects causality (see the class).</summary>
    public static List<JObject> Order(IReadOnlyDictionary<int, List<JObject>> nodes, Rules rules)
    {
        var next = nodes.Keys.ToDictionary(id => id, _ => 0);
        var sent = new Dictionary<string, int>();
        var received = new Dictionary<string, int>();
        var merged = new List<JObject>();
        IEnumerable<JObject> Remaining(int node) => nodes[node].Skip(next[node]);

        bool MayGo(int node, JObject line) =>
            rules.Received(node, line).GroupBy(key => key).All(keys =>
                sent.GetValueOrDefault(keys.Key) >= received.GetValueOrDefault(keys.Key) + keys.Count())
            && (rules.MayAlsoGo?.Invoke(node, line, Remaining) ?? true);

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
            foreach (var key in rules.Received(node, line)) received[key] = received.GetValueOrDefault(key) + 1;
            foreach (var key in rules.Sent(line)) sent[key] = sent.GetValueOrDefault(key) + 1;
            rules.Went?.Invoke(node, line);
        }
    }

    /// <summary>Writes a merged trace: the header, then the lines without their clocks (TLC's
    /// integers are 32 bits: the clock only served the merge).</summary>
    public static void Write(JObject header, IEnumerable<JObject> merged, string mergedPath)
    {
        using var writer = new StreamWriter(mergedPath);
        writer.WriteLine(header.ToString(Formatting.None));
        foreach (var line in merged)
        {
            var copy = (JObject)line.DeepClone();
            copy.Remove("clock");
            writer.WriteLine(copy.ToString(Formatting.None));
        }
    }
}
