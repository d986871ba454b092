using FormalChat.CommandLine;
using FormalChat.Protocol;

namespace FormalChat.Client;

/// `Client.CSharp --nick alice [--server 127.0.0.1:5001] [--json]`, or the prior-art form
/// `Client.CSharp alice localhost 5001`. Without --server the client discovers the cluster
/// (multicast heartbeats, or the --peer seeds) and connects to the least-loaded node. Exit
/// codes: 0 after /quit or the end of scripted input, 1 when no node could be reached, the
/// hello was refused, or the connection ended and could not be carried over; 2 for a bad
/// command line.
public static class Program
{
    public static async Task<int> Main(string[] argv)
    {
        var parsed = ClientCommandLine.parse(argv);
        if (parsed.IsError) return Usage(parsed.ErrorValue);
        var options = parsed.ResultValue;
        if (options.Tls?.Value.SkipVerify == true) Console.Error.WriteLine(ClientTls.SkipVerifyWarning);

        // The line editor needs a terminal on both sides; scripts and --json read plain lines.
        var interactive = !Console.IsInputRedirected && !Console.IsOutputRedirected && !options.Json;
        var editor = interactive ? new LineEditor($"{options.Nick} {Rooms.lobby}> ") : null;
        IConsoleSink sink = editor is null ? new PlainSink() : editor;
        IEventPrinter printer = options.Json
            ? new JsonPrinter(sink)
            : new HumanPrinter(sink, new Palette(Palette.TerminalWantsColour()), options.Nick);
        var client = new ChatClient(options, printer, editor, FirstMessageId());
        if (options.AskPassword) client.AccountPassword = AskPassword(options.Nick);
        return await new ChatLoop(client, printer, editor).RunAsync();
    }

    /// Client message ids count up from here. A room's owner recognises a retried message by
    /// (nick, id) among the room's recent messages, so a new run with the same nickname must not
    /// reuse the ids of an earlier one: start from the clock (microseconds since 2020, under 2^53
    /// so scripts reading the JSON keep them exact).
    private static long FirstMessageId() =>
        (DateTime.UtcNow - new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc)).Ticks / 10;

    /// Read from the terminal without echo; from a redirected input, the first line.
    private static string AskPassword(string nick)
    {
        Console.Error.Write($"password for {nick}: ");
        if (Console.IsInputRedirected) return Console.ReadLine() ?? "";
        var password = new System.Text.StringBuilder();
        for (var key = Console.ReadKey(intercept: true); key.Key != ConsoleKey.Enter; key = Console.ReadKey(intercept: true))
        {
            if (key.Key == ConsoleKey.Backspace) { if (password.Length > 0) password.Length--; }
            else if (!char.IsControl(key.KeyChar)) password.Append(key.KeyChar);
        }
        Console.Error.WriteLine();
        return password.ToString();
    }

    private static int Usage(UsageError usage)
    {
        (usage.IsHelp ? Console.Out : Console.Error).WriteLine(usage.Message);
        return usage.IsHelp ? 0 : 2;
    }
}
