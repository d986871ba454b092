using System.Text;
using FormalChat.Protocol;

namespace FormalChat.Client;

/// Chat for a person: one line per message (`[#room] alice: text`), tables for /rooms and
/// /status, colours when allowed.
public sealed class HumanPrinter(IConsoleSink sink, Palette palette, string ownNick) : IEventPrinter
{
    public void Reply(ServerReply reply)
    {
        switch (reply)
        {
            case ServerReply.Welcome welcome:
                var leader = welcome.leader.ToNullable() is { } id ? $"node {id}" : "not elected yet";
                Write(palette.System($"* connected to node {welcome.node} as {welcome.nick.Value}; leader: {leader}. /help lists the commands."));
                break;
            case ServerReply.Message { Item: var line }:
                var from = line.From.Value == ownNick ? palette.Own(line.From.Value) : line.From.Value;
                Write($"{palette.Dim($"[{line.Room}]")} {from}: {line.Text}");
                break;
            case ServerReply.Private { Item: var line }:
                var header = line.From.Value == ownNick ? $"you -> {line.To.Value} (private)" : $"{line.From.Value} -> you (private)";
                Write($"{palette.Dim($"[{line.FromNode}]")} {palette.Private(header)}: {line.Text}");
                break;
            case ServerReply.Joined joined:
                var owner = joined.owner.ToNullable() is { } node ? $"owned by node {node}" : "not placed yet";
                Write(palette.System($"* you are in {joined.room} ({Members(joined.members)}, {owner})"));
                break;
            case ServerReply.LeftRoom left:
                Write(palette.System($"* you left {left.room}"));
                break;
            case ServerReply.RoomsListed { Item: var rooms }:
                Write(RoomsTable(rooms));
                break;
            case ServerReply.WhoListed who:
                Write(WhoText(who.room?.Value.Value, who.users));
                break;
            case ServerReply.StatusReported status:
                Write(StatusTable(status.Item));
                break;
            case ServerReply.Redirected:
                // Told in one line once the client has moved (Reconnected).
                break;
            case ServerReply.ErrorReply error:
                Write(palette.Error($"error ({Wire.errorCodeName(error.code)}): {error.reason}"));
                break;
            case ServerReply.Notice notice:
                Write(palette.System($"* {notice.text}"));
                break;
        }
    }

    public void Acknowledged(RoomMessage message)
    {
        // The message itself, shown in its place in the room, is the acknowledgement.
    }

    public void Reconnected(ReconnectReport report) => Write(palette.System($"* {report.Describe()}"));

    public void RoomSwitched(string room) => Write(palette.System($"* talking in {room}"));

    public void System(string text) => Write(palette.System($"* {text}"));

    public void ClientError(string code, string reason) => Write(palette.Error($"error: {reason}"));

    public void Disconnected(string reason, bool expected)
    {
        if (!expected) sink.WriteLine(palette.Error($"disconnected: {reason}"), toStandardError: true);
    }

    public void Help(string text) => Write(text.TrimEnd());

    private void Write(string text) => sink.WriteLine(text);

    private static string Members(int count) => count == 1 ? "1 member" : $"{count} members";

    private static string WhoText(string? room, IEnumerable<UserEntry> users)
    {
        var sorted = users.OrderBy(user => user.Nick.Value, StringComparer.Ordinal).ToList();
        var text = new StringBuilder(room is null ? $"{sorted.Count} online:" : $"{sorted.Count} in {room}:");
        foreach (var user in sorted) text.Append($"\n  {user.Nick.Value,-20} node {user.Node,-3} {string.Join(" ", user.Rooms)}");
        return text.ToString();
    }

    private static string RoomsTable(IEnumerable<RoomSummary> rooms)
    {
        var sorted = rooms.OrderBy(room => room.Room.Value, StringComparer.Ordinal).ToList();
        var text = new StringBuilder($"{sorted.Count} room(s):\n  {"room",-34}  {"members",7}  {"owner",-7}  backup");
        foreach (var room in sorted)
        {
            var owner = room.Owner.ToNullable() is { } node ? $"node {node}" : "-";
            var backup = room.Backup.ToNullable() is { } copy ? $"node {copy}" : "none";
            text.Append($"\n  {room.Room,-34}  {room.Members,7}  {owner,-7}  {backup}");
        }
        return text.ToString();
    }

    private static string StatusTable(ClusterStatus status)
    {
        var leader = status.Leader.ToNullable() is { } id ? $"node {id}" : "none";
        var text = new StringBuilder($"cluster: leader {leader}, epoch {status.Epoch}, you are on node {status.Self}\n");
        text.Append($"  {"node",4}  {"client",-21}  {"role",-7}  {"clients",7}  {"rooms",5}  {"msgs/s",6}");
        foreach (var node in status.Nodes.OrderBy(node => node.Id))
        {
            var role = node.IsLeader ? "leader" : "";
            var self = node.IsSelf ? " *" : "";
            text.Append($"\n  {node.Id,4}  {node.ClientEndpoint.ToString(),-21}  {role,-7}  ");
            text.Append($"{node.Load.Clients,7}  {node.Load.Rooms,5}  {node.Load.MessagesPerSecond,6}{self}");
        }
        text.Append("\n  (* = the node you are connected to)");
        if (!status.Unreplicated.IsEmpty)
        {
            // The guarantee is one crash without loss; say plainly where it does not hold right now.
            text.Append($"\n  without an up-to-date backup: {string.Join(", ", status.Unreplicated)} " +
                        "(still serving; a crash of the owner now can lose their latest messages)");
        }
        return text.ToString();
    }
}
