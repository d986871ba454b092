using FormalChat.Protocol;
using Microsoft.FSharp.Core;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace FormalChat.Client;

/// One JSON object per line on stdout for every event. The field names are a promise to
/// scripts: JSON-EVENTS.md lists them, and they change only with that file.
public sealed class JsonPrinter(IConsoleSink sink) : IEventPrinter
{
    public void Reply(ServerReply reply)
    {
        switch (reply)
        {
            case ServerReply.Welcome welcome:
                Write(new JObject { ["event"] = "welcome", ["nick"] = welcome.nick.Value, ["node"] = welcome.node, ["leader"] = NodeOrNull(welcome.leader) });
                break;
            case ServerReply.Message { Item: var line }:
                Write(new JObject
                {
                    ["event"] = "message", ["room"] = line.Room.Value, ["seq"] = line.Seq, ["from"] = line.From.Value,
                    ["node"] = line.FromNode, ["text"] = line.Text, ["id"] = line.ClientMessageId,
                });
                break;
            case ServerReply.Private { Item: var line }:
                Write(new JObject { ["event"] = "private", ["from"] = line.From.Value, ["to"] = line.To.Value, ["node"] = line.FromNode, ["text"] = line.Text });
                break;
            case ServerReply.Joined joined:
                Write(new JObject { ["event"] = "joined", ["room"] = joined.room.Value, ["owner"] = NodeOrNull(joined.owner), ["members"] = joined.members });
                break;
            case ServerReply.LeftRoom left:
                Write(new JObject { ["event"] = "left", ["room"] = left.room.Value });
                break;
            case ServerReply.RoomsListed { Item: var rooms }:
                var list = new JArray(rooms.Select(room => new JObject { ["room"] = room.Room.Value, ["owner"] = NodeOrNull(room.Owner), ["backup"] = NodeOrNull(room.Backup), ["members"] = room.Members }));
                Write(new JObject { ["event"] = "rooms", ["rooms"] = list });
                break;
            case ServerReply.WhoListed who:
                Write(WhoObject(who.room?.Value.Value, who.users));
                break;
            case ServerReply.StatusReported { Item: var status }:
                Write(StatusObject(status));
                break;
            case ServerReply.Redirected redirected:
                Write(new JObject { ["event"] = "redirect", ["node"] = redirected.node, ["client"] = redirected.client.ToString(), ["reason"] = redirected.reason });
                break;
            case ServerReply.ErrorReply error:
                ClientError(Wire.errorCodeName(error.code), error.reason);
                break;
            case ServerReply.Notice notice:
                System(notice.text);
                break;
        }
    }

    public void Acknowledged(RoomMessage message) =>
        Write(new JObject { ["event"] = "ack", ["room"] = message.Room.Value, ["seq"] = message.Seq, ["id"] = message.ClientMessageId });

    public void Reconnected(ReconnectReport report)
    {
        var resumed = new JObject();
        foreach (var (room, seq) in report.Resumed) resumed[room.Value] = seq;
        Write(new JObject
        {
            ["event"] = "reconnected", ["node"] = report.Node, ["previous"] = report.Previous,
            ["redirected"] = report.Redirected, ["reason"] = report.Reason, ["resumed"] = resumed,
        });
    }

    /// Local and visible in the prompt only; scripts name the room in every /say anyway.
    public void RoomSwitched(string room)
    {
    }

    public void System(string text) => Write(new JObject { ["event"] = "system", ["text"] = text });

    public void ClientError(string code, string reason) =>
        Write(new JObject { ["event"] = "error", ["code"] = code, ["reason"] = reason });

    public void Disconnected(string reason, bool expected) =>
        Write(new JObject { ["event"] = "disconnected", ["reason"] = reason });

    /// Help is for people; it goes to stderr so stdout stays one JSON object per line.
    public void Help(string text) => sink.WriteLine(text.TrimEnd(), toStandardError: true);

    private void Write(JObject value) => sink.WriteLine(value.ToString(Formatting.None));

    private static JToken NodeOrNull(FSharpOption<int>? node) =>
        node.ToNullable() is { } id ? new JValue(id) : JValue.CreateNull();

    private static JObject WhoObject(string? room, IEnumerable<UserEntry> users)
    {
        var list = new JArray(users.Select(user => new JObject { ["nick"] = user.Nick.Value, ["node"] = user.Node, ["rooms"] = new JArray(user.Rooms.Select(room => room.Value)) }));
        var who = new JObject { ["event"] = "who" };
        if (room is not null) who["room"] = room;
        who["users"] = list;
        return who;
    }

    private static JObject StatusObject(ClusterStatus status)
    {
        var nodes = new JArray(status.Nodes.Select(node => new JObject
        {
            ["id"] = node.Id,
            ["client"] = node.ClientEndpoint.ToString(),
            ["leader"] = node.IsLeader,
            ["self"] = node.IsSelf,
            ["clients"] = node.Load.Clients,
            ["rooms"] = node.Load.Rooms,
            ["messagesPerSecond"] = node.Load.MessagesPerSecond,
        }));
        return new JObject
        {
            ["event"] = "status",
            ["self"] = status.Self,
            ["leader"] = NodeOrNull(status.Leader),
            ["epoch"] = status.Epoch,
            ["nodes"] = nodes,
            ["unreplicated"] = new JArray(status.Unreplicated.Select(room => room.Value)),
        };
    }
}
