using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FormalChat.Node.Irc;

/// <summary>IRC client -> core: each command of the subset (docs/IRC.md) as ClientRequests, or
/// as an answer the gateway gives by itself (PING, MOTD, TOPIC, MODE, errors it can tell alone).</summary>
public static partial class IrcTranslator
{
    public static IrcOutcome OnLine(IrcSession session, string text)
    {
        var outcome = new IrcOutcome();
        var line = IrcLine.Parse(text);
        if (line is null) return outcome;
        if (!session.Registered && !AllowedBeforeWelcome(line.Command))
        {
            Numeric(outcome, session, "451", "You have not registered");
            return outcome;
        }
        switch (line.Command)
        {
            case "NICK": OnNick(session, line, outcome); break;
            case "USER": OnUser(session, line, outcome); break;
            case "PASS": OnPass(session, line, outcome); break;
            case "CAP": OnCap(session, line, outcome); break;
            case "PING": OnPing(session, line, outcome); break;
            case "PONG": break;
            case "QUIT":
                // The core closes the connection; the gateway's ERROR line then gives this reason.
                session.QuitMessage = line.Parameter(0);
                outcome.Requests.Add(ClientRequest.Quit);
                break;
            case "JOIN": OnJoin(session, line, outcome); break;
            case "PART": OnPart(session, line, outcome); break;
            case "PRIVMSG": OnPrivateMessage(session, line, outcome, isNotice: false); break;
            case "NOTICE": OnPrivateMessage(session, line, outcome, isNotice: true); break;
            case "NAMES": OnNames(session, line, outcome); break;
            case "WHO": OnWho(session, line, outcome); break;
            case "WHOIS": OnWhois(session, line, outcome); break;
            case "ISON": OnIson(session, line, outcome); break;
            case "LIST": outcome.Requests.Add(ClientRequest.Rooms); break;
            case "TOPIC": OnTopic(session, line, outcome); break;
            case "MOTD": AddMotd(session, outcome); break;
            case "MODE": OnMode(session, line, outcome); break;
            default: Numeric(outcome, session, "421", line.Command, "Unknown command"); break;
        }
        return outcome;
    }

    private static bool AllowedBeforeWelcome(string command) =>
        command is "NICK" or "USER" or "PASS" or "CAP" or "PING" or "PONG" or "QUIT";

    private static void OnNick(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        var nick = line.Parameter(0);
        if (nick.Length == 0)
        {
            Numeric(outcome, session, "431", "No nickname given");
            return;
        }
        if (session.Registered)
        {
            // The core keeps one nickname per connection: a new nickname is a new connection.
            if (nick != session.Nick) Numeric(outcome, session, "447", "Cannot change nickname: reconnect with the new one");
            return;
        }
        session.Nick = nick;
        SayHelloWhenReady(session, outcome);
    }

    /// <summary>
    /// RFC 2812 3.1.1: PASS comes before NICK and USER, and is the password of a registered nick
    /// (docs/SECURITY.md, "Accounts"): it goes with the hello, and the node checks it as it checks
    /// a native client's. Once the hello has gone it is too late, as on any IRC server.
    /// </summary>
    private static void OnPass(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        if (session.Registered || session.HelloPending is not null)
        {
            Numeric(outcome, session, "462", "You may not reregister");
            return;
        }
        if (line.Parameters.Count == 0 || line.Parameter(0).Length == 0)
        {
            Numeric(outcome, session, "461", "PASS", "Not enough parameters");
            return;
        }
        session.Password = line.Parameter(0);
    }

    private static void OnUser(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        if (session.Registered || session.User is not null)
        {
            Numeric(outcome, session, "462", "You may not reregister");
            return;
        }
        if (line.Parameters.Count < 4 || line.Parameter(0).Length == 0)
        {
            Numeric(outcome, session, "461", "USER", "Not enough parameters");
            return;
        }
        session.User = new string(line.Parameter(0).Where(c => c > ' ' && c != '@' && c != '!').Take(16).ToArray());
        if (session.User.Length == 0) session.User = "user";
        SayHelloWhenReady(session, outcome);
    }

    /// <summary>NICK and USER, in either order, complete the registration: then the core hears hello.</summary>
    private static void SayHelloWhenReady(IrcSession session, IrcOutcome outcome)
    {
        if (session.Nick is null || session.User is null || session.HelloPending is not null) return;
        session.HelloPending = session.Nick;
        var password = session.Password is { } given ? FSharpOption<Password>.Some(Password.NewGiven(given)) : FSharpOption<Password>.None;
        outcome.Requests.Add(ClientRequest.NewHello(new HelloRequest(session.Nick, FSharpOption<string>.None, FSharpList<Tuple<string, long>>.Empty, password)));
    }

    private static void OnCap(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        // IRCv3 capability negotiation: we offer none, so a client goes on as with an RFC server.
        switch (line.Parameter(0).ToUpperInvariant())
        {
            case "LS": outcome.Lines.Add($":{session.ServerName} CAP {session.Target} LS :"); break;
            case "LIST": outcome.Lines.Add($":{session.ServerName} CAP {session.Target} LIST :"); break;
            case "REQ": outcome.Lines.Add($":{session.ServerName} CAP {session.Target} NAK :{line.Parameter(1)}"); break;
            case "END": break;
            default: Numeric(outcome, session, "410", line.Parameter(0), "Invalid CAP command"); break;
        }
    }

    private static void OnPing(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        if (line.Parameters.Count == 0)
        {
            Numeric(outcome, session, "409", "No origin specified");
            return;
        }
        outcome.Lines.Add(new IrcLine(session.ServerName, "PONG", [session.ServerName, line.Parameter(0)]).ToString());
    }

    private static void OnJoin(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        if (line.Parameters.Count == 0)
        {
            Numeric(outcome, session, "461", "JOIN", "Not enough parameters");
            return;
        }
        if (line.Parameter(0) == "0")
        {
            // RFC 2812 3.2.1: JOIN 0 leaves every channel; #lobby cannot be left.
            foreach (var room in session.Rooms.Where(room => room != Rooms.lobby)) outcome.Requests.Add(ClientRequest.NewLeave(room));
            return;
        }
        foreach (var name in Channels(line.Parameter(0)))
        {
            if (ValidRoom(session, name, outcome) is not { } room) continue;
            // Already in: IRC servers answer nothing, and the core would only repeat its Joined.
            if (!session.Rooms.Contains(room) && session.RoomsJoining.Add(room)) outcome.Requests.Add(ClientRequest.NewJoin(room));
        }
    }

    private static void OnPart(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        if (line.Parameters.Count == 0)
        {
            Numeric(outcome, session, "461", "PART", "Not enough parameters");
            return;
        }
        foreach (var name in Channels(line.Parameter(0)))
        {
            if (ValidRoom(session, name, outcome) is not { } room) continue;
            if (room == Rooms.lobby) Numeric(outcome, session, "442", room, "Everyone stays in #lobby in FormalChat");
            else if (!session.Rooms.Contains(room)) Numeric(outcome, session, "442", room, "You're not on that channel");
            else outcome.Requests.Add(ClientRequest.NewLeave(room));
        }
    }

    /// <summary>
    /// PRIVMSG and NOTICE both become a room post or a private line: the core has one kind of
    /// message. A NOTICE gets no error numerics back (RFC 2812 3.3.2), though the core may still
    /// refuse it.
    /// </summary>
    private static void OnPrivateMessage(IrcSession session, IrcLine line, IrcOutcome outcome, bool isNotice)
    {
        var command = isNotice ? "NOTICE" : "PRIVMSG";
        if (line.Parameters.Count == 0 || line.Parameter(0).Length == 0)
        {
            if (!isNotice) Numeric(outcome, session, "411", $"No recipient given ({command})");
            return;
        }
        var text = line.Parameter(1);
        if (line.Parameters.Count < 2 || text.Length == 0)
        {
            if (!isNotice) Numeric(outcome, session, "412", "No text to send");
            return;
        }
        foreach (var target in line.Parameter(0).Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!target.StartsWith('#'))
            {
                session.LastPrivateTarget = target;
                outcome.Requests.Add(ClientRequest.NewWhisper(target, text));
                continue;
            }
            var checkedRoom = Rooms.validateRoomName(target);
            if (checkedRoom.IsError || !(session.Rooms.Contains(checkedRoom.ResultValue) || session.RoomsJoining.Contains(checkedRoom.ResultValue)))
            {
                if (!isNotice) Numeric(outcome, session, checkedRoom.IsError ? "403" : "404", target, checkedRoom.IsError ? "No such channel" : "Cannot send to channel (JOIN it first)");
                continue;
            }
            var id = session.NextMessageId();
            if (session.UnacknowledgedPosts.Count < IrcSession.MaxUnacknowledgedPosts) session.UnacknowledgedPosts.Add(id);
            outcome.Requests.Add(ClientRequest.NewSay(checkedRoom.ResultValue, text, id));
        }
    }

    private static void OnNames(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        if (line.Parameters.Count == 0)
        {
            Numeric(outcome, session, "366", "*", "End of NAMES list");
            return;
        }
        foreach (var name in Channels(line.Parameter(0)))
        {
            if (Rooms.validateRoomName(name) is { IsOk: true } room) AskWho(session, outcome, WhoPurpose.Names, room.ResultValue, []);
            else Numeric(outcome, session, "366", name, "End of NAMES list");
        }
    }

    private static void OnWho(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        var mask = line.Parameter(0);
        if (mask.StartsWith('#'))
        {
            if (Rooms.validateRoomName(mask) is { IsOk: true } room) AskWho(session, outcome, WhoPurpose.Who, room.ResultValue, []);
            else Numeric(outcome, session, "315", mask, "End of WHO list");
            return;
        }
        // WHO, WHO 0 and WHO * list everyone; WHO nick lists that user. No other masks.
        var everyone = mask is "" or "0" or "*";
        AskWho(session, outcome, WhoPurpose.WhoUser, null, everyone ? [] : [mask]);
    }

    private static void OnWhois(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        // WHOIS [server] nick: the nick is the last parameter.
        var nick = line.Parameters.Count == 0 ? "" : line.Parameters[^1];
        if (nick.Length == 0)
        {
            Numeric(outcome, session, "431", "No nickname given");
            return;
        }
        AskWho(session, outcome, WhoPurpose.Whois, null, [nick]);
    }

    private static void OnIson(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        var nicks = line.Parameters.SelectMany(word => word.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToArray();
        if (nicks.Length == 0)
        {
            Numeric(outcome, session, "461", "ISON", "Not enough parameters");
            return;
        }
        AskWho(session, outcome, WhoPurpose.Ison, null, nicks);
    }

    private static void OnTopic(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        if (line.Parameters.Count == 0)
        {
            Numeric(outcome, session, "461", "TOPIC", "Not enough parameters");
            return;
        }
        if (ValidRoom(session, line.Parameter(0), outcome) is not { } room) return;
        if (line.Parameters.Count > 1) Numeric(outcome, session, "482", room, "Topics are read-only in FormalChat");
        else Numeric(outcome, session, "331", room, "No topic is set");
    }

    private static void OnMode(IrcSession session, IrcLine line, IrcOutcome outcome)
    {
        // Clients ask for modes after JOIN; FormalChat has none to set, so it says so plainly.
        var target = line.Parameter(0);
        if (!target.StartsWith('#')) Numeric(outcome, session, "221", "+");
        else if (line.Parameter(1) is "b" or "+b") Numeric(outcome, session, "368", target, "End of channel ban list");
        else if (line.Parameters.Count > 1) Numeric(outcome, session, "482", target, "Channel modes are fixed in FormalChat");
        else Numeric(outcome, session, "324", target, "+nt");
    }

    private static void AskWho(IrcSession session, IrcOutcome outcome, WhoPurpose purpose, string? room, IReadOnlyList<string> nicks)
    {
        if (session.PendingWhos.Count >= IrcSession.MaxPendingWhos) session.PendingWhos.RemoveAt(0);
        session.PendingWhos.Add(new PendingWho(purpose, room, nicks));
        outcome.Requests.Add(ClientRequest.NewWho(room is null ? FSharpOption<string>.None : FSharpOption<string>.Some(room)));
    }

    private static IEnumerable<string> Channels(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries);

    private static string? ValidRoom(IrcSession session, string name, IrcOutcome outcome)
    {
        var room = Rooms.validateRoomName(name);
        if (room.IsOk) return room.ResultValue;
        Numeric(outcome, session, "403", name, $"No such channel: {room.ErrorValue}");
        return null;
    }
}
