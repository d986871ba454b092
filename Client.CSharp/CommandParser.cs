using FormalChat.Protocol;

namespace FormalChat.Client;

/// What one typed line asks for: a request for the node, or something the client does itself.
public abstract record Command;

public sealed record SendRequest(ClientRequest Request) : Command;

public sealed record ShowHelp : Command;

public sealed record QuitChat : Command;

/// The line cannot be sent as it is; nothing goes to the node.
public sealed record LocalError(string Reason) : Command;

/// An empty line.
public sealed record NoCommand : Command;

/// Turns a typed line into a Command. Pure: the only outside knowledge is which nicknames are
/// known to be online, which decides whether the prior-art `send <word> <text>` is private.
public static class CommandParser
{
    public const string HelpText =
        """
        commands:
          <text>               say <text> to everyone
          /msg <nick> <text>   private message to <nick>, on any node
          /who                 who is online, and on which node
          /status              the cluster: nodes, leader, epoch, loads
          /help                this text
          /quit                leave (also: quit, Ctrl+C, Ctrl+D)
          //<text>             say a line that starts with '/'
          send <text>          prior-art form of <text>
          send <nick> <text>   private to <nick> when <nick> is a user this client knows is online
                               (from the last /who, join notices, or having seen them speak);
                               otherwise the whole line after 'send' goes to everyone
        """;

    public static Command Parse(string line, Func<string, bool> isKnownNick)
    {
        var text = line.Trim();
        if (text.Length == 0) return new NoCommand();
        if (text.StartsWith("//", StringComparison.Ordinal)) return Say(text[1..]);
        if (text.StartsWith('/')) return ParseSlashCommand(text);
        var (word, rest) = SplitWord(text);
        if (word == "quit" && rest.Length == 0) return new QuitChat();
        if (word == "send") return ParseSend(rest, isKnownNick);
        return Say(text);
    }

    private static Command ParseSlashCommand(string text)
    {
        var (word, rest) = SplitWord(text);
        switch (word.ToLowerInvariant())
        {
            case "/msg":
                var (target, message) = SplitWord(rest);
                return target.Length == 0 || message.Length == 0
                    ? new LocalError("usage: /msg <nick> <text>")
                    : new SendRequest(ClientRequest.NewWhisper(target, message));
            case "/who": return new SendRequest(ClientRequest.Who);
            case "/status": return new SendRequest(ClientRequest.Status);
            case "/help": return new ShowHelp();
            case "/quit": return new QuitChat();
            default: return new LocalError($"unknown command {word}; /help lists the commands");
        }
    }

    private static Command ParseSend(string rest, Func<string, bool> isKnownNick)
    {
        if (rest.Length == 0) return new LocalError("usage: send <text> or send <nick> <text>");
        var (target, message) = SplitWord(rest);
        return message.Length > 0 && isKnownNick(target)
            ? new SendRequest(ClientRequest.NewWhisper(target, message))
            : Say(rest);
    }

    private static Command Say(string text) => new SendRequest(ClientRequest.NewSay(text));

    /// "first rest of line" → ("first", "rest of line"); the rest is trimmed.
    private static (string Word, string Remainder) SplitWord(string text)
    {
        var space = text.IndexOfAny([' ', '\t']);
        return space < 0 ? (text, "") : (text[..space], text[(space + 1)..].Trim());
    }
}
