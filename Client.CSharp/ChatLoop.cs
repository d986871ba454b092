using FormalChat.Protocol;

namespace FormalChat.Client;

/// The life of the client: find a node and say hello, then typed (or piped) lines until /quit,
/// the end of input, or a connection that cannot be carried over to another node. Returns the
/// process exit code.
public sealed class ChatLoop(ChatClient client, IEventPrinter printer, LineEditor? editor)
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan WelcomeTimeout = TimeSpan.FromSeconds(10);
    /// At the end of scripted input, how long to wait for the answers to what was sent and for
    /// every message sent to come back sequenced: long enough to ride out one failover.
    private static readonly TimeSpan SettleTimeout = Failover.Deadline + TimeSpan.FromSeconds(5);
    private static readonly TimeSpan GoodbyeTimeout = TimeSpan.FromSeconds(2);

    public async Task<int> RunAsync()
    {
        var session = await ConnectAsync();
        if (session is null) return 1;
        await client.AfterWelcomeAsync(session);
        _ = Task.Run(client.PollStatusAsync);
        return await ReadCommandsAsync();
    }

    /// The node named by --server, or the least-loaded node discovery finds (then the next
    /// best if that one cannot be reached). Null when no node welcomed us; the reason is printed.
    private async Task<ChatSession?> ConnectAsync()
    {
        IReadOnlyList<Endpoint> servers;
        if (client.Options.Server is { } named)
        {
            servers = [named.Value];
        }
        else
        {
            var nodes = await Discovery.FindAsync(client.Options.Discovery, client.Options.Tls?.Value, CancellationToken.None);
            if (nodes.Count == 0)
            {
                var reason = $"no node found: {Discovery.Describe(client.Options.Discovery)}";
                printer.ClientError("no-cluster", reason);
                printer.Disconnected(reason, expected: true);
                return null;
            }
            client.AddKnownNodes(nodes);
            printer.System(NodeChoice.Announcement(nodes[0], nodes));
            servers = nodes.Select(node => node.Client).ToList();
        }
        var attempt = new Attempt(AttemptOutcome.Unreachable, "no node to connect to");
        foreach (var server in servers)
        {
            attempt = await client.TryConnectAsync(server, ConnectTimeout, WelcomeTimeout);
            if (attempt.Session is not null) return attempt.Session;
            // A refused hello (nickname taken, server full) has been printed as the node's error.
            if (attempt.Outcome is AttemptOutcome.NickTaken or AttemptOutcome.Refused)
            {
                printer.Disconnected(attempt.Reason, expected: true);
                return null;
            }
        }
        printer.Disconnected(attempt.Reason, expected: false);
        return null;
    }

    private async Task<int> ReadCommandsAsync()
    {
        using var ended = new CancellationTokenSource();
        _ = client.Ended.ContinueWith(_ => ended.Cancel(), TaskScheduler.Default);
        while (true)
        {
            var line = await ReadLineAsync(ended.Token);
            if (client.Ended.IsCompleted) return GaveUp();
            if (line is null) return editor is null ? await FinishScriptAsync("end of input") : await QuitAsync("quit");
            switch (CommandParser.Parse(line, client.CurrentRoom, client.IsKnownNick))
            {
                case ShowHelp:
                    printer.Help(CommandParser.HelpText);
                    break;
                case QuitChat:
                    return editor is null ? await FinishScriptAsync("quit") : await QuitAsync("quit");
                case LocalError error:
                    printer.ClientError("bad-command", error.Reason);
                    break;
                case NoCommand:
                    break;
                case var command:
                    client.Submit(command);
                    break;
            }
        }
    }

    private async Task<string?> ReadLineAsync(CancellationToken ended)
    {
        if (editor is not null) return await editor.ReadLineAsync(ended);
        // Console.In reads synchronously and cannot be cancelled, so it reads on a pool thread;
        // when the client gives up, that read is abandoned and the process exits around it.
        var read = Task.Run(Console.In.ReadLine);
        await Task.WhenAny(read, (Task)client.Ended);
        return read.IsCompleted ? read.Result : null;
    }

    /// Scripted input has ended: wait until the node has answered everything sent and every
    /// message sent has come back sequenced, then leave, so `printf 'hi\n/who\n' | Client.CSharp
    /// --json` prints every answer.
    private async Task<int> FinishScriptAsync(string reason)
    {
        if (await client.SettleAsync(SettleTimeout)) return await QuitAsync(reason);
        if (client.Ended.IsCompleted) return GaveUp();
        printer.ClientError("timeout", $"the node did not answer or confirm every message within {SettleTimeout.TotalSeconds:0} s");
        await QuitAsync(reason);
        return 1;
    }

    private async Task<int> QuitAsync(string reason)
    {
        if (client.Ended.IsCompleted) return GaveUp();
        await client.QuitAsync(GoodbyeTimeout);
        printer.Disconnected(reason, expected: true);
        return 0;
    }

    private int GaveUp()
    {
        printer.Disconnected(client.Ended.Result, expected: false);
        return 1;
    }
}
