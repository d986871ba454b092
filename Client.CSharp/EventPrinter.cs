using FormalChat.Protocol;

namespace FormalChat.Client;

/// Renders what happens in a chat session: for a person (HumanPrinter) or for scripts, one
/// JSON object per line (JsonPrinter, field names in JSON-EVENTS.md).
public interface IEventPrinter
{
    /// A frame the node sent that the user should see (a room message only the first time).
    void Reply(ServerReply reply);

    /// One of our own messages came back sequenced with its client message id: it is acknowledged.
    void Acknowledged(RoomMessage message);

    /// The client carried on on another node after a failure or a redirect.
    void Reconnected(ReconnectReport report);

    /// The current room changed (`/room`): plain lines go there now.
    void RoomSwitched(string room);

    /// Something the client itself has to say (which node discovery chose, and why).
    void System(string text);

    /// A problem found by the client itself (bad command, malformed frame); code as in JSON-EVENTS.md.
    void ClientError(string code, string reason);

    /// The session is over. `expected` is true after /quit or the end of scripted input.
    void Disconnected(string reason, bool expected);

    void Help(string text);
}
