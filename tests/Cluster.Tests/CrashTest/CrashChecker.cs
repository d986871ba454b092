using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.CrashTest;

/// <summary>What one client did and showed during the run; Stayed: it was still running at the end.</summary>
public sealed record ClientRecord(string Nick, IReadOnlyList<string> Rooms, IReadOnlyList<SentLine> Sent, IReadOnlyList<TimedEvent> Events, bool Stayed);

/// <summary>
/// The verdict on a run, from the clients' events alone: every acknowledged message shown
/// exactly once, in one per-room order, by every client that stayed in the room for the run.
/// </summary>
public static class CrashChecker
{
    private const int ExamplesKept = 20;

    private sealed record Shown(TimeSpan At, string Room, long Seq, string From, long Id, string Text)
    {
        public string What => $"{From}#{Id} \"{Text}\"";
    }

    private sealed record Ack(TimeSpan At, string Room, long Seq, long Id);

    public static CrashReport Check(CrashTestOptions options, IReadOnlyList<ClientRecord> clients, IReadOnlyList<KillRecord> kills, CrashTimes times)
    {
        var report = new CrashReport(options, kills, times);
        var shown = clients.ToDictionary(c => c.Nick, c => Messages(c).ToList());
        var acks = clients.ToDictionary(c => c.Nick, c => Acks(c).ToList());

        report.Sent = clients.Sum(c => c.Sent.Count);
        report.Acknowledged = acks.Values.Sum(list => list.Select(a => a.Id).Distinct().Count());
        report.Delivered = shown.Values.Sum(list => list.Count);
        report.Failovers = clients.Sum(c => c.Events.Count(e => e.Name == "reconnected" && (bool?)e.Json["redirected"] != true));
        report.Redirects = clients.Sum(c => c.Events.Count(e => e.Name == "reconnected" && (bool?)e.Json["redirected"] == true));
        report.ClientsGone = clients.Where(c => !c.Stayed).Select(c => c.Nick).ToList();
        foreach (var client in clients)
        {
            foreach (var error in client.Events.Where(e => e.Name == "error"))
            {
                report.ClientErrors++;
                Note(report.ErrorExamples, $"{client.Nick} at {Seconds(error.At)}: {error.Json.ToString(Newtonsoft.Json.Formatting.None)}");
            }
        }

        CheckOrderAndDuplicates(report, clients, shown);
        CheckLost(report, clients, shown, acks);
        CheckMissing(report, clients, shown);
        MeasureAcks(report, clients, shown, acks);
        CountSenderOrderInversions(report, clients, shown);
        MeasurePause(report, clients, shown, kills, times);
        return report;
    }

    private static IEnumerable<Shown> Messages(ClientRecord client) =>
        client.Events.Where(e => e.Name == "message").Select(e => new Shown(
            e.At, (string)e.Json["room"]!, (long)e.Json["seq"]!, (string)e.Json["from"]!, (long?)e.Json["id"] ?? 0, (string?)e.Json["text"] ?? ""));

    private static IEnumerable<Ack> Acks(ClientRecord client) =>
        client.Events.Where(e => e.Name == "ack").Select(e => new Ack(e.At, (string)e.Json["room"]!, (long)e.Json["seq"]!, (long)e.Json["id"]!));

    /// <summary>
    /// Per client and room: sequence numbers strictly increasing, no (room, seq) and no
    /// (sender, id) shown twice; across clients: one message per (room, seq).
    /// </summary>
    private static void CheckOrderAndDuplicates(CrashReport report, IReadOnlyList<ClientRecord> clients, Dictionary<string, List<Shown>> shown)
    {
        var agreed = new Dictionary<(string Room, long Seq), (Shown Message, string Nick)>();
        var disagreements = new HashSet<(string, long)>();
        foreach (var client in clients)
        {
            foreach (var room in shown[client.Nick].GroupBy(m => m.Room))
            {
                var list = room.ToList();
                for (var i = 1; i < list.Count; i++)
                {
                    // The same seq again is a duplicate, counted below.
                    if (list[i].Seq >= list[i - 1].Seq) continue;
                    report.OutOfOrder++;
                    Note(report.OrderExamples, $"{client.Nick} showed {room.Key} seq {list[i].Seq} after seq {list[i - 1].Seq} (at {Seconds(list[i].At)})");
                }
                foreach (var twice in list.GroupBy(m => m.Seq).Where(g => g.Count() > 1))
                {
                    report.Duplicated += twice.Count() - 1;
                    Note(report.DuplicateExamples, $"{client.Nick} showed {room.Key} seq {twice.Key} {twice.Count()} times: {string.Join(", ", twice.Select(m => m.What))}");
                }
                foreach (var twice in list.Where(m => m.Id != 0).GroupBy(m => (m.From, m.Id)).Where(g => g.Count() > 1))
                {
                    // Shown at different sequence numbers (the same seq twice is counted above).
                    var extra = twice.Select(m => m.Seq).Distinct().Count() - 1;
                    if (extra == 0) continue;
                    report.Duplicated += extra;
                    Note(report.DuplicateExamples, $"{client.Nick} showed {twice.First().What} in {room.Key} at seqs {string.Join(", ", twice.Select(m => m.Seq))}");
                }
                foreach (var message in list)
                {
                    if (!agreed.TryGetValue((room.Key, message.Seq), out var first))
                    {
                        agreed[(room.Key, message.Seq)] = (message, client.Nick);
                    }
                    else if ((first.Message.From, first.Message.Id, first.Message.Text) != (message.From, message.Id, message.Text)
                             && disagreements.Add((room.Key, message.Seq)))
                    {
                        report.OutOfOrder++;
                        Note(report.OrderExamples, $"{room.Key} seq {message.Seq}: {first.Nick} showed {first.Message.What}, {client.Nick} showed {message.What}");
                    }
                }
            }
        }
    }

    /// <summary>
    /// Every acknowledged message is shown by every client that stayed in its room, at the
    /// sequence number of the acknowledgement.
    /// </summary>
    private static void CheckLost(CrashReport report, IReadOnlyList<ClientRecord> clients, Dictionary<string, List<Shown>> shown, Dictionary<string, List<Ack>> acks)
    {
        var index = clients.ToDictionary(c => c.Nick, c => shown[c.Nick].Where(m => m.Id != 0).GroupBy(m => (m.Room, m.From, m.Id)).ToDictionary(g => g.Key, g => g.First()));
        foreach (var sender in clients)
        {
            foreach (var ack in acks[sender.Nick].DistinctBy(a => a.Id))
            {
                var missingAt = new List<string>();
                foreach (var member in clients.Where(c => c.Stayed && c.Rooms.Contains(ack.Room)))
                {
                    if (!index[member.Nick].TryGetValue((ack.Room, sender.Nick, ack.Id), out var message))
                    {
                        missingAt.Add(member.Nick);
                        report.MissingDeliveries++;
                    }
                    else if (message.Seq != ack.Seq)
                    {
                        report.OutOfOrder++;
                        Note(report.OrderExamples, $"{member.Nick} showed {message.What} in {ack.Room} at seq {message.Seq}; {sender.Nick}'s ack said seq {ack.Seq}");
                    }
                }
                if (missingAt.Count == 0) continue;
                report.Lost++;
                Note(report.LostExamples, $"{sender.Nick}#{ack.Id} acknowledged at {Seconds(ack.At)} as {ack.Room} seq {ack.Seq}, never shown by {string.Join(", ", missingAt)}");
            }
        }
    }

    /// <summary>Any message (acknowledged or not) that one client showed and another member did not.</summary>
    private static void CheckMissing(CrashReport report, IReadOnlyList<ClientRecord> clients, Dictionary<string, List<Shown>> shown)
    {
        var everywhere = shown.Values.SelectMany(list => list).GroupBy(m => m.Room).ToDictionary(g => g.Key, g => g.Select(m => m.Seq).ToHashSet());
        foreach (var client in clients.Where(c => c.Stayed))
        {
            foreach (var room in client.Rooms)
            {
                var mine = shown[client.Nick].Where(m => m.Room == room).Select(m => m.Seq).ToHashSet();
                var gaps = everywhere.GetValueOrDefault(room, []).Where(seq => !mine.Contains(seq)).Order().ToList();
                report.Gaps += gaps.Count;
                if (gaps.Count > 0) Note(report.GapExamples, $"{client.Nick} never showed {room} seq {string.Join(", ", gaps.Take(10))}{(gaps.Count > 10 ? ", ..." : "")}");
            }
        }
    }

    /// <summary>
    /// Unacknowledged lines, and the longest wait from typing a line to its ack. The client gives
    /// its lines consecutive ids in the order typed, so one own message names them all.
    /// </summary>
    private static void MeasureAcks(CrashReport report, IReadOnlyList<ClientRecord> clients, Dictionary<string, List<Shown>> shown, Dictionary<string, List<Ack>> acks)
    {
        foreach (var client in clients)
        {
            var acked = acks[client.Nick].DistinctBy(a => a.Id).ToList();
            report.Unacknowledged += client.Sent.Count - acked.Count;
            var texts = client.Sent.Select((line, index) => (line.Text, index)).ToDictionary(p => p.Text, p => p.index);
            var own = shown[client.Nick].FirstOrDefault(m => m.From == client.Nick && texts.ContainsKey(m.Text));
            if (own is null) continue;
            var firstId = own.Id - texts[own.Text];
            foreach (var ack in acked)
            {
                var index = ack.Id - firstId;
                if (index < 0 || index >= client.Sent.Count)
                {
                    Note(report.ErrorExamples, $"{client.Nick}: ack of id {ack.Id}, which no typed line has");
                    continue;
                }
                var line = client.Sent[(int)index];
                if (line.Room != ack.Room) Note(report.ErrorExamples, $"{client.Nick}: \"{line.Text}\" was typed for {line.Room}, acknowledged in {ack.Room}");
                var wait = ack.At - line.At;
                if (wait > report.LongestAckWait)
                {
                    report.LongestAckWait = wait;
                    report.LongestAckWaitWhere = $"{client.Nick} \"{line.Text}\" typed at {Seconds(line.At)}";
                }
            }
            var ackedIds = acked.Select(a => a.Id).ToHashSet();
            var unacked = client.Sent.Where((line, index) => !ackedIds.Contains(firstId + index)).Take(5).ToList();
            if (unacked.Count > 0) Note(report.ErrorExamples, $"{client.Nick} never had acknowledged: {string.Join(", ", unacked.Select(l => $"\"{l.Text}\" ({l.Room}, typed at {Seconds(l.At)})"))}");
        }
    }

    /// <summary>
    /// A client's own lines that the room sequenced after a line it typed later (not a promise
    /// of the protocol; it shows lines that waited for a retry while later ones went through).
    /// </summary>
    private static void CountSenderOrderInversions(CrashReport report, IReadOnlyList<ClientRecord> clients, Dictionary<string, List<Shown>> shown)
    {
        foreach (var client in clients)
        {
            foreach (var room in shown[client.Nick].Where(m => m.From == client.Nick && m.Id != 0).GroupBy(m => m.Room))
            {
                var highest = long.MinValue;
                foreach (var message in room.OrderBy(m => m.Seq))
                {
                    if (message.Id < highest)
                    {
                        report.SenderOrderInversions++;
                        Note(report.InversionExamples, $"{client.Nick}: {room.Key} seq {message.Seq} is \"{message.Text}\", typed before lines sequenced earlier (shown at {Seconds(message.At)})");
                    }
                    highest = Math.Max(highest, message.Id);
                }
            }
        }
    }

    /// <summary>The longest time any client went without showing a message while the workload ran.</summary>
    private static void MeasurePause(CrashReport report, IReadOnlyList<ClientRecord> clients, Dictionary<string, List<Shown>> shown, IReadOnlyList<KillRecord> kills, CrashTimes times)
    {
        foreach (var client in clients)
        {
            var at = shown[client.Nick].Select(m => m.At).Where(t => t >= times.SendingStarted).Order().ToList();
            for (var i = 1; i < at.Count; i++)
            {
                var gap = at[i] - at[i - 1];
                if (gap <= report.LongestPause) continue;
                report.LongestPause = gap;
                var kill = kills.LastOrDefault(k => k.KilledAt <= at[i]);
                var last = kill is null ? "" : $"; the last kill before: node {kill.Node} at {Seconds(kill.KilledAt)}";
                report.LongestPauseWhere = $"{client.Nick} between {Seconds(at[i - 1])} and {Seconds(at[i])}{last}";
            }
        }
    }

    private static void Note(List<string> examples, string text)
    {
        if (examples.Count < ExamplesKept) examples.Add(text);
    }

    internal static string Seconds(TimeSpan at) => $"{at.TotalSeconds:0.00} s";
}
