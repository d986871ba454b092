using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FormalChat.Client;

/// A message the user sent that the client has not yet seen come back sequenced.
public sealed record PendingSay(long Id, string Room, string Text)
{
    public ClientRequest Request => ClientRequest.NewSay(Room, Text, Id);
}

/// What one sequenced message means to the client: show it or not (a replay of something
/// already shown is not), and whether it is the acknowledgement of one of our own sends.
public sealed record Delivery(bool Show, bool Acknowledged);

/// Everything the client must carry across a failover, and nothing else: the session token,
/// the rooms it is in, the last sequence number it showed per room, and its unconfirmed sends.
/// No I/O and no locking: the owner (ChatClient) serialises the calls.
public sealed class ResumeState
{
    private readonly Dictionary<string, long> lastSeqShown = new(StringComparer.Ordinal);
    private readonly SortedSet<string> joined = new(StringComparer.Ordinal) { Rooms.lobby };
    /// Joins sent and not yet answered. The node handles requests in order, so a line for such a
    /// room, sent after the join, is accepted: scripts need not wait for `joined`.
    private readonly SortedSet<string> joining = new(StringComparer.Ordinal);
    private readonly SortedDictionary<long, PendingSay> unconfirmed = new();
    private long nextMessageId;

    /// firstMessageId: ids must not repeat what an earlier run with this nick sent, because the
    /// room owner recognises a retry by (nick, id) in the room's recent history.
    public ResumeState(string nick, long firstMessageId)
    {
        if (firstMessageId < 1) throw new ArgumentOutOfRangeException(nameof(firstMessageId), "0 means 'no id' on the wire");
        Nick = nick;
        nextMessageId = firstMessageId;
    }

    public string Nick { get; }

    /// The token of the last welcome; null before the first one.
    public string? SessionToken { get; private set; }

    /// Where a plain line goes; always a joined room.
    public string CurrentRoom { get; private set; } = Rooms.lobby;

    public IReadOnlyCollection<string> JoinedRooms => joined;

    public IReadOnlyCollection<PendingSay> Unconfirmed => unconfirmed.Values;

    public bool IsJoined(string room) => joined.Contains(room);

    /// Joined, or a join is on its way: lines for the room may be sent.
    public bool CanSpeakIn(string room) => joined.Contains(room) || joining.Contains(room);

    public long LastSeqShown(string room) => lastSeqShown.GetValueOrDefault(room);

    public void Welcomed(string sessionToken) => SessionToken = sessionToken;

    /// The user asked to join: the room becomes the current one at once, so the lines typed
    /// (or piped) after `/join` go there whenever the node's answer arrives.
    public void JoinAsked(string room)
    {
        if (!joined.Contains(room)) joining.Add(room);
        CurrentRoom = room;
    }

    public void RoomJoined(string room)
    {
        joining.Remove(room);
        joined.Add(room);
    }

    /// Leaving forgets the room's position (joining again shows its recent history afresh) and
    /// its unconfirmed lines: a room we are not in sends us nothing that could confirm them.
    public void RoomLeft(string room)
    {
        if (room == Rooms.lobby) return;
        joined.Remove(room);
        joining.Remove(room);
        lastSeqShown.Remove(room);
        foreach (var pending in unconfirmed.Values.Where(pending => pending.Room == room).ToList()) unconfirmed.Remove(pending.Id);
        if (CurrentRoom == room) CurrentRoom = Rooms.lobby;
    }

    /// False when the room is neither joined nor being joined: the current room is always one
    /// the user is in.
    public bool SwitchTo(string room)
    {
        if (!CanSpeakIn(room)) return false;
        CurrentRoom = room;
        return true;
    }

    /// Records a send and gives it the next client message id.
    public PendingSay Sent(string room, string text)
    {
        var pending = new PendingSay(nextMessageId++, room, text);
        unconfirmed.Add(pending.Id, pending);
        return pending;
    }

    /// A sequenced message arrived. Shown only when newer than the last one shown in its room,
    /// so a replay after a resume never shows a message twice; our own message with its id is
    /// the acknowledgement of that send.
    public Delivery Received(RoomMessage message)
    {
        var show = message.Seq > LastSeqShown(message.Room);
        if (show) lastSeqShown[message.Room] = message.Seq;
        var acknowledged = message.From == Nick && message.ClientMessageId != 0 && unconfirmed.Remove(message.ClientMessageId);
        return new Delivery(show, acknowledged);
    }

    /// Every joined room with the last sequence number shown there, #lobby included; a room
    /// whose join was lost with the connection resumes from its beginning.
    public IReadOnlyList<(string Room, long Seq)> ResumePoints() =>
        joined.Union(joining).Order(StringComparer.Ordinal).Select(room => (room, LastSeqShown(room))).ToList();

    /// The hello of a (re)connection: a first hello has no session and resumes nothing, so the
    /// node shows each room's recent history; later ones carry the token and every position.
    public HelloRequest Hello()
    {
        if (SessionToken is null) return new HelloRequest(Nick, FSharpOption<string>.None, FSharpList<Tuple<string, long>>.Empty);
        var resume = ListModule.OfSeq(ResumePoints().Select(point => Tuple.Create(point.Room, point.Seq)));
        return new HelloRequest(Nick, FSharpOption<string>.Some(SessionToken), resume);
    }
}
