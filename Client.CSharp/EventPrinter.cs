using FormalChat.Protocol;

namespace FormalChat.Client;

/// Renders what happens in a chat session: for a person (HumanPrinter) or for scripts, one
/// JSON object per line (JsonPrinter, field names in JSON-EVENTS.md).
public interface IEventPrinter
{
    /// Any frame the node sent, welcome included.
    void Reply(ServerReply reply);

    /// A problem found by the client itself (bad command, malformed frame); code as in JSON-EVENTS.md.
    void ClientError(string code, string reason);

    /// The session is over. `expected` is true after /quit or the end of scripted input.
    void Disconnected(string reason, bool expected);

    void Help(string text);
}
