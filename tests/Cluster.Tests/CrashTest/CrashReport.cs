using System.Text;

namespace FormalChat.Cluster.Tests.CrashTest;

/// <summary>When the phases of a run began and ended, on the run's clock.</summary>
public sealed record CrashTimes(TimeSpan SendingStarted, TimeSpan SendingStopped, TimeSpan DrainEnded, bool Drained);

/// <summary>The figures of one crash test and the verdict; Print gives them as text.</summary>
public sealed class CrashReport(CrashTestOptions options, IReadOnlyList<KillRecord> kills, CrashTimes times)
{
    public CrashTestOptions Options { get; } = options;
    public IReadOnlyList<KillRecord> Kills { get; } = kills;
    public CrashTimes Times { get; } = times;

    /// <summary>Why the chaos stopped before the end (a step missed its deadline), or null.</summary>
    public string? ChaosFailure { get; set; }

    public int Sent { get; set; }
    public int Acknowledged { get; set; }
    /// <summary>Lines typed and never acknowledged, even after the drain.</summary>
    public int Unacknowledged { get; set; }
    /// <summary>Message events, summed over clients.</summary>
    public int Delivered { get; set; }
    /// <summary>Acknowledged messages that at least one client that stayed in the room never showed.</summary>
    public int Lost { get; set; }
    /// <summary>(acknowledged message, client) pairs behind Lost.</summary>
    public int MissingDeliveries { get; set; }
    /// <summary>A client showed a (room, seq) or a (sender, id) a second time.</summary>
    public int Duplicated { get; set; }
    /// <summary>A seq not above the one before in a client's room, two clients' messages differing at one seq, or an ack's seq differing from where the message was shown.</summary>
    public int OutOfOrder { get; set; }
    /// <summary>(room, seq) that some client showed and another member never did, acknowledged or not.</summary>
    public int Gaps { get; set; }
    /// <summary>A client's line sequenced after one it typed later, in the same room (information, not a promise).</summary>
    public int SenderOrderInversions { get; set; }
    public int Failovers { get; set; }
    public int Redirects { get; set; }
    public int ClientErrors { get; set; }
    public IReadOnlyList<string> ClientsGone { get; set; } = [];
    public TimeSpan LongestPause { get; set; }
    public string LongestPauseWhere { get; set; } = "";
    public TimeSpan LongestAckWait { get; set; }
    public string LongestAckWaitWhere { get; set; } = "";

    public List<string> LostExamples { get; } = new();
    public List<string> DuplicateExamples { get; } = new();
    public List<string> OrderExamples { get; } = new();
    public List<string> GapExamples { get; } = new();
    public List<string> ErrorExamples { get; } = new();
    public List<string> InversionExamples { get; } = new();

    public int Restarts => Kills.Count(kill => kill.RejoinedAt is not null);

    /// <summary>
    /// Nothing acknowledged lost, nothing shown twice, one order, the chaos ran to its end. Lines
    /// never acknowledged and clients that gave up are printed, not judged here.
    /// </summary>
    public bool Passed => Lost == 0 && Duplicated == 0 && OutOfOrder == 0 && ChaosFailure is null;

    public string Print()
    {
        var text = new StringBuilder();
        var rooms = Options.ExtraRooms.Prepend("#lobby");
        var pause = Options.SendPauseMax <= TimeSpan.Zero ? "no pause" : $"a pause of {Options.SendPauseMin.TotalMilliseconds:0}-{Options.SendPauseMax.TotalMilliseconds:0} ms";
        text.AppendLine($"crash test: seed {Options.Seed}, {Options.Nodes} nodes, {Options.Clients} clients in {string.Join(" ", rooms)}, " +
                        $"window {Options.Window} unacknowledged lines per client with {pause} between lines, " +
                        $"heartbeat {TestCluster.HeartbeatMs} ms, K {TestCluster.SuspectAfter}, " +
                        $"sending for {(Times.SendingStopped - Times.SendingStarted).TotalSeconds:0.0} s (asked {Options.Duration.TotalSeconds:0} s)" +
                        (Options.NodeArguments.Count > 0 ? $", nodes with {string.Join(" ", Options.NodeArguments)}" : ""));
        var perNode = string.Join(", ", Kills.GroupBy(k => k.Node).OrderBy(g => g.Key).Select(g => $"node {g.Key} ×{g.Count()}"));
        text.AppendLine($"kills           {Kills.Count}{(Kills.Count > 0 ? $" ({perNode})" : "")}, {Restarts} restarted and rejoined");
        foreach (var kill in Kills) text.AppendLine($"                {kill}");
        if (ChaosFailure is not null) text.AppendLine($"chaos stopped   {ChaosFailure.Replace("\n", "\n                ")}");
        text.AppendLine($"sent            {Sent}");
        text.AppendLine($"acknowledged    {Acknowledged}");
        text.AppendLine($"delivered       {Delivered}");
        text.AppendLine($"lost            {Lost}{(MissingDeliveries > 0 ? $" ({MissingDeliveries} missing deliveries)" : "")}");
        text.AppendLine($"duplicated      {Duplicated}");
        text.AppendLine($"out of order    {OutOfOrder}");
        text.AppendLine($"failovers       {Failovers}{(Redirects > 0 ? $" (and {Redirects} redirects)" : "")}");
        text.AppendLine($"longest pause   {LongestPause.TotalMilliseconds:0} ms ({LongestPauseWhere})");
        text.AppendLine($"unacknowledged  {Unacknowledged}{(Unacknowledged > 0 ? " (never sequenced: they waited, not lost)" : "")}; gaps {Gaps}; client errors {ClientErrors}; clients gone {ClientsGone.Count}{(ClientsGone.Count > 0 ? $" ({string.Join(", ", ClientsGone)})" : "")}");
        text.AppendLine($"longest ack     {LongestAckWait.TotalMilliseconds:0} ms ({LongestAckWaitWhere}); lines sequenced after a later line of their sender: {SenderOrderInversions}");
        text.AppendLine($"drain           {(Times.DrainEnded - Times.SendingStopped).TotalSeconds:0.0} s{(Times.Drained ? "" : ", NOT drained by the deadline")}");
        Examples(text, "lost", LostExamples);
        Examples(text, "duplicated", DuplicateExamples);
        Examples(text, "out of order", OrderExamples);
        Examples(text, "gaps", GapExamples);
        Examples(text, "client errors", ErrorExamples);
        Examples(text, "lines sequenced after a later line of their sender", InversionExamples);
        text.Append(Passed ? "PASSED: lost 0, duplicated 0, out of order 0" : "FAILED");
        return text.ToString();
    }

    private static void Examples(StringBuilder text, string what, List<string> examples)
    {
        if (examples.Count == 0) return;
        text.AppendLine($"{what}, first {examples.Count}:");
        foreach (var example in examples) text.AppendLine($"  {example}");
    }
}
