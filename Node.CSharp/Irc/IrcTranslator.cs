using FormalChat.Protocol;

namespace FormalChat.Node.Irc;

/// <summary>What one IRC line or one core reply turns into: lines for the IRC client, requests
/// for the core, in order.</summary>
public sealed class IrcOutcome
{
    public List<string> Lines { get; } = new();
    public List<ClientRequest> Requests { get; } = new();
}

/// <summary>
/// The translation between IRC (a subset of RFC 1459/2812, docs/IRC.md) and the core's
/// ClientRequest/ServerReply. No sockets, clocks or threads: a line or a reply and the session
/// in, lines and requests out, so every rule is a unit test. The gateway calls it under the
/// session's lock. IrcTranslator.Commands.cs reads IRC lines, IrcTranslator.Replies.cs words
/// the core's replies; the shared wording is here.
/// </summary>
public static partial class IrcTranslator
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

    /// <summary>The last line an IRC client gets before the connection closes (RFC 2812 3.7.4).</summary>
    public static string ClosingLine(IrcSession session, string reason) =>
        $"ERROR :Closing Link: {session.Target} ({(session.QuitMessage is { } quit ? $"Quit: {quit}" : session.Refusal ?? reason)})";

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
