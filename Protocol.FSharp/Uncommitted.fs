namespace FormalChat.Protocol

/// A room's sequenced messages that are not history yet, in sequence order: an owner's pending
/// messages, or a backup's stored copies. Under a flood thousands wait at once, so each thing
/// done per message (add the newest, find one by seq or by the post it answers, drop the ones
/// committed) costs log n, not n. Only an owner looks posts up, so the index by post is built
/// when it first does (indexed) and kept from then on; a backup's copy keeps none. Two are equal
/// when they hold the same messages.
[<CustomEquality; CustomComparison>]
type Uncommitted =
    private
        { BySeq: Map<int64, RoomMessage>
          /// The highest sequence number held; 0 when none.
          Last: int64
          /// The messages with a client message id, by sender and id: how an owner recognises a
          /// retry of a post still pending (Replication.sequencePost). None until indexed.
          ByClientId: Map<Rooms.PostKey, RoomMessage> option }

    member this.Length = this.BySeq.Count
    member this.IsEmpty = this.BySeq.IsEmpty

    /// The highest sequence number held; 0 when none.
    member this.LastSeq = this.Last

    override this.Equals(other) =
        match other with
        | :? Uncommitted as other -> this.BySeq = other.BySeq
        | _ -> false

    override this.GetHashCode() = hash this.BySeq

    interface System.IComparable with
        member this.CompareTo(other) =
            match other with
            | :? Uncommitted as other -> compare this.BySeq other.BySeq
            | _ -> invalidArg "other" "not an Uncommitted"

    /// Oldest first.
    member this.Messages: RoomMessage list = this.BySeq |> Map.values |> List.ofSeq

    interface System.Collections.Generic.IEnumerable<RoomMessage> with
        member this.GetEnumerator() = (Map.values this.BySeq :> seq<RoomMessage>).GetEnumerator()

    interface System.Collections.IEnumerable with
        member this.GetEnumerator() = (Map.values this.BySeq :> System.Collections.IEnumerable).GetEnumerator()

[<RequireQualifiedAccess>]
module Uncommitted =
    let empty = { BySeq = Map.empty; Last = 0L; ByClientId = None }

    let private clientKey (message: RoomMessage) = Rooms.idKey message.From message.FromNode message.ClientMessageId

    /// The message joins at its sequence number.
    let add (message: RoomMessage) (messages: Uncommitted) : Uncommitted =
        { BySeq = messages.BySeq.Add(message.Seq, message)
          Last = max messages.Last message.Seq
          ByClientId =
            match messages.ByClientId with
            | Some index when message.ClientMessageId <> 0L -> Some(index.Add(clientKey message, message))
            | index -> index }

    let ofList (messages: RoomMessage list) : Uncommitted = messages |> List.fold (fun queue message -> add message queue) empty

    let tryFind (seq: int64) (messages: Uncommitted) : RoomMessage option = messages.BySeq.TryFind seq

    let contains (message: RoomMessage) (messages: Uncommitted) : bool = tryFind message.Seq messages = Some message

    let tryFirst (messages: Uncommitted) : RoomMessage option =
        if messages.BySeq.IsEmpty then None else Some(Map.minKeyValue messages.BySeq |> snd)

    /// The same messages with the index by post (the same queue when it has one): an owner's
    /// pending messages, before it looks a post up (tryFindPost).
    let indexed (messages: Uncommitted) : Uncommitted =
        match messages.ByClientId with
        | Some _ -> messages
        | None ->
            let index =
                messages.BySeq
                |> Map.fold (fun (index: Map<Rooms.PostKey, RoomMessage>) _ message -> if message.ClientMessageId = 0L then index else index.Add(clientKey message, message)) Map.empty
            { messages with ByClientId = Some index }

    /// The message a post already became (a retry); never for a post without a client message id.
    /// Looked up in the index; messages without one are searched.
    let tryFindPost (post: RoomPost) (messages: Uncommitted) : RoomMessage option =
        if post.ClientMessageId = 0L then None
        else
            let key = Rooms.idKey post.From post.FromNode post.ClientMessageId
            match messages.ByClientId with
            | Some index -> index.TryFind key
            | None -> messages.BySeq |> Map.toSeq |> Seq.map snd |> Seq.filter (fun message -> message.ClientMessageId <> 0L && clientKey message = key) |> Seq.tryLast

    /// The messages up to `seq`, oldest first, and the rest. The same queue when none is that old.
    let upTo (seq: int64) (messages: Uncommitted) : RoomMessage list * Uncommitted =
        if messages.BySeq.IsEmpty || (Map.minKeyValue messages.BySeq |> fst) > seq then [], messages else
        let mutable rest = messages
        let taken = ResizeArray<RoomMessage>()
        let mutable next = tryFirst rest
        while next.IsSome && next.Value.Seq <= seq do
            let message = next.Value
            taken.Add message
            let byClientId =
                match rest.ByClientId with
                | Some index ->
                    let key = clientKey message
                    match index.TryGetValue key with
                    | true, indexed when indexed.Seq = message.Seq -> Some(index.Remove key)
                    | _ -> rest.ByClientId
                | None -> None
            let bySeq = rest.BySeq.Remove message.Seq
            rest <- { BySeq = bySeq; Last = (if bySeq.IsEmpty then 0L else rest.Last); ByClientId = byClientId }
            next <- tryFirst rest
        List.ofSeq taken, rest

    /// The messages after `seq`.
    let after (seq: int64) (messages: Uncommitted) : Uncommitted = snd (upTo seq messages)

    /// Oldest first: the messages after `seq` whose texts together fit in `budget` characters
    /// (at least one). They are looked up by number, one after the other, so the cost is the
    /// batch's, not that of the messages before it; only numbers that skip (never from an
    /// owner) take the long way.
    let takeAfter (seq: int64) (budget: int) (messages: Uncommitted) : RoomMessage list =
        let taken = ResizeArray<RoomMessage>()
        let mutable left = budget
        let fits (message: RoomMessage) = taken.Count = 0 || message.Text.Length <= left
        let take (message: RoomMessage) =
            taken.Add message
            left <- left - message.Text.Length
        let mutable next = messages.BySeq.TryFind(seq + 1L)
        while next.IsSome && fits next.Value do
            take next.Value
            next <- messages.BySeq.TryFind(next.Value.Seq + 1L)
        if taken.Count = 0 && messages.LastSeq > seq then
            use oldestFirst = (after seq messages :> seq<RoomMessage>).GetEnumerator()
            while oldestFirst.MoveNext() && fits oldestFirst.Current do
                take oldestFirst.Current
        List.ofSeq taken
