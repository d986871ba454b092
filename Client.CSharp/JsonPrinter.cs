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
                Write(new JObject { ["event"] = "welcome", ["nick"] = welcome.nick, ["node"] = welcome.node, ["leader"] = NodeOrNull(welcome.leader) });
                break;
            case ServerReply.Message { Item: var line }:
                Write(new JObject { ["event"] = "message", ["from"] = line.From, ["node"] = line.FromNode, ["text"] = line.Text });
                break;
            case ServerReply.Private { Item: var line }:
                Write(new JObject { ["event"] = "private", ["from"] = line.From, ["to"] = line.To, ["node"] = line.FromNode, ["text"] = line.Text });
                break;
            case ServerReply.WhoListed who:
                var users = new JArray(who.Item.Select(user => new JObject { ["nick"] = user.Nick, ["node"] = user.Node }));
                Write(new JObject { ["event"] = "who", ["users"] = users });
                break;
            case ServerReply.StatusReported { Item: var status }:
                Write(StatusObject(status));
                break;
            case ServerReply.Error error:
                ClientError(Wire.errorCodeName(error.code), error.reason);
                break;
            case ServerReply.Notice notice:
                Write(new JObject { ["event"] = "system", ["text"] = notice.text });
                break;
        }
    }

    public void ClientError(string code, string reason) =>
        Write(new JObject { ["event"] = "error", ["code"] = code, ["reason"] = reason });

    public void Disconnected(string reason, bool expected) =>
        Write(new JObject { ["event"] = "disconnected", ["reason"] = reason });

    /// Help is for people; it goes to stderr so stdout stays one JSON object per line.
    public void Help(string text) => sink.WriteLine(text.TrimEnd(), toStandardError: true);

    private void Write(JObject value) => sink.WriteLine(value.ToString(Formatting.None));

    private static JToken NodeOrNull(FSharpOption<int>? node) =>
        node.ToNullable() is { } id ? new JValue(id) : JValue.CreateNull();

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
        };
    }
}
