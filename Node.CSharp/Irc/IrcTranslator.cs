using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FormalChat.Node.Irc;

/// <summary>What one IRC line or one core reply turns into: lines for the IRC client, requests
/// for the core (in order), and whether the gateway should close the connection after the lines.</summary>
public sealed class IrcOutcome
{
    public List<string> Lines { get; } = new();
    public List<ClientRequest> Requests { get; } = new();
    public string? CloseReason { get; set; }
}

/// <summary>
/// The translation between IRC (a subset of RFC 1459/2812, docs/IRC.md) and the core's
/// ClientRequest/ServerReply. No sockets, clocks or threads: a line or a reply and the session
/// in, lines and requests out, so every rule is a unit test. The gateway calls it under the
/// session's lock.
/// </summary>
public static class IrcTranslator
{
    public const string Version = "formalchat-irc-1";

    /// <summary>Room names are '#' and letters, digits, '_' or '-' (Rooms.validateRoomName).</summary>
    public static string ISupport =>
        $"CHANTYPES=# NICKLEN={Chat.maxNickLength} CHANNELLEN=33 CASEMAPPING=ascii PREFIX=() CHANMODES=,,,nt NETWORK=FormalChat";

    public static readonly string[] Motd =
    [
        "FormalChat: an IRC door into a replicated chat cluster.",
        "Everyone is in #lobby; JOIN #any-room to create or enter one.",
        "Rooms are shared with FormalChat's own clients on every node, in the same order.",
        "If this node dies, reconnect to another node's IRC port and rejoin: the last messages of each room are replayed on JOIN.",
    ];

    // -----------------------------------------------------------------------------------------
    // IRC client -> core.

    /// <summary>The last line an IRC client gets before the connection closes (RFC 2812 3.7.4).</summary>
    public static string ClosingLine(IrcSession session, string reason) =>
        $"ERROR :Closing Link: {session.Target} ({(session.QuitMessage is { } quit ? $"Quit: {quit}" : reason)})";

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
            case "PASS": break; // FormalChat has no accounts yet: any password is accepted, and ignored.
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
        outcome.Requests.Add(ClientRequest.NewHello(new HelloRequest(session.Nick, FSharpOption<string>.None, FSharpList<Tuple<string, long>>.Empty)));
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

    // -----------------------------------------------------------------------------------------
    // Core -> IRC client.

    public static IrcOutcome OnReply(IrcSession session, ServerReply reply)
    {
        var outcome = new IrcOutcome();
        switch (reply)
        {
            case ServerReply.Welcome welcome: OnWelcome(session, welcome, outcome); break;
            case ServerReply.Joined joined: OnJoined(session, joined.room, outcome); break;
            case ServerReply.LeftRoom left:
                if (session.Rooms.Remove(left.room)) outcome.Lines.Add($":{session.Prefix} PART {left.room}");
                break;
            case ServerReply.Message message: OnMessage(session, message.Item, outcome); break;
            case ServerReply.Private line: OnPrivate(session, line.Item, outcome); break;
            case ServerReply.RoomsListed listed: OnRoomsListed(session, listed.Item, outcome); break;
            case ServerReply.WhoListed who: OnWhoListed(session, who.room, who.users, outcome); break;
            case ServerReply.Redirected redirected:
                // An IRC client cannot follow a redirect: it is told where to go, then closed.
                ServerNotice(outcome, session, $"This node is shedding load ({redirected.reason}): node {redirected.node} (clients on {redirected.client.Host}:{redirected.client.Port}) has room for you; reconnect to its IRC port");
                break;
            case ServerReply.Error error: OnError(session, error.code, error.reason, outcome); break;
            case ServerReply.Notice notice: ServerNotice(outcome, session, notice.text); break;
            default: break; // StatusReported: IRC never asks for it.
        }
        return outcome;
    }

    private static void OnWelcome(IrcSession session, ServerReply.Welcome welcome, IrcOutcome outcome)
    {
        session.Registered = true;
        session.HelloPending = null;
        session.Nick = welcome.nick;
        Numeric(outcome, session, "001", $"Welcome to the FormalChat IRC gateway {session.Prefix}");
        Numeric(outcome, session, "002", $"Your host is {session.ServerName}, running version {Version}");
        var leader = welcome.leader is { } known ? $"node {known.Value}" : "not elected yet";
        Numeric(outcome, session, "003", $"This server is node {welcome.node} of a FormalChat cluster; its leader is {leader}");
        Numeric(outcome, session, "004", session.ServerName, Version, "i", "nt");
        outcome.Lines.Add($":{session.ServerName} 005 {session.Target} {ISupport} :are supported by this server");
        AddMotd(session, outcome);
        // The JOIN #lobby follows with the core's Joined reply: every named client is in #lobby.
    }

    private static void AddMotd(IrcSession session, IrcOutcome outcome)
    {
        Numeric(outcome, session, "375", $"- {session.ServerName} Message of the day -");
        foreach (var line in Motd) Numeric(outcome, session, "372", $"- {line}");
        Numeric(outcome, session, "376", "End of MOTD command");
    }

    private static void OnJoined(IrcSession session, string room, IrcOutcome outcome)
    {
        session.RoomsJoining.Remove(room);
        if (!session.Rooms.Add(room)) return;
        outcome.Lines.Add($":{session.Prefix} JOIN {room}");
        Numeric(outcome, session, "331", room, "No topic is set");
        // The NAMES that clients wait for after a JOIN: the core knows the members.
        AskWho(session, outcome, WhoPurpose.Names, room, []);
    }

    private static void OnMessage(IrcSession session, RoomMessage message, IrcOutcome outcome)
    {
        // The room's copy of our own post is the core's acknowledgement; IRC clients show their
        // own line when they send it, so it is not shown twice.
        if (message.From == session.Nick && session.UnacknowledgedPosts.Remove(message.ClientMessageId)) return;
        AddText(outcome, UserPrefix(message.From, message.FromNode), "PRIVMSG", message.Room, message.Text);
    }

    private static void OnPrivate(IrcSession session, PrivateLine line, IrcOutcome outcome)
    {
        // The core echoes a private line to its sender as a receipt; IRC does not.
        if (line.From == session.Nick && line.To != session.Nick) return;
        AddText(outcome, UserPrefix(line.From, line.FromNode), "PRIVMSG", session.Target, line.Text);
    }

    private static void OnRoomsListed(IrcSession session, FSharpList<RoomSummary> rooms, IrcOutcome outcome)
    {
        Numeric(outcome, session, "321", "Channel", "Users  Name");
        foreach (var room in rooms)
        {
            var owner = room.Owner is { } node ? $"owned by node {node.Value}" : "not placed yet";
            var backup = room.Backup is { } copy ? $", backup on node {copy.Value}" : "";
            Numeric(outcome, session, "322", room.Room, room.Members.ToString(), $"{owner}{backup}");
        }
        Numeric(outcome, session, "323", "End of LIST");
    }

    private static void OnWhoListed(IrcSession session, FSharpOption<string>? room, FSharpList<UserEntry> users, IrcOutcome outcome)
    {
        var key = room?.Value;
        var index = session.PendingWhos.FindIndex(pending => pending.Room == key);
        if (index < 0) return; // Nobody asked: nothing to say.
        var pending = session.PendingWhos[index];
        session.PendingWhos.RemoveAt(index);
        switch (pending.Purpose)
        {
            case WhoPurpose.Names: AddNames(session, key ?? "*", users, outcome); break;
            case WhoPurpose.Who: AddWho(session, key ?? "*", key ?? "*", users, outcome); break;
            case WhoPurpose.WhoUser:
                var mask = pending.Nicks.Count == 0 ? "*" : pending.Nicks[0];
                AddWho(session, mask, "*", users.Where(user => pending.Nicks.Count == 0 || user.Nick == mask), outcome);
                break;
            case WhoPurpose.Ison:
                var online = users.Select(user => user.Nick).ToHashSet(StringComparer.Ordinal);
                Numeric(outcome, session, "303", string.Join(' ', pending.Nicks.Where(online.Contains)));
                break;
            case WhoPurpose.Whois: AddWhois(session, pending.Nicks[0], users, outcome); break;
        }
    }

    private static void AddNames(IrcSession session, string room, IEnumerable<UserEntry> users, IrcOutcome outcome)
    {
        var head = $":{session.ServerName} 353 {session.Target} = {room} :";
        var line = new List<string>();
        var length = head.Length;
        foreach (var nick in users.Select(user => user.Nick))
        {
            if (line.Count > 0 && length + 1 + nick.Length > IrcLine.MaxBytes - 2)
            {
                outcome.Lines.Add(head + string.Join(' ', line));
                line.Clear();
                length = head.Length;
            }
            line.Add(nick);
            length += nick.Length + 1;
        }
        if (line.Count > 0) outcome.Lines.Add(head + string.Join(' ', line));
        Numeric(outcome, session, "366", room, "End of NAMES list");
    }

    private static void AddWho(IrcSession session, string mask, string channel, IEnumerable<UserEntry> users, IrcOutcome outcome)
    {
        foreach (var user in users)
        {
            var host = HostOf(user.Node);
            Numeric(outcome, session, "352", channel, user.Nick, host, host, user.Nick, "H", $"0 {user.Nick}");
        }
        Numeric(outcome, session, "315", mask, "End of WHO list");
    }

    private static void AddWhois(IrcSession session, string nick, IEnumerable<UserEntry> users, IrcOutcome outcome)
    {
        var user = users.FirstOrDefault(user => user.Nick == nick);
        if (user is null)
        {
            Numeric(outcome, session, "401", nick, "No such nick/channel");
        }
        else
        {
            var host = HostOf(user.Node);
            Numeric(outcome, session, "311", user.Nick, user.Nick, host, "*", user.Nick);
            Numeric(outcome, session, "312", user.Nick, host, $"node {user.Node} of the FormalChat cluster");
            Numeric(outcome, session, "319", user.Nick, string.Join(' ', user.Rooms));
        }
        Numeric(outcome, session, "318", nick, "End of WHOIS list");
    }

    /// <summary>The core's refusals in IRC's words. A refusal of the hello leaves the connection
    /// unregistered: the client may try another NICK, as on any IRC server.</summary>
    private static void OnError(IrcSession session, ErrorCode code, string reason, IrcOutcome outcome)
    {
        if (code.IsNickTaken || code.IsNickInvalid)
        {
            var refused = session.HelloPending ?? session.Nick ?? "*";
            session.HelloPending = null;
            Numeric(outcome, session, code.IsNickTaken ? "433" : "432", refused, code.IsNickTaken ? $"Nickname is already in use ({reason})" : $"Erroneous nickname ({reason})");
            // A NICK that came while the core was deciding gets its own hello now.
            if (!session.Registered && session.Nick != refused) SayHelloWhenReady(session, outcome);
            else if (!session.Registered) session.Nick = null;
            return;
        }
        if (code.IsHelloFirst) Numeric(outcome, session, "451", "You have not registered");
        else if (code.IsAlreadyHello) Numeric(outcome, session, "462", "You may not reregister");
        else if (code.IsNoSuchUser) Numeric(outcome, session, "401", session.LastPrivateTarget ?? "*", "No such nick/channel");
        else if (code.IsRoomInvalid) Numeric(outcome, session, "403", "*", reason);
        else if (code.IsNotInRoom) Numeric(outcome, session, "442", "*", reason);
        else if (code.IsTextInvalid) Numeric(outcome, session, "412", reason);
        else ServerNotice(outcome, session, reason);
    }

    // -----------------------------------------------------------------------------------------
    // Words.

    private static string HostOf(int node) => $"node{node}.formalchat";

    private static string UserPrefix(string nick, int node) => $"{nick}!{nick}@{HostOf(node)}";

    private static void Numeric(IrcOutcome outcome, IrcSession session, string numeric, params string[] parameters)
    {
        outcome.Lines.Add(new IrcLine(session.ServerName, numeric, [session.Target, .. parameters]).ToString());
    }

    private static void ServerNotice(IrcOutcome outcome, IrcSession session, string text) =>
        AddText(outcome, session.ServerName, "NOTICE", session.Target, text);

    /// <summary>A PRIVMSG or NOTICE, in as many lines as its text needs to stay within 512 bytes.</summary>
    private static void AddText(IrcOutcome outcome, string prefix, string command, string target, string text)
    {
        var head = $":{prefix} {command} {target} :";
        foreach (var piece in IrcLine.SplitToFit(head, text)) outcome.Lines.Add(head + piece);
    }
}
