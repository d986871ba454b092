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

/// A history of these messages (oldest first): a log read back from disk, or a state transfer.
let ofMessages (messages: RoomMessage list) : RoomHistory =
    messages |> List.fold (fun history message -> record message history |> Option.defaultValue history) emptyHistory

/// What a node makes of the owner's committed messages (oldest first).
type Adoption =
    /// They agree with this node's history: these are the ones it did not have yet, in order.
    | Extends of RoomMessage list
    /// This node held something the owner never committed (a message a crashed owner stored and
    /// nobody else did): its history becomes the owner's.
    | Replaces of RoomHistory

let adopt (messages: RoomMessage list) (history: RoomHistory) : Adoption =
    let mine = history.Recent |> List.map (fun message -> message.Seq, message) |> Map.ofList
    let agrees = messages |> List.forall (fun message -> match mine.TryFind message.Seq with Some held -> held = message | None -> true)
    let ownersLast = messages |> List.tryLast |> Option.map _.Seq |> Option.defaultValue history.LastSeq
    if agrees && history.LastSeq <= ownersLast then Extends(messages |> List.filter (fun message -> message.Seq > history.LastSeq))
    else Replaces(ofMessages messages)

/// Oldest first: the messages after `seq`.
let since (seq: int64) (history: RoomHistory) : RoomMessage list =
    history.Recent |> List.takeWhile (fun message -> message.Seq > seq) |> List.rev

/// Text one state transfer or history reply carries at most: the newest messages that fit, so
/// one peer frame stays far below Wire.maxPeerFrameBytes even for 2000 long messages.
let transferBudgetChars = 1_000_000

/// Oldest first: the newest messages whose texts together fit in `budget` characters.
let lastWithin (budget: int) (messages: RoomMessage list) : RoomMessage list =
    let rec take (left: int) (taken: RoomMessage list) (newestFirst: RoomMessage list) =
        match newestFirst with
        | message :: older when message.Text.Length <= left -> take (left - message.Text.Length) (message :: taken) older
        | _ -> taken
    take budget [] (List.rev messages)

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
