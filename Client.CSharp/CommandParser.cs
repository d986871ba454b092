using FormalChat.Protocol;
using Microsoft.FSharp.Core;

namespace FormalChat.Client;

/// What one typed line asks for: a request for the node, or something the client does itself.
public abstract record Command;

public sealed record SendRequest(ClientRequest Request) : Command;

/// A chat line for a room; the client gives it its message id when it sends it.
public sealed record Speak(string Room, string Text) : Command;

/// `/room #name`: plain lines go to that room from now on.
public sealed record SwitchRoom(string Room) : Command;

public sealed record ShowHelp : Command;

public sealed record QuitChat : Command;

/// The line cannot be sent as it is; nothing goes to the node.
public sealed record LocalError(string Reason) : Command;

/// An empty line.
public sealed record NoCommand : Command;

/// Turns a typed line into a Command. Pure: the outside knowledge is the current room (where a
/// plain line goes) and which nicknames are known to be online, which decides whether the
/// prior-art `send <word> <text>` is private.
public static class CommandParser
{
    public const string HelpText =
        """
        commands:
          <text>               say <text> in the current room (shown in the prompt; #lobby at first)
          /say #room <text>    say <text> in #room
          /join #room          join #room, creating it if nobody has yet; it becomes the current room
          /leave [#room]       leave #room (default: the current room); everyone stays in #lobby
          /room #room          make #room (one you are in) the current room
          /rooms               every room: members and the node that owns it
          /who [#room]         who is online (or in #room), on which node, in which rooms
          /msg <nick> <text>   private message to <nick>, on any node
          /status              the cluster: nodes, leader, epoch, loads
          /register <password> set a password for your nickname: from then on, hello needs it
                               (--password or --ask-password), on every node
          /help                this text
          /quit                leave (also: quit, Ctrl+C, Ctrl+D)
          //<text>             say a line that starts with '/'
          send <text>          prior-art form: <text> to everyone (#lobby)
          send <nick> <text>   private to <nick> when <nick> is a user this client knows is online
                               (from the last /who, join notices, or having seen them speak);
                               otherwise the whole line after 'send' goes to everyone (#lobby)
        """;

    public static Command Parse(string line, string currentRoom, Func<string, bool> isKnownNick)
    {
        var text = line.Trim();
        if (text.Length == 0) return new NoCommand();
        if (text.StartsWith("//", StringComparison.Ordinal)) return Say(currentRoom, text[1..]);
        if (text.StartsWith('/')) return ParseSlashCommand(text, currentRoom);
        var (word, rest) = SplitWord(text);
        if (word == "quit" && rest.Length == 0) return new QuitChat();
        if (word == "send") return ParseSend(rest, isKnownNick);
        return Say(currentRoom, text);
    }

    /// A line the node would refuse is refused here: a refused line would never be confirmed.
    /// The limit is the node's default; a node configured lower still answers text-invalid.
    private static Command Say(string room, string text)
    {
        var valid = Chat.validateText(NodeState.ProtocolConfigModule.defaults.MaxTextLength, text);
        return valid.IsOk ? new Speak(room, valid.ResultValue) : new LocalError(valid.ErrorValue);
    }

    private static Command ParseSlashCommand(string text, string currentRoom)
    {
        var (word, rest) = SplitWord(text);
        var (first, remainder) = SplitWord(rest);
        switch (word.ToLowerInvariant())
        {
            case "/msg":
                return first.Length == 0 || remainder.Length == 0
                    ? new LocalError("usage: /msg <nick> <text>")
                    : new SendRequest(ClientRequest.NewWhisper(first, remainder));
            case "/say":
                return first.Length == 0 || remainder.Length == 0
                    ? new LocalError("usage: /say #room <text>")
                    : WithRoom(first, room => Say(room, remainder));
            case "/join":
                return first.Length == 0 || remainder.Length > 0
                    ? new LocalError("usage: /join #room")
                    : WithRoom(first, room => new SendRequest(ClientRequest.NewJoin(room)));
            case "/leave":
                return remainder.Length > 0
                    ? new LocalError("usage: /leave [#room]")
                    : WithRoom(first.Length == 0 ? currentRoom : first, room => new SendRequest(ClientRequest.NewLeave(room)));
            case "/room":
                return first.Length == 0 || remainder.Length > 0
                    ? new LocalError($"usage: /room #room (now: {currentRoom})")
                    : WithRoom(first, room => new SwitchRoom(room));
            case "/rooms":
                return new SendRequest(ClientRequest.Rooms);
            case "/who":
                return first.Length == 0
                    ? new SendRequest(ClientRequest.NewWho(FSharpOption<string>.None))
                    : remainder.Length > 0
                        ? new LocalError("usage: /who [#room]")
                        : WithRoom(first, room => new SendRequest(ClientRequest.NewWho(FSharpOption<string>.Some(room))));
            case "/status": return new SendRequest(ClientRequest.Status);
            case "/register":
                // The password is the rest of the line, spaces and all.
                return rest.Length == 0
                    ? new LocalError("usage: /register <password>")
                    : new SendRequest(ClientRequest.NewRegister(Password.NewGiven(rest)));
            case "/help": return new ShowHelp();
            case "/quit": return new QuitChat();
            default: return new LocalError($"unknown command {word}; /help lists the commands");
        }
    }

    /// The prior art has no rooms: `send` speaks to everyone, which is #lobby.
    private static Command ParseSend(string rest, Func<string, bool> isKnownNick)
    {
        if (rest.Length == 0) return new LocalError("usage: send <text> or send <nick> <text>");
        var (target, message) = SplitWord(rest);
        return message.Length > 0 && isKnownNick(target)
            ? new SendRequest(ClientRequest.NewWhisper(target, message))
            : Say(Rooms.lobby.Value, rest);
    }

    /// "#Dev" and "dev" both name #dev; a name the node would refuse is refused here.
    private static Command WithRoom(string word, Func<string, Command> command)
    {
        var validated = Rooms.validateRoomName(word.StartsWith('#') ? word : "#" + word);
        return validated.IsOk ? command(validated.ResultValue.Value) : new LocalError(validated.ErrorValue);
    }

    /// "first rest of line" → ("first", "rest of line"); the rest is trimmed.
    private static (string Word, string Remainder) SplitWord(string text)
    {
        var space = text.IndexOfAny([' ', '\t']);
        return space < 0 ? (text, "") : (text[..space], text[(space + 1)..].Trim());
    }
}
