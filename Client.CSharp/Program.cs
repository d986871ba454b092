using FormalChat.Protocol;

namespace FormalChat.Client;

/// `Client.CSharp --nick alice --server 127.0.0.1:5001 [--json]`, or the prior-art form
/// `Client.CSharp alice localhost 5001`. Exit codes: 0 after /quit or the end of scripted
/// input, 1 when the connection fails or ends, 2 for a bad command line.
public static class Program
{
    public static async Task<int> Main(string[] argv)
    {
        var parsed = Config.parseClientCommand(argv);
        if (parsed.IsError) return Usage(parsed.ErrorValue);
        var options = parsed.ResultValue;

        // The line editor needs a terminal on both sides; scripts and --json read plain lines.
        var interactive = !Console.IsInputRedirected && !Console.IsOutputRedirected && !options.Json;
        var editor = interactive ? new LineEditor($"{options.Nick}> ") : null;
        IConsoleSink sink = editor is null ? new PlainSink() : editor;
        IEventPrinter printer = options.Json
            ? new JsonPrinter(sink)
            : new HumanPrinter(sink, new Palette(Palette.TerminalWantsColour()), options.Nick);

        Connection connection;
        try
        {
            connection = await Connection.ConnectAsync(options.Server);
        }
        catch (ConnectFailedException error)
        {
            Console.Error.WriteLine($"cannot connect to {options.Server}: {error.Message}");
            return 1;
        }
        using (connection)
        {
            var session = new ChatSession(connection, printer);
            return await new ChatLoop(session, printer, editor).RunAsync(options.Nick);
        }
    }

    private static int Usage(Config.UsageError usage)
    {
        (usage.IsHelp ? Console.Out : Console.Error).WriteLine(usage.Message);
        return usage.IsHelp ? 0 : 2;
    }
}
