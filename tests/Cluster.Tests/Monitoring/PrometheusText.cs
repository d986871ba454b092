using System.Globalization;
using System.Text.RegularExpressions;

namespace FormalChat.Cluster.Tests.Monitoring;

/// <summary>
/// A strict reader of the Prometheus text exposition format (version 0.0.4): every line is a
/// well-formed # HELP, # TYPE or sample line, every sample belongs to a family declared by # TYPE
/// before it, and every value is a number. Anything else throws, naming the line.
/// </summary>
public static partial class PrometheusText
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    [GeneratedRegex("""^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$""")]
    private static partial Regex Comment();

    [GeneratedRegex("""^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([^ ]+)( -?[0-9]+)?$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""\G([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)""")]
    private static partial Regex Label();

    private static readonly HashSet<string> Types = ["counter", "gauge", "histogram", "summary", "untyped"];
    private static readonly string[] FamilySuffixes = ["_bucket", "_sum", "_count", "_total", "_created"];

    public static List<Sample> Parse(string text)
    {
        var families = new Dictionary<string, string>();
        var samples = new List<Sample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0) continue;
            if (line.StartsWith('#'))
            {
                var comment = Comment().Match(line);
                if (!comment.Success) throw new FormatException($"bad comment line: {line}");
                if (comment.Groups[1].Value == "TYPE")
                {
                    if (!Types.Contains(comment.Groups[3].Value)) throw new FormatException($"unknown type: {line}");
                    if (!families.TryAdd(comment.Groups[2].Value, comment.Groups[3].Value)) throw new FormatException($"family typed twice: {line}");
                }
                continue;
            }
            var sample = SampleLine().Match(line);
            if (!sample.Success) throw new FormatException($"bad sample line: {line}");
            var name = sample.Groups[1].Value;
            if (!families.ContainsKey(name) && !FamilySuffixes.Any(suffix => name.EndsWith(suffix) && families.ContainsKey(name[..^suffix.Length])))
            {
                throw new FormatException($"sample of an undeclared family: {line}");
            }
            samples.Add(new Sample(name, Labels(sample.Groups[3].Value, line), Value(sample.Groups[4].Value, line)));
        }
        return samples;
    }

    private static Dictionary<string, string> Labels(string text, string line)
    {
        var labels = new Dictionary<string, string>();
        var at = 0;
        while (at < text.Length)
        {
            var label = Label().Match(text, at);
            if (!label.Success) throw new FormatException($"bad labels: {line}");
            if (!labels.TryAdd(label.Groups[1].Value, Regex.Unescape(label.Groups[2].Value))) throw new FormatException($"label twice: {line}");
            at += label.Length;
        }
        return labels;
    }

    private static double Value(string text, string line) => text switch
    {
        "NaN" => double.NaN,
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"bad value: {line}"),
    };

    public static double Single(this List<Sample> samples, string name, params (string Label, string Value)[] labels) =>
        samples.Where(sample => sample.Name == name && labels.All(label => sample.Labels.TryGetValue(label.Label, out var value) && value == label.Value))
               .Select(sample => sample.Value)
               .DefaultIfEmpty(double.NaN)
               .Sum();
}
