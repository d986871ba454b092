/// Per-room order and history. The owner gives each message the room's next sequence number;
/// every node keeps the room's recent history, so it can replay what a reconnecting client
/// missed, recognise a retried message, and continue the sequence if it becomes the owner.
module FormalChat.Protocol.Rooms

let lobby: RoomName = "#lobby"

/// Messages kept per room: enough to resume a client that was away for a failover.
let historyCapacity = 2000

type RoomHistory =
    { LastSeq: int64
      /// Newest first, at most historyCapacity.
      Recent: RoomMessage list }

let emptyHistory = { LastSeq = 0L; Recent = [] }

let validateRoomName (room: string) : Result<RoomName, string> =
    let allowed (c: char) = System.Char.IsAsciiLetterOrDigit c || c = '_' || c = '-'
    if System.String.IsNullOrEmpty room || room.[0] <> '#' then Result.Error "a room name starts with '#', e.g. #general"
    elif room.Length < 2 || room.Length > 33 then Result.Error "a room name has 1 to 32 characters after '#'"
    elif not (Seq.forall allowed (room.Substring 1)) then Result.Error "a room name uses only letters, digits, '_' and '-'"
    else Ok(room.ToLowerInvariant())

/// Adds a sequenced message; None when it is not newer than what this node already has.
let record (message: RoomMessage) (history: RoomHistory) : RoomHistory option =
    if message.Seq <= history.LastSeq then
        None
    else
        let recent = message :: history.Recent
        let recent = if recent.Length > historyCapacity then List.truncate historyCapacity recent else recent
        Some { LastSeq = message.Seq; Recent = recent }

/// Oldest first: the messages after `seq`.
let since (seq: int64) (history: RoomHistory) : RoomMessage list =
    history.Recent |> List.takeWhile (fun message -> message.Seq > seq) |> List.rev

/// Oldest first: the last `count` messages.
let last (count: int) (history: RoomHistory) : RoomMessage list =
    history.Recent |> List.truncate count |> List.rev

/// A post the owner has already sequenced (a client's retry): the message it became.
let alreadySequenced (post: RoomPost) (history: RoomHistory) : RoomMessage option =
    if post.ClientMessageId = 0L then
        None
    else
        history.Recent |> List.tryFind (fun message -> message.ClientMessageId = post.ClientMessageId && message.From = post.From)

/// The owner's step: the next sequence number continues from the newest the node knows of.
let sequence (post: RoomPost) (placement: Assignment) (history: RoomHistory) : RoomMessage =
    { Room = post.Room
      Seq = (max history.LastSeq placement.LastSeq) + 1L
      From = post.From
      FromNode = post.FromNode
      Text = post.Text
      ClientMessageId = post.ClientMessageId }
