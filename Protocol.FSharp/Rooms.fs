/// Per-room order and history. The owner gives each message the room's next sequence number;
/// every node keeps the room's recent history, so it can replay what a reconnecting client
/// missed, recognise a retried message, and continue the sequence if it becomes the owner.
module FormalChat.Protocol.Rooms

let lobby = RoomName "#lobby"

/// Messages kept per room: enough to resume a client that was away for a failover.
let historyCapacity = 2000

/// A post's identity as a retry or an acknowledgement finds it (idKey, WaitingPosts): the sender
/// and the client message id, with the sender's node where the id is the node's (negative), and
/// the node and the text for a post without an id (0; Text is "" otherwise). A map key on the hot
/// path: a class (no boxing) ordered by the id first, which nearly always decides, so no key
/// string is built per lookup and no common prefix is compared.
[<CustomEquality; CustomComparison>]
type PostKey =
    { Id: int64
      Node: NodeId
      From: string
      Text: string }

    /// Whether this is the key of these fields, without a key built to compare with.
    member this.Is(id: int64, node: NodeId, from: string, text: string) =
        this.Id = id && this.Node = node && System.String.Equals(this.From, from) && System.String.Equals(this.Text, text)

    /// Equality without F#'s generic equality (the hot path compares keys in a queue).
    member this.Matches(other: PostKey) = this.Is(other.Id, other.Node, other.From, other.Text)

    override this.Equals(other) =
        match other with
        | :? PostKey as other -> this.Matches other
        | _ -> false

    override this.GetHashCode() = System.HashCode.Combine(this.Id, this.Node, this.From, this.Text)

    interface System.IComparable with
        member this.CompareTo(other) =
            match other with
            | :? PostKey as other ->
                if this.Id <> other.Id then (if this.Id < other.Id then -1 else 1)
                elif this.Node <> other.Node then (if this.Node < other.Node then -1 else 1)
                else
                    let byFrom = System.String.CompareOrdinal(this.From, other.From)
                    if byFrom <> 0 then byFrom else System.String.CompareOrdinal(this.Text, other.Text)
            | _ -> invalidArg "other" "not a PostKey"

/// The node in a key with this client message id (idKey): the sender's node for a node's own
/// ids (negative), else none (0).
let keyNode (node: NodeId) (id: int64) : NodeId = if id < 0L then node else 0

/// A sender and a client message id as one key. A negative id is one the sender's node gave a
/// post sent without an id (NodeState.NextPostId): unique per node, so the node is part of its key.
let idKey (from: Nick) (node: NodeId) (id: int64) : PostKey =
    { Id = id; Node = keyNode node id; From = from.Value; Text = "" }

/// Messages a generation of a RetryIndex takes.
let private generationSize = 128

/// Full generations a RetryIndex keeps: with the young one, they cover the last historyCapacity.
let private oldGenerations = (historyCapacity + generationSize - 1) / generationSize

/// The order of a RetryIndex generation: by the post's key (PostKey's order: the id, the node for
/// a node's id, the sender), then by seq, so the newest of one key comes last.
let private byKeyThenSeq (a: RoomMessage) (b: RoomMessage) : int =
    if a.ClientMessageId <> b.ClientMessageId then (if a.ClientMessageId < b.ClientMessageId then -1 else 1)
    else
        let nodeA = if a.ClientMessageId < 0L then a.FromNode else 0
        let nodeB = if b.ClientMessageId < 0L then b.FromNode else 0
        if nodeA <> nodeB then (if nodeA < nodeB then -1 else 1)
        else
            let byFrom = System.String.CompareOrdinal(a.From.Value, b.From.Value)
            if byFrom <> 0 then byFrom else compare a.Seq b.Seq

/// byKeyThenSeq as the one delegate Array.Sort takes: sorting through an IComparer (as
/// Array.sortInPlaceWith does) makes the runtime build a delegate per sort by a slow lookup,
/// which cost a fifth of an owner's time per message under a flood.
let private generationOrder = System.Comparison<RoomMessage>(byKeyThenSeq)

/// How a message's key compares with a key.
let private compareToKey (key: PostKey) (message: RoomMessage) : int =
    if message.ClientMessageId <> key.Id then (if message.ClientMessageId < key.Id then -1 else 1)
    else
        let node = if message.ClientMessageId < 0L then message.FromNode else 0
        if node <> key.Node then (if node < key.Node then -1 else 1)
        else System.String.CompareOrdinal(message.From.Value, key.From)

/// The messages of a history with a client message id, findable by sender and id, in
/// generations: those recorded since the last turn (Young, newest first), and the generationSize
/// of each turn before it, sorted by key (Old, newest generation first), as many as cover
/// historyCapacity. A history holds its last historyCapacity messages, so every message it holds
/// is in one of them; one that has left the history since is no longer found (alreadySequenced
/// checks). Nothing is ever removed: a message costs a list cell, a turn sorts one generation
/// into an array, and the oldest generation goes whole. A lookup skips every generation whose
/// ids do not span the key's (a new post's id is usually beyond them all).
type RetryIndex =
    { Young: RoomMessage list
      YoungCount: int
      /// The lowest and highest id in Young.
      YoungLowest: int64
      YoungHighest: int64
      Old: RoomMessage[] list
      /// The lowest and highest id in Old: a new post's id is beyond them, and mayHold then
      /// answers without visiting each generation.
      OldLowest: int64
      OldHighest: int64 }

/// RetryIndex, also an owner's index of its pending messages (Uncommitted): `prune` says which
/// sorted generations a turn keeps, `isHeld` whether a message found is still held.
module RetryIndex =
    let empty =
        { Young = []
          YoungCount = 0
          YoungLowest = System.Int64.MaxValue
          YoungHighest = System.Int64.MinValue
          Old = []
          OldLowest = System.Int64.MaxValue
          OldHighest = System.Int64.MinValue }

    let add (prune: RoomMessage[] list -> RoomMessage[] list) (message: RoomMessage) (index: RetryIndex) : RetryIndex =
        let id = message.ClientMessageId
        if id = 0L then index
        elif index.YoungCount + 1 < generationSize then
            { index with
                Young = message :: index.Young
                YoungCount = index.YoungCount + 1
                YoungLowest = min id index.YoungLowest
                YoungHighest = max id index.YoungHighest }
        else
            // Oldest first: a sender's ids grow, so a generation of one sender's posts (a flood
            // from one client) is in order already and is not sorted again.
            let generation = Array.zeroCreate (index.YoungCount + 1)
            let mutable rest = message :: index.Young
            for position in index.YoungCount .. -1 .. 0 do
                generation[position] <- rest.Head
                rest <- rest.Tail
            let mutable sorted = true
            let mutable position = 1
            while sorted && position < generation.Length do
                sorted <- byKeyThenSeq generation[position - 1] generation[position] <= 0
                position <- position + 1
            if not sorted then System.Array.Sort(generation, generationOrder)
            let old = prune (generation :: index.Old)
            // Sorted by id first: the first and last ids of a generation are its span.
            let lowest = old |> List.fold (fun lowest (kept: RoomMessage[]) -> if kept.Length = 0 then lowest else min lowest kept[0].ClientMessageId) System.Int64.MaxValue
            let highest = old |> List.fold (fun highest (kept: RoomMessage[]) -> if kept.Length = 0 then highest else max highest kept[kept.Length - 1].ClientMessageId) System.Int64.MinValue
            { empty with Old = old; OldLowest = lowest; OldHighest = highest }

    /// The newest of a sorted generation's messages with the key that is held, by binary search.
    let private findIn (isHeld: RoomMessage -> bool) (key: PostKey) (generation: RoomMessage[]) : RoomMessage option =
        // The first message whose key is beyond it; those before, while they have the key, newest first.
        let mutable low = 0
        let mutable high = generation.Length
        while low < high do
            let middle = (low + high) / 2
            if compareToKey key generation[middle] <= 0 then low <- middle + 1 else high <- middle
        let mutable found = None
        let mutable index = low - 1
        while found.IsNone && index >= 0 && compareToKey key generation[index] = 0 do
            if isHeld generation[index] then found <- Some generation[index]
            index <- index - 1
        found

    /// Whether a message with this client message id may be in the index: within the span of
    /// ids of Young or of a generation (a new post's id is usually beyond them all). Asked
    /// before a key and a test are built for tryFind.
    let mayHold (id: int64) (index: RetryIndex) : bool =
        let rec inSpans (generations: RoomMessage[] list) =
            match generations with
            | [] -> false
            | generation :: older ->
                (generation.Length > 0 && id >= generation[0].ClientMessageId && id <= generation[generation.Length - 1].ClientMessageId)
                || inSpans older
        (id >= index.YoungLowest && id <= index.YoungHighest)
        || (id >= index.OldLowest && id <= index.OldHighest && inSpans index.Old)

    /// The newest message with the key that is held.
    let tryFind (isHeld: RoomMessage -> bool) (key: PostKey) (index: RetryIndex) : RoomMessage option =
        let young =
            if key.Id < index.YoungLowest || key.Id > index.YoungHighest then None
            else index.Young |> List.tryFind (fun message -> compareToKey key message = 0 && isHeld message)
        match young with
        | Some _ -> young
        | None ->
            // Sorted by id first: the first and last ids of a generation are its span.
            let spans (generation: RoomMessage[]) =
                generation.Length > 0 && key.Id >= generation[0].ClientMessageId && key.Id <= generation[generation.Length - 1].ClientMessageId
            let rec search (generations: RoomMessage[] list) =
                match generations with
                | [] -> None
                | generation :: older ->
                    match (if spans generation then findIn isHeld key generation else None) with
                    | Some _ as found -> found
                    | None -> search older
            if key.Id < index.OldLowest || key.Id > index.OldHighest then None else search index.Old

/// A history's index keeps the generations that cover historyCapacity.
let private keepCapacity (generations: RoomMessage[] list) = List.truncate oldGenerations generations

/// Messages a chunk of a RoomHistory holds.
let private chunkSize = 64

/// A room's recent messages: at most historyCapacity of them, in a queue: the newest in a list
/// (fewer than chunkSize), the rest in arrays of chunkSize (oldest first within each), filled ones
/// newest chunk first and the front oldest chunk first, so that adding one and dropping the
/// oldest cost the same whatever the length, with no periodic reversal of the whole history (a
/// list of historyCapacity cells every historyCapacity messages, which cost an owner 5% of its
/// time under a flood): a full list becomes one array, and the front's chunks are a short list.
/// The front chunk may still reference up to chunkSize - 1 messages already dropped. With an
/// index of the messages retries may name. Only an owner looks retries up, so the index is built
/// when a node first sequences a post of the room (indexed) and kept from then on; a member's copy
/// keeps none. Two histories are equal when they hold the same messages, however the queue
/// happens to be split and whether or not they are indexed.
[<CustomEquality; CustomComparison>]
type RoomHistory =
    private
        { Last: int64
          /// Newest first: the end of the queue, fewer than chunkSize.
          Newer: RoomMessage list
          NewerCount: int
          /// Full chunks behind Newer, the newest chunk first.
          Filled: RoomMessage[] list
          /// The front of the queue, the oldest chunk first; its first chunk from OldestAt on.
          Older: RoomMessage[] list
          OldestAt: int
          Count: int
          /// The messages with a client message id, by sender and id (see alreadySequenced);
          /// ValueNone until the node sequences a post of the room (indexed); a value option: no
          /// box per message recorded.
          ByClientId: RetryIndex voption }

    /// Oldest first: the newest `count` messages (all of them when count >= Count), walked from
    /// the newest back.
    static member internal LastOf(count: int, history: RoomHistory) : RoomMessage list =
        let mutable taken = []
        let mutable left = min count history.Count
        let mutable newer = history.Newer
        while left > 0 && not newer.IsEmpty do
            taken <- newer.Head :: taken
            newer <- newer.Tail
            left <- left - 1
        // The filled chunks, newest first, then the front's, newest first (the first from OldestAt).
        let mutable chunks = history.Filled
        let mutable front = List.rev history.Older
        while left > 0 && not (chunks.IsEmpty && front.IsEmpty) do
            let chunk, first =
                if not chunks.IsEmpty then chunks.Head, 0
                else front.Head, (if front.Tail.IsEmpty then history.OldestAt else 0)
            if not chunks.IsEmpty then chunks <- chunks.Tail else front <- front.Tail
            let mutable index = chunk.Length - 1
            while left > 0 && index >= first do
                taken <- chunk[index] :: taken
                index <- index - 1
                left <- left - 1
        taken

    /// The room's newest sequence number this node has.
    member this.LastSeq = this.Last

    /// Newest first, at most historyCapacity.
    member this.Recent: RoomMessage list = List.rev (RoomHistory.LastOf(this.Count, this))

    member this.Length = this.Count

    override this.Equals(other) =
        match other with
        | :? RoomHistory as other -> this.Last = other.Last && this.Count = other.Count && this.Recent = other.Recent
        | _ -> false

    override this.GetHashCode() = hash (this.Last, this.Count)

    interface System.IComparable with
        member this.CompareTo(other) =
            match other with
            | :? RoomHistory as other -> compare (this.Last, this.Recent) (other.Last, other.Recent)
            | _ -> invalidArg "other" "not a RoomHistory"

let emptyHistory =
    { Last = 0L; Newer = []; NewerCount = 0; Filled = []; Older = []; OldestAt = 0; Count = 0; ByClientId = ValueNone }

let private clientKey (message: RoomMessage) = idKey message.From message.FromNode message.ClientMessageId

/// The oldest message held: the front chunk's first, or the oldest filled chunk's, or Newer's last.
let private oldestSeq (history: RoomHistory) : int64 =
    match history.Older, history.Filled with
    | front :: _, _ -> front[history.OldestAt].Seq
    | [], _ :: _ -> (List.last history.Filled).[0].Seq
    | [], [] -> (List.last history.Newer).Seq

let validateRoomName (room: string) : Result<RoomName, string> =
    let allowed (c: char) = System.Char.IsAsciiLetterOrDigit c || c = '_' || c = '-'
    let rec allowedFrom (index: int) = index >= room.Length || (allowed room[index] && allowedFrom (index + 1))
    if System.String.IsNullOrEmpty room || room.[0] <> '#' then Result.Error "a room name starts with '#', e.g. #general"
    elif room.Length < 2 || room.Length > 33 then Result.Error "a room name has 1 to 32 characters after '#'"
    elif not (allowedFrom 1) then Result.Error "a room name uses only letters, digits, '_' and '-'"
    // Names arrive in lower case nearly always: no new string for those.
    elif not (String.exists System.Char.IsAsciiLetterUpper room) then Ok(RoomName room)
    else Ok(RoomName(room.ToLowerInvariant()))

/// Adds a sequenced message; ValueNone when it is not newer than what this node already has
/// (record, with no box per message: every node records every message of its rooms).
let tryRecord (message: RoomMessage) (history: RoomHistory) : RoomHistory voption =
    if message.Seq <= history.LastSeq then
        ValueNone
    else
        let index =
            match history.ByClientId with
            | ValueSome index when message.ClientMessageId <> 0L -> ValueSome(RetryIndex.add keepCapacity message index)
            | index -> index
        let mutable newer = message :: history.Newer
        let mutable newerCount = history.NewerCount + 1
        let mutable filled = history.Filled
        if newerCount = chunkSize then
            // A full list becomes one chunk, oldest first.
            let chunk = Array.zeroCreate chunkSize
            let mutable rest = newer
            for index in chunkSize - 1 .. -1 .. 0 do
                chunk[index] <- rest.Head
                rest <- rest.Tail
            newer <- []
            newerCount <- 0
            filled <- chunk :: filled
        let mutable older = history.Older
        let mutable oldestAt = history.OldestAt
        let mutable count = history.Count + 1
        if count > historyCapacity then
            // Full: the oldest goes in the same copy. The front is refilled from the filled
            // chunks (a list of historyCapacity / chunkSize cells) when it runs out.
            if older.IsEmpty then
                older <- List.rev filled
                filled <- []
                oldestAt <- 0
            match older with
            | front :: rest ->
                if oldestAt + 1 < front.Length then oldestAt <- oldestAt + 1
                else
                    older <- rest
                    oldestAt <- 0
                count <- count - 1
            | [] ->
                // Everything is in Newer (a capacity below chunkSize): its last is the oldest.
                newer <- List.truncate (newerCount - 1) newer
                newerCount <- newerCount - 1
                count <- count - 1
        ValueSome
            { Last = message.Seq
              Newer = newer
              NewerCount = newerCount
              Filled = filled
              Older = older
              OldestAt = oldestAt
              Count = count
              ByClientId = index }

/// Adds a sequenced message; None when it is not newer than what this node already has.
let record (message: RoomMessage) (history: RoomHistory) : RoomHistory option =
    match tryRecord message history with
    | ValueSome recorded -> Some recorded
    | ValueNone -> None

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

/// The first stretch of seqs missing between two messages this history holds, as (the last seq
/// before it, the first seq after it). A history grows in order, so only a log that was damaged
/// in the middle and read back around the damage has one.
let firstGap (history: RoomHistory) : (int64 * int64) option =
    history.Recent
    |> List.rev
    |> List.pairwise
    |> List.tryPick (fun (before, after) -> if after.Seq > before.Seq + 1L then Some(before.Seq, after.Seq) else None)

/// The history with the messages it lacks below its last seq taken from `messages` (another
/// node's committed copy): the repair of a gap. Messages it holds already are kept as they are.
let fill (messages: RoomMessage list) (history: RoomHistory) : RoomHistory =
    let mine = history.Recent |> List.map (fun message -> message.Seq, message) |> Map.ofList
    let missing = messages |> List.filter (fun message -> message.Seq < history.LastSeq && not (mine.ContainsKey message.Seq))
    if missing.IsEmpty then history
    else missing |> List.fold (fun (all: Map<int64, RoomMessage>) message -> all.Add(message.Seq, message)) mine |> Map.values |> List.ofSeq |> ofMessages

/// Oldest first: the messages after `seq`.
let since (seq: int64) (history: RoomHistory) : RoomMessage list =
    if seq >= history.LastSeq then [] else history.Recent |> List.takeWhile (fun message -> message.Seq > seq) |> List.rev

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
let last (count: int) (history: RoomHistory) : RoomMessage list = RoomHistory.LastOf(count, history)

/// The history with its index of retries (the same history when it has one already): an owner's,
/// before it looks a post up (alreadySequenced).
let indexed (history: RoomHistory) : RoomHistory =
    match history.ByClientId with
    | ValueSome _ -> history
    | ValueNone ->
        { history with ByClientId = ValueSome(List.fold (fun index message -> RetryIndex.add keepCapacity message index) RetryIndex.empty (List.rev history.Recent)) }

/// A post the owner has already sequenced (a client's retry): the message it became, the newest
/// with its sender and id. Looked up in the index; a history without one is searched.
let alreadySequenced (post: RoomPost) (history: RoomHistory) : RoomMessage option =
    match history.ByClientId with
    | _ when post.ClientMessageId = 0L -> None
    | ValueSome index when not (RetryIndex.mayHold post.ClientMessageId index) -> None
    | byClientId ->
        let key = idKey post.From post.FromNode post.ClientMessageId
        match byClientId with
        | ValueSome index ->
            // Held still: the history drops its oldest messages, and the index keeps them a while.
            RetryIndex.tryFind (fun message -> history.Count > 0 && message.Seq >= oldestSeq history) key index
        | ValueNone -> history.Recent |> List.tryFind (fun message -> message.ClientMessageId <> 0L && clientKey message = key)

/// The post as the message numbered after `last`.
let sequenceAfter (post: RoomPost) (last: int64) : RoomMessage =
    { Room = post.Room
      Seq = last + 1L
      From = post.From
      FromNode = post.FromNode
      Text = post.Text
      ClientMessageId = post.ClientMessageId }

/// The owner's step: the next sequence number continues from the newest the node knows of.
let sequence (post: RoomPost) (placement: Assignment) (history: RoomHistory) : RoomMessage =
    sequenceAfter post (max history.LastSeq placement.LastSeq)
