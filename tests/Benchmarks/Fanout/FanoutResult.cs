using System.Globalization;
using System.Text;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>One row of the table: a target's figures for one scenario.</summary>
public sealed record FanoutResult(string Target, string Scenario)
{
    public double DeliveriesPerSecond { get; init; } = double.NaN;
    public double P50 { get; init; } = double.NaN;
    public double P99 { get; init; } = double.NaN;
    public double Max { get; init; } = double.NaN;
    public long Delivered { get; init; }
    public long Expected { get; init; }
    public int Duplicates { get; init; }
    public int OutOfOrder { get; init; }
    public string Elections { get; init; } = "?";
    public string Suspicions { get; init; } = "?";
    public string PeakMemory { get; init; } = "?";
    public string ProbeDuringRun { get; init; } = "?";
    public string ProbeAfterFlood { get; init; } = "?";
    public string Notes { get; init; } = "";
}

/// <summary>The one markdown table every run prints: rows by scenario, ngircd first.</summary>
public static class FanoutTable
{
    public static string Render(IReadOnlyList<FanoutResult> results)
    {
        var table = new StringBuilder();
        table.AppendLine("| target | scenario | deliveries/s | vs ngircd | p50 ms | p99 ms | max ms | delivered/expected | duplicate frames | out-of-order frames | elections | suspicions | peak RSS MB (per node) | status during flood ms (per node) | answer after flood ms (per node) | notes |");
        table.AppendLine("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|---|---|---|---|");
        foreach (var row in results)
        {
            var reference = results.FirstOrDefault(r => r.Target == "ngircd" && r.Scenario == row.Scenario);
            var ratio = reference is null || double.IsNaN(reference.DeliveriesPerSecond) || double.IsNaN(row.DeliveriesPerSecond)
                ? "n/a"
                : (row.DeliveriesPerSecond / reference.DeliveriesPerSecond).ToString("0.00", CultureInfo.InvariantCulture) + "×";
            table.AppendLine(string.Join(" | ", new[]
            {
                $"| {Name(row.Target)}", row.Scenario, Number(row.DeliveriesPerSecond, "#,0"), ratio,
                Number(row.P50, "0.0"), Number(row.P99, "0.0"), Number(row.Max, "0"),
                $"{row.Delivered:#,0}/{row.Expected:#,0}", row.Duplicates.ToString("#,0", CultureInfo.InvariantCulture),
                row.OutOfOrder.ToString("#,0", CultureInfo.InvariantCulture), row.Elections, row.Suspicions, row.PeakMemory, row.ProbeDuringRun, row.ProbeAfterFlood,
                row.Notes.Replace("|", "/") + " |",
            }));
        }
        return table.ToString();
    }

    public static string Name(string target) => target switch
    {
        "ngircd" => "ngircd 26.1",
        "1" => "FormalChat 1 node",
        _ => $"FormalChat {target} nodes",
    };

    /// <summary>A probe's answer time: tenths below 10 ms, where a whole number would read as 0.</summary>
    public static string Milliseconds(double ms) => ms.ToString(ms < 10 ? "0.0" : "0", CultureInfo.InvariantCulture);

    private static string Number(double value, string format) =>
        double.IsNaN(value) || double.IsInfinity(value) ? "–" : value.ToString(format, CultureInfo.InvariantCulture);
}
