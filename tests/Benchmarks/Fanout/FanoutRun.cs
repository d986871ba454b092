using System.Diagnostics;
using System.Net.Sockets;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// One scenario against one target: the sender sends on a thread of its own (flooding, or
/// paced by a schedule), every receiver timestamps each first arrival, and the run ends when
/// everything sent has arrived everywhere, when nothing has arrived for a while, or at the
/// hard cap, whichever comes first; then it counts what arrived.
/// </summary>
public static class FanoutRun
{
    /// <summary>No new delivery for this long after the last send: the target is stuck, stop waiting.</summary>
    private static readonly TimeSpan StallLimit = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan SetupDeadline = TimeSpan.FromSeconds(90);

    public static async Task<FanoutResult> RunAsync(string target, FanoutScenario scenario, FanoutOptions options, string? ngircd)
    {
        var messages = scenario.MessageCount(options);
        var result = new FanoutResult(target, scenario.Name) { Expected = (long)messages * scenario.Receivers };
        // Setting up is not what is measured: a fresh cluster that wobbles while it starts on
        // two busy cores gets one more chance, and the row says so.
        string? firstFailure = null;
        for (var attempt = 1; attempt <= 2; attempt++)
        {
            IFanoutTarget server;
            try
            {
                server = target == "ngircd"
                    ? await NgircdTarget.StartAsync(ngircd ?? throw new InvalidOperationException("ngircd is not available"), scenario.Receivers, messages, SetupDeadline)
                    : await FormalChatTarget.StartAsync(int.Parse(target), scenario.Receivers, messages, SetupDeadline);
            }
            catch (Exception error)
            {
                if (firstFailure is null)
                {
                    firstFailure = FirstLine(error.Message);
                    continue;
                }
                return result with { Notes = $"setup failed twice: {firstFailure}; then {FirstLine(error.Message)}" };
            }
            await using (server)
            {
                var measured = await MeasureAsync(server, scenario, messages, TimeSpan.FromSeconds(options.CapSeconds), result);
                return firstFailure is null ? measured : measured with { Notes = Join($"setup retried after: {firstFailure}", measured.Notes) };
            }
        }
        throw new InvalidOperationException("unreachable: the second attempt returns");
    }

    private static string Join(params string[] notes) => string.Join("; ", notes.Where(note => note.Length > 0));

    private static async Task<FanoutResult> MeasureAsync(IFanoutTarget server, FanoutScenario scenario, int messages, TimeSpan cap, FanoutResult result)
    {
        var sendTimes = new long[messages];
        server.StartProbes();
        var clock = Stopwatch.StartNew();
        var (sent, sendProblem) = await Task.Factory.StartNew(() => SendAll(server, scenario.Rate, sendTimes, cap), TaskCreationOptions.LongRunning);
        var probe = server.ProbeAsync();
        var ending = await WaitForDeliveriesAsync(server.Receivers, (long)sent * server.Receivers.Count, clock, cap);
        var probesDuringRun = await server.StopProbesAsync();

        var latencies = Latencies(server.Receivers, sendTimes, sent);
        var lastArrival = server.Receivers.Max(log => Max(log.Arrivals));
        var seconds = lastArrival > 0 && sent > 0 ? (lastArrival - sendTimes[0]) / (double)Stopwatch.Frequency : double.NaN;
        var (duplicates, outOfOrder) = server.Anomalies();
        var notes = new[] { sendProblem, ending, server.Notes() }.Where(note => !string.IsNullOrEmpty(note));
        return result with
        {
            Delivered = latencies.Length,
            DeliveriesPerSecond = latencies.Length / seconds,
            P50 = Percentile(latencies, 0.50),
            P99 = Percentile(latencies, 0.99),
            Max = latencies.Length > 0 ? latencies[^1] : double.NaN,
            Duplicates = duplicates,
            OutOfOrder = outOfOrder,
            ProbeDuringRun = probesDuringRun,
            ProbeAfterFlood = await probe,
            Elections = await server.ElectionsAsync(),
            Suspicions = server.Suspicions(),
            PeakMemory = server.PeakMemory(),
            Notes = string.Join("; ", notes),
        };
    }

    /// <summary>Sends every message, or stops at the cap or when the target stops reading; returns how many went out.</summary>
    private static (int Sent, string? Problem) SendAll(IFanoutTarget server, int? rate, long[] sendTimes, TimeSpan cap)
    {
        var start = Stopwatch.GetTimestamp();
        var capTicks = (long)(cap.TotalSeconds * Stopwatch.Frequency);
        for (var n = 0; n < sendTimes.Length; n++)
        {
            // Paced: message n is due at start + n/rate. Sleeping in 1 ms steps sends the due ones
            // in small bursts and leaves the CPU to the servers; latency counts from the real send.
            if (rate is { } perSecond)
            {
                var due = start + n * Stopwatch.Frequency / perSecond;
                while (Stopwatch.GetTimestamp() < due) Thread.Sleep(1);
            }
            var now = Stopwatch.GetTimestamp();
            if (now - start > capTicks) return (n, $"cap reached while sending, {n} sent");
            sendTimes[n] = now;
            try { server.Send(n); }
            catch (Exception error) when (error is SocketException or IOException or ObjectDisposedException)
            {
                return (n, $"sender stopped after {n}: {error.Message}");
            }
        }
        return (sendTimes.Length, null);
    }

    /// <summary>Waits for every copy of what was sent; returns why it stopped early, or null.</summary>
    private static async Task<string?> WaitForDeliveriesAsync(IReadOnlyList<DeliveryLog> receivers, long expected, Stopwatch clock, TimeSpan cap)
    {
        long delivered = -1;
        var lastProgress = clock.Elapsed;
        while (true)
        {
            var now = receivers.Sum(log => (long)log.Unique);
            if (now >= expected) return null;
            if (now != delivered) (delivered, lastProgress) = (now, clock.Elapsed);
            if (clock.Elapsed > cap) return $"capped at {cap.TotalSeconds:0} s";
            if (clock.Elapsed - lastProgress > StallLimit) return $"stalled: nothing new for {StallLimit.TotalSeconds:0} s";
            await Task.Delay(20);
        }
    }

    /// <summary>Milliseconds from send to first arrival of every delivered copy, sorted.</summary>
    private static double[] Latencies(IReadOnlyList<DeliveryLog> receivers, long[] sendTimes, int sent)
    {
        var latencies = new List<double>();
        foreach (var log in receivers)
        {
            var arrivals = log.Arrivals;
            for (var n = 0; n < sent; n++)
            {
                if (arrivals[n] != 0) latencies.Add((arrivals[n] - sendTimes[n]) * 1000.0 / Stopwatch.Frequency);
            }
        }
        var sorted = latencies.ToArray();
        Array.Sort(sorted);
        return sorted;
    }

    private static double Percentile(double[] sorted, double fraction) =>
        sorted.Length == 0 ? double.NaN : sorted[(int)Math.Ceiling(fraction * sorted.Length) - 1];

    private static long Max(ReadOnlySpan<long> values)
    {
        long max = 0;
        foreach (var value in values) max = Math.Max(max, value);
        return max;
    }

    private static string FirstLine(string text) => text.Split('\n')[0];
}
