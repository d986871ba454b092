using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FormalChat.Node.Irc;

/// <summary>Core -> IRC client: each ServerReply as the lines and numerics IRC clients expect.</summary>
public static partial class IrcTranslator
{
    public static IrcOutcome OnReply(IrcSession session, ServerReply reply)
    {
        var outcome = new IrcOutcome();
        switch (reply)
        {
            case ServerReply.Welcome welcome: OnWelcome(session, welcome, outcome); break;
            case ServerReply.Joined joined: OnJoined(session, joined.room.Value, outcome); break;
            case ServerReply.LeftRoom left:
                if (session.Rooms.Remove(left.room.Value)) outcome.Lines.Add($":{session.Prefix} PART {left.room}");
                break;
            case ServerReply.Message message: OnMessage(session, message.Item, outcome); break;
            case ServerReply.Private line: OnPrivate(session, line.Item, outcome); break;
            case ServerReply.RoomsListed listed: OnRoomsListed(session, listed.Item, outcome); break;
            case ServerReply.WhoListed who: OnWhoListed(session, who.room, who.users, outcome); break;
            case ServerReply.Redirected redirected:
                // An IRC client cannot follow a redirect: it is told where to go, then closed.
                ServerNotice(outcome, session, $"This node is shedding load ({redirected.reason}): node {redirected.node} (clients on {redirected.client.Host}:{redirected.client.Port}) has room for you; reconnect to its IRC port");
                break;
            case ServerReply.ErrorReply error: OnError(session, error.code, error.reason, outcome); break;
            case ServerReply.Notice notice: ServerNotice(outcome, session, notice.text); break;
            default: break; // StatusReported: IRC never asks for it.
        }
        return outcome;
    }

    private static void OnWelcome(IrcSession session, ServerReply.Welcome welcome, IrcOutcome outcome)
    {
        session.Registered = true;
        session.HelloPending = null;
        session.Nick = welcome.nick.Value;
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
        if (message.From.Value == session.Nick && session.UnacknowledgedPosts.Remove(message.ClientMessageId)) return;
        AddText(outcome, UserPrefix(message.From.Value, message.FromNode), "PRIVMSG", message.Room.Value, message.Text);
    }

    private static void OnPrivate(IrcSession session, PrivateLine line, IrcOutcome outcome)
    {
        // The core echoes a private line to its sender as a receipt; IRC does not.
        if (line.From.Value == session.Nick && line.To.Value != session.Nick) return;
        AddText(outcome, UserPrefix(line.From.Value, line.FromNode), "PRIVMSG", session.Target, line.Text);
    }

    private static void OnRoomsListed(IrcSession session, FSharpList<RoomSummary> rooms, IrcOutcome outcome)
    {
        Numeric(outcome, session, "321", "Channel", "Users  Name");
        foreach (var room in rooms)
        {
            var owner = room.Owner is { } node ? $"owned by node {node.Value}" : "not placed yet";
            var backup = room.Backup is { } copy ? $", backup on node {copy.Value}" : "";
            Numeric(outcome, session, "322", room.Room.Value, room.Members.ToString(), $"{owner}{backup}");
        }
        Numeric(outcome, session, "323", "End of LIST");
    }

    private static void OnWhoListed(IrcSession session, FSharpOption<RoomName>? room, FSharpList<UserEntry> users, IrcOutcome outcome)
    {
        var key = room?.Value.Value;
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
                AddWho(session, mask, "*", users.Where(user => pending.Nicks.Count == 0 || user.Nick.Value == mask), outcome);
                break;
            case WhoPurpose.Ison:
                var online = users.Select(user => user.Nick.Value).ToHashSet(StringComparer.Ordinal);
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
        foreach (var nick in users.Select(user => user.Nick.Value))
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
            Numeric(outcome, session, "352", channel, user.Nick.Value, host, host, user.Nick.Value, "H", $"0 {user.Nick.Value}");
        }
        Numeric(outcome, session, "315", mask, "End of WHO list");
    }

    private static void AddWhois(IrcSession session, string nick, IEnumerable<UserEntry> users, IrcOutcome outcome)
    {
        var user = users.FirstOrDefault(user => user.Nick.Value == nick);
        if (user is null)
        {
            Numeric(outcome, session, "401", nick, "No such nick/channel");
        }
        else
        {
            var host = HostOf(user.Node);
            Numeric(outcome, session, "311", user.Nick.Value, user.Nick.Value, host, "*", user.Nick.Value);
            Numeric(outcome, session, "312", user.Nick.Value, host, $"node {user.Node} of the FormalChat cluster");
            Numeric(outcome, session, "319", user.Nick.Value, string.Join(' ', user.Rooms));
        }
        Numeric(outcome, session, "318", nick, "End of WHOIS list");
    }

    /// <summary>The core's refusals in IRC's words. A nick in use or invalid leaves the connection
    /// unregistered: the client may try another NICK, as on any IRC server. A registered nick's
    /// password missing or wrong is 464, and the core closes the connection (the ERROR line says
    /// "Password incorrect"), as IRC servers do.</summary>
    private static void OnError(IrcSession session, ErrorCode code, string reason, IrcOutcome outcome)
    {
        if (code.IsPasswordRequired || code.IsPasswordWrong)
        {
            session.HelloPending = null;
            session.Refusal = "Password incorrect";
            Numeric(outcome, session, "464", code.IsPasswordRequired ? $"Password incorrect: {reason} (send PASS before NICK and USER)" : "Password incorrect");
            return;
        }
        if (code.IsNickTaken || code.IsNickInvalid)
        {
            var refused = session.HelloPending ?? session.Nick ?? "*";
            session.HelloPending = null;
            Numeric(outcome, session, code.IsNickInvalid ? "432" : "433", refused, code.IsNickTaken ? $"Nickname is already in use ({reason})" : $"Erroneous nickname ({reason})");
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
}
