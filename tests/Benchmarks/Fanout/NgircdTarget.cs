using FormalChat.Cluster.Tests;
using FormalChat.Cluster.Tests.RawClients;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// A fresh ngircd with raw IRC clients in #bench: receivers, a sender with relaxed flood
/// protection, and two probes outside the channel that time a PING during and after the flood.
/// </summary>
public sealed class NgircdTarget : IFanoutTarget
{
    private const string Channel = "#bench";
    private static readonly TimeSpan ProbeDeadline = TimeSpan.FromSeconds(10);

    private readonly NgircdServer _server;
    private readonly List<IrcClient> _receivers = new();
    private readonly List<DeliveryLog> _logs = new();
    private IrcClient? _sender;
    private PeriodicProbe? _probeDuringRun;

    private NgircdTarget(NgircdServer server) => _server = server;

    public IReadOnlyList<DeliveryLog> Receivers => _logs;

    public static async Task<NgircdTarget> StartAsync(string binary, int receivers, int messages, TimeSpan setupDeadline)
    {
        var target = new NgircdTarget(await NgircdServer.StartAsync(binary));
        try
        {
            await target.SetUpAsync(receivers, messages).WaitAsync(setupDeadline);
            return target;
        }
        catch
        {
            await target.DisposeAsync();
            throw;
        }
    }

    private async Task SetUpAsync(int receivers, int messages)
    {
        var port = _server.Port;
        var clients = new IrcClient?[receivers];
        for (var n = 0; n < receivers; n++) _logs.Add(new DeliveryLog(messages));
        try
        {
            // ngircd listens with a backlog of 10: a few connections at a time, or SYNs are dropped
            // and retried a second later.
            await Parallel.ForEachAsync(Enumerable.Range(0, receivers), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (n, _) =>
            {
                clients[n] = await IrcClient.ConnectAsync(port, $"r{n}", _logs[n]);
                await clients[n]!.JoinAsync(Channel);
            });
        }
        finally
        {
            _receivers.AddRange(clients.OfType<IrcClient>());
        }
        _sender = await IrcClient.ConnectAsync(port, "snd", null);
        await _sender.RelaxFloodProtectionAsync("bench", "bench");
        await _sender.JoinAsync(Channel);
        _probeDuringRun = await PeriodicProbe.OpenAsync(port, "PING :watch\r\n", line => line.Contains(" PONG ", StringComparison.Ordinal) && line.Contains(":watch", StringComparison.Ordinal),
            ProbeDeadline, ("NICK watch\r\nUSER watch 0 * :watch\r\n", line => line.Split(' ') is [_, "001", ..]));

        await _sender.SendAsync($"PRIVMSG {Channel} :{DeliveryLog.WarmUpText}\r\n");
        await Eventually.TrueAsync(() => Task.FromResult(_logs.All(log => log.WarmedUp)), TimeSpan.FromSeconds(30), "the warm-up message reached every receiver");
    }

    public void Send(int number) => _sender!.Send($"PRIVMSG {Channel} :{DeliveryLog.Text(number)}\r\n");

    public void StartProbes() => _probeDuringRun!.Start();

    public Task<string> StopProbesAsync() => PeriodicProbe.StopAllAsync([_probeDuringRun!], "PING");

    public Task<string> ProbeAsync() => PeriodicProbe.AskAfterLastSend([_probeDuringRun!], "PING");

    public Task<string> ElectionsAsync() => Task.FromResult("n/a");

    public string Suspicions() => "n/a";

    /// <summary>IRC has no sequence numbers: duplicates and order are judged by the message number in the text.</summary>
    public (int Duplicates, int OutOfOrder) Anomalies() => (_logs.Sum(log => log.Repeats), _logs.Sum(log => log.OutOfOrder));

    public string PeakMemory() => ProcessMemory.PeakMegabytes(_server.ProcessId) is { } mb ? $"{mb:0}" : "gone";

    public string Notes()
    {
        var notes = new List<string>();
        foreach (var group in _receivers.Where(c => c.CloseReason is not null).GroupBy(c => c.Problem ?? c.CloseReason))
            notes.Add($"{group.Count()} receivers closed ({group.Key})");
        if (_sender?.CloseReason is { } why) notes.Add($"sender closed ({_sender.Problem ?? why})");
        var complaints = _server.Output.Count(line => line.Contains("exhausted", StringComparison.OrdinalIgnoreCase) || line.Contains("flood", StringComparison.OrdinalIgnoreCase));
        if (complaints > 0) notes.Add($"ngircd logged {complaints} buffer/flood complaints");
        if (_server.HasExited) notes.Add("ngircd exited");
        return string.Join("; ", notes);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _receivers) await client.DisposeAsync();
        if (_sender is not null) await _sender.DisposeAsync();
        if (_probeDuringRun is not null) await _probeDuringRun.DisposeAsync();
        await _server.DisposeAsync();
    }
}
