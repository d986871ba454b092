using FormalChat.Protocol;

namespace FormalChat.Client;

/// The life of one session: hello, then typed (or piped) lines until /quit, the end of input,
/// or the node hanging up. Returns the process exit code.
public sealed class ChatLoop(ChatSession session, IEventPrinter printer, LineEditor? editor)
{
    private static readonly TimeSpan WelcomeTimeout = TimeSpan.FromSeconds(10);
    /// At the end of scripted input, how long to wait for the answers to what was sent.
    private static readonly TimeSpan AnswersTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan GoodbyeTimeout = TimeSpan.FromSeconds(2);

    public async Task<int> RunAsync(string nick)
    {
        session.Start(nick);
        bool welcomed;
        try
        {
            welcomed = await session.Welcomed.WaitAsync(WelcomeTimeout);
        }
        catch (TimeoutException)
        {
            printer.Disconnected($"no welcome from the node within {WelcomeTimeout.TotalSeconds:0} s", expected: false);
            return 1;
        }
        if (!welcomed)
        {
            // A refused hello has already been printed as an error; a hang-up has not.
            printer.Disconnected(session.CloseReason, expected: !session.Closed.IsCompleted);
            return 1;
        }
        // Learn who is online before the first command, so `send <nick> <text>` decides the same
        // way every time a script runs; a slow answer only delays that knowledge.
        await Task.WhenAny(session.SyncAsync(), session.Closed, Task.Delay(AnswersTimeout));
        return await ReadCommandsAsync();
    }

    private async Task<int> ReadCommandsAsync()
    {
        using var hungUp = new CancellationTokenSource();
        _ = session.Closed.ContinueWith(_ => hungUp.Cancel(), TaskScheduler.Default);
        while (true)
        {
            var line = await ReadLineAsync(hungUp.Token);
            if (session.Closed.IsCompleted) return HungUp();
            if (line is null) return editor is null ? await FinishScriptAsync("end of input") : await QuitAsync("quit");
            switch (CommandParser.Parse(line, session.IsKnownNick))
            {
                case SendRequest send:
                    session.Send(send.Request);
                    break;
                case ShowHelp:
                    printer.Help(CommandParser.HelpText);
                    break;
                case QuitChat:
                    return editor is null ? await FinishScriptAsync("quit") : await QuitAsync("quit");
                case LocalError error:
                    printer.ClientError("bad-command", error.Reason);
                    break;
            }
        }
    }

    private async Task<string?> ReadLineAsync(CancellationToken hungUp)
    {
        if (editor is not null) return await editor.ReadLineAsync(hungUp);
        // Console.In reads synchronously and cannot be cancelled, so it reads on a pool thread;
        // on a hang-up that read is abandoned and the process exits around it.
        var read = Task.Run(Console.In.ReadLine);
        await Task.WhenAny(read, (Task)session.Closed);
        return read.IsCompleted ? read.Result : null;
    }

    /// Scripted input has ended: wait until the node has answered everything sent, then leave,
    /// so `printf 'hi\n/who\n' | Client.CSharp --json` prints every answer.
    private async Task<int> FinishScriptAsync(string reason)
    {
        var answered = session.SyncAsync();
        await Task.WhenAny(answered, session.Closed, Task.Delay(AnswersTimeout));
        if (answered.IsCompleted) return await QuitAsync(reason);
        if (session.Closed.IsCompleted) return HungUp();
        printer.ClientError("timeout", $"the node did not answer within {AnswersTimeout.TotalSeconds:0} s");
        await QuitAsync(reason);
        return 1;
    }

    private async Task<int> QuitAsync(string reason)
    {
        if (session.Closed.IsCompleted) return HungUp();
        session.Send(ClientRequest.Quit);
        // The node answers quit by closing; wait for that so nothing it sent before is cut off.
        await Task.WhenAny(session.Closed, Task.Delay(GoodbyeTimeout));
        printer.Disconnected(reason, expected: true);
        return 0;
    }

    private int HungUp()
    {
        printer.Disconnected(session.CloseReason, expected: false);
        return 1;
    }
}
