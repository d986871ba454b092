namespace FormalChat.Protocol

/// A room's sequenced messages that are not history yet, in sequence order: an owner's pending
/// messages, or a backup's stored copies. Under a flood thousands wait at once, and messages
/// come in at the newest end and leave, committed, from the oldest: a queue of two lists (oldest
/// first, then newest first), so each of those costs a list cell, not a path through a tree;
/// finding one by seq starts from the oldest, where the next to commit is. Only an owner looks
/// posts up, so the index by post is built when it first does (indexed) and kept from then on; a
/// backup's copy keeps none. Two are equal when they hold the same messages.
[<CustomEquality; CustomComparison>]
type Uncommitted =
    private
        { /// Oldest first; empty only when Newer is.
          Older: RoomMessage list
          /// Newest first: after every message of Older.
          Newer: RoomMessage list
          Count: int
          /// The highest sequence number held; 0 when none.
          Last: int64
          /// The messages with a client message id, by sender and id: how an owner recognises a
          /// retry of a post still pending (Replication.sequencePost). In generations, as a
          /// history's (Rooms.RetryIndex): nothing is removed as messages commit; a turn drops the
          /// generations that hold none still here, and a message found counts only while it is
          /// here. ValueNone until indexed (a value option: no box per message added).
          ByClientId: Rooms.RetryIndex voption }

    member this.Length = this.Count
    member this.IsEmpty = this.Count = 0

    /// The highest sequence number held; 0 when none.
    member this.LastSeq = this.Last

    /// Oldest first.
    member this.Messages: RoomMessage list =
        match this.Newer with
        | [] -> this.Older
        | newer -> this.Older @ List.rev newer

    override this.Equals(other) =
        match other with
        | :? Uncommitted as other -> this.Count = other.Count && this.Last = other.Last && this.Messages = other.Messages
        | _ -> false

    override this.GetHashCode() = hash (this.Count, this.Last)

    interface System.IComparable with
        member this.CompareTo(other) =
            match other with
            | :? Uncommitted as other -> compare this.Messages other.Messages
            | _ -> invalidArg "other" "not an Uncommitted"

    interface System.Collections.Generic.IEnumerable<RoomMessage> with
        member this.GetEnumerator() = (this.Messages :> seq<RoomMessage>).GetEnumerator()

    interface System.Collections.IEnumerable with
        member this.GetEnumerator() = (this.Messages :> System.Collections.IEnumerable).GetEnumerator()

[<RequireQualifiedAccess>]
module Uncommitted =
    let empty = { Older = []; Newer = []; Count = 0; Last = 0L; ByClientId = ValueNone }

    let private clientKey (message: RoomMessage) = Rooms.idKey message.From message.FromNode message.ClientMessageId

    /// A turn of the index keeps the generations with a message from `first` on (the oldest
    /// held): the others hold only messages committed since.
    let private keepHeldFrom (first: int64) (generations: RoomMessage[] list) =
        generations |> List.filter (Array.exists (fun message -> message.Seq >= first))

    let private withIndexed (first: int64) (message: RoomMessage) (index: Rooms.RetryIndex voption) =
        match index with
        | ValueSome index when message.ClientMessageId <> 0L -> ValueSome(Rooms.RetryIndex.add (keepHeldFrom first) message index)
        | index -> index

    /// The message joins at its sequence number (in place of one held with that number). The
    /// newest joins at the end of the queue; any other, rarely, rebuilds it.
    let add (message: RoomMessage) (messages: Uncommitted) : Uncommitted =
        let first = match messages.Older with oldest :: _ -> min oldest.Seq message.Seq | [] -> message.Seq
        let index = withIndexed first message messages.ByClientId
        if messages.Count = 0 then
            { Older = [ message ]; Newer = []; Count = 1; Last = message.Seq; ByClientId = index }
        elif message.Seq > messages.Last then
            { messages with Newer = message :: messages.Newer; Count = messages.Count + 1; Last = message.Seq; ByClientId = index }
        else
            let all = message :: (messages.Messages |> List.filter (fun held -> held.Seq <> message.Seq)) |> List.sortBy _.Seq
            { Older = all; Newer = []; Count = all.Length; Last = messages.Last; ByClientId = index }

    /// `add` for each message in turn. A batch numbered on from the newest held (a backup's
    /// append), into a queue without an index, joins in one copy: as the front when the queue is
    /// empty (the list itself), else at the newest end.
    let addAll (batch: RoomMessage list) (messages: Uncommitted) : Uncommitted =
        let rec ascendingFrom (last: int64) (rest: RoomMessage list) =
            match rest with
            | [] -> true
            | message :: more -> message.Seq > last && ascendingFrom message.Seq more
        match batch with
        | [] -> messages
        | _ when messages.ByClientId.IsSome || not (ascendingFrom messages.Last batch) ->
            batch |> List.fold (fun queue message -> add message queue) messages
        | _ when messages.Count = 0 ->
            { Older = batch; Newer = []; Count = batch.Length; Last = (List.last batch).Seq; ByClientId = ValueNone }
        | _ ->
            let mutable newer = messages.Newer
            let mutable count = messages.Count
            let mutable last = messages.Last
            for message in batch do
                newer <- message :: newer
                count <- count + 1
                last <- message.Seq
            { messages with Newer = newer; Count = count; Last = last }

    let ofList (messages: RoomMessage list) : Uncommitted = messages |> List.fold (fun queue message -> add message queue) empty

    let tryFirst (messages: Uncommitted) : RoomMessage option =
        match messages.Older with
        | first :: _ -> Some first
        | [] -> None

    let tryFind (seq: int64) (messages: Uncommitted) : RoomMessage option =
        match messages.Older with
        | first :: _ when first.Seq = seq -> Some first
        | _ when messages.Count = 0 || seq > messages.Last -> None
        | _ -> messages.Messages |> List.tryFind (fun message -> message.Seq = seq)

    let contains (message: RoomMessage) (messages: Uncommitted) : bool = tryFind message.Seq messages = Some message

    /// The same messages with the index by post (the same queue when it has one): an owner's
    /// pending messages, before it looks a post up (tryFindPost).
    let indexed (messages: Uncommitted) : Uncommitted =
        match messages.ByClientId with
        | ValueSome _ -> messages
        | ValueNone ->
            let first = match messages.Older with oldest :: _ -> oldest.Seq | [] -> 0L
            let index = messages.Messages |> List.fold (fun index message -> Rooms.RetryIndex.add (keepHeldFrom first) message index) Rooms.RetryIndex.empty
            { messages with ByClientId = ValueSome index }

    /// The message a post already became (a retry); never for a post without a client message id.
    /// Looked up in the index; messages without one are searched.
    let tryFindPost (post: RoomPost) (messages: Uncommitted) : RoomMessage option =
        match messages.ByClientId with
        | _ when post.ClientMessageId = 0L -> None
        | ValueSome index when not (Rooms.RetryIndex.mayHold post.ClientMessageId index) -> None
        | _ ->
            let key = Rooms.idKey post.From post.FromNode post.ClientMessageId
            match messages.ByClientId with
            | ValueSome index -> Rooms.RetryIndex.tryFind (fun message -> tryFind message.Seq messages = Some message) key index
            | ValueNone -> messages.Messages |> List.filter (fun message -> message.ClientMessageId <> 0L && clientKey message = key) |> List.tryLast

    /// The messages up to `seq`, oldest first, and the rest. The same queue when none is that old.
    let upTo (seq: int64) (messages: Uncommitted) : RoomMessage list * Uncommitted =
        match messages.Older with
        // All of them (an owner alone commits each message as it comes): the list as it is.
        | _ :: _ when seq >= messages.Last ->
            messages.Messages, { empty with ByClientId = messages.ByClientId }
        | first :: _ when first.Seq <= seq ->
            let taken = ResizeArray<RoomMessage>()
            let mutable older = messages.Older
            let mutable newer = messages.Newer
            let mutable next = tryFirst messages
            while next.IsSome && next.Value.Seq <= seq do
                let message = next.Value
                taken.Add message
                older <- older.Tail
                if older.IsEmpty && not newer.IsEmpty then
                    older <- List.rev newer
                    newer <- []
                next <- match older with head :: _ -> Some head | [] -> None
            let count = messages.Count - taken.Count
            List.ofSeq taken,
            // The index keeps the committed until a turn drops their generation (see ByClientId).
            { Older = older; Newer = newer; Count = count; Last = (if count = 0 then 0L else messages.Last); ByClientId = messages.ByClientId }
        | _ -> [], messages

    /// The messages after `seq` (upTo's rest, without a list of the others).
    let after (seq: int64) (messages: Uncommitted) : Uncommitted =
        match messages.Older with
        | _ :: _ when seq >= messages.Last -> { empty with ByClientId = messages.ByClientId }
        | first :: _ when first.Seq <= seq ->
            let mutable older = messages.Older
            let mutable newer = messages.Newer
            let mutable dropped = 0
            while (match older with head :: _ -> head.Seq <= seq | [] -> false) do
                older <- older.Tail
                dropped <- dropped + 1
                if older.IsEmpty && not newer.IsEmpty then
                    older <- List.rev newer
                    newer <- []
            let count = messages.Count - dropped
            { Older = older; Newer = newer; Count = count; Last = (if count = 0 then 0L else messages.Last); ByClientId = messages.ByClientId }
        | _ -> messages

    /// Oldest first: the messages after `seq` whose texts together fit in `budget` characters
    /// (at least one): those numbered on from seq + 1 without a skip, or, when there is no
    /// seq + 1 (numbers that skip, never from an owner), the ones after seq.
    let takeAfter (seq: int64) (budget: int) (messages: Uncommitted) : RoomMessage list =
        if seq >= messages.Last then []
        else
            let rec skip (rest: RoomMessage list) =
                match rest with
                | message :: more when message.Seq <= seq -> skip more
                | _ -> rest
            let mutable rest = skip messages.Older
            let mutable pastOlder = false
            let next () =
                match rest with
                | message :: more ->
                    rest <- more
                    Some message
                | [] when not pastOlder ->
                    pastOlder <- true
                    // The newest after seq, oldest first: a copy of what is taken, not of Newer.
                    let rec collect (oldestFirst: RoomMessage list) (newestFirst: RoomMessage list) =
                        match newestFirst with
                        | message :: more when message.Seq > seq -> collect (message :: oldestFirst) more
                        | _ -> oldestFirst
                    rest <- collect [] messages.Newer
                    match rest with
                    | message :: more ->
                        rest <- more
                        Some message
                    | [] -> None
                | [] -> None
            let taken = ResizeArray<RoomMessage>()
            let mutable left = budget
            let mutable current = next ()
            let consecutive = current |> Option.exists (fun first -> first.Seq = seq + 1L)
            let follows (message: RoomMessage) = not consecutive || message.Seq = seq + 1L + int64 taken.Count
            while current.IsSome && (taken.Count = 0 || current.Value.Text.Length <= left) && follows current.Value do
                taken.Add current.Value
                left <- left - current.Value.Text.Length
                current <- next ()
            List.ofSeq taken
