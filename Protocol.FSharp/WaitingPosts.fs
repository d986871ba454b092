namespace FormalChat.Protocol

/// One waiting post: its key (WaitingPosts.key), and its arrival number.
type WaitingPost = { Key: Rooms.PostKey; Arrival: int64; Post: RoomPost }

/// The lowest and highest client message id a sender's posts had since a WaitingPosts was empty.
[<Struct>]
type IdSpan = { Lowest: int64; Highest: int64 }

/// A room's posts that wait here to be seen sequenced, in the order they arrived (see
/// NodeState.Unconfirmed). Their owner answers them nearly always in that order (it sequences
/// a node's posts in the order they came over one link), so they are a queue of two lists
/// (oldest first, then newest first): a post arriving costs a list cell, and the answer to the
/// oldest takes it off the front; an answer to any other (after an owner change or a lost
/// frame) searches the queue and rebuilds it. Whether a post of a sender with a client message
/// id waits (a retry) is decided without a search when the id is outside the ids that sender's
/// posts had since the queue was empty (Spans): a client numbers its posts upwards, a node the
/// posts without an id downwards. Two are equal when they hold the same posts in the same order.
[<CustomEquality; CustomComparison>]
type WaitingPosts =
    private
        { Arrivals: int64
          Count: int
          /// Oldest first; empty only when Newer is.
          Older: WaitingPost list
          /// Newest first: after every post of Older.
          Newer: WaitingPost list
          /// By sender: the span of the client message ids of the posts added since this was
          /// empty (it only grows meanwhile, so an id outside it waits nowhere here). The latest
          /// sender's is in LatestSpan instead (its entry here, if any, is older): a flood from
          /// one client grows its span with every post, and a map update per post cost a path
          /// of new tree nodes.
          Spans: Map<string, IdSpan>
          /// The sender of the latest post with an id; null before one.
          Latest: string | null
          LatestSpan: IdSpan }

    member this.Length = this.Count
    member this.IsEmpty = this.Count = 0

    /// How many posts have arrived since this value was empty: a post's arrival number is at
    /// most this (RoomPlacement.resendWaiting tells how long a post has waited by it).
    member this.ArrivalCount = this.Arrivals

    /// The waiting entries, oldest first.
    member internal this.Entries: WaitingPost list =
        match this.Newer with
        | [] -> this.Older
        | newer -> this.Older @ List.rev newer

    /// In the order they arrived.
    member this.Posts: RoomPost list = this.Entries |> List.map _.Post

    override this.Equals(other) =
        match other with
        | :? WaitingPosts as other -> this.Posts = other.Posts
        | _ -> false

    override this.GetHashCode() = hash this.Posts

    interface System.IComparable with
        member this.CompareTo(other) =
            match other with
            | :? WaitingPosts as other -> compare this.Posts other.Posts
            | _ -> invalidArg "other" "not a WaitingPosts"

    interface System.Collections.Generic.IEnumerable<RoomPost> with
        member this.GetEnumerator() = (this.Posts :> seq<RoomPost>).GetEnumerator()

    interface System.Collections.IEnumerable with
        member this.GetEnumerator() = (this.Posts :> System.Collections.IEnumerable).GetEnumerator()

[<RequireQualifiedAccess>]
module WaitingPosts =
    let empty = { Arrivals = 0L; Count = 0; Older = []; Newer = []; Spans = Map.empty; Latest = null; LatestSpan = { Lowest = 0L; Highest = 0L } }

    /// The span of a sender's ids (see Spans).
    let private spanOf (from: string) (waiting: WaitingPosts) : IdSpan voption =
        if System.String.Equals(from, waiting.Latest) then ValueSome waiting.LatestSpan
        else
            match waiting.Spans.TryGetValue from with
            | true, span -> ValueSome span
            | _ -> ValueNone

    /// A post's identity as its acknowledgement finds it: the sender and the client message id;
    /// without an id (0), the text and the sender's node as well.
    let private key (from: Nick) (id: int64) (text: string) (node: NodeId) : Rooms.PostKey =
        if id = 0L then { Id = 0L; Node = node; From = from.Value; Text = text } else Rooms.idKey from node id

    let private keyOfPost (post: RoomPost) = key post.From post.ClientMessageId post.Text post.FromNode

    /// Whether an entry's key is `key` of the message's sender, id, text and node, without
    /// building it: the sender's node checks each message it is sent against its oldest post.
    let private isAnsweredBy (message: RoomMessage) (entry: WaitingPost) : bool =
        let id = message.ClientMessageId
        if id = 0L then entry.Key.Is(0L, message.FromNode, message.From.Value, message.Text)
        else entry.Key.Is(id, Rooms.keyNode message.FromNode id, message.From.Value, "")

    /// Whether a post with this sender and id may wait here (Spans); always for id 0.
    let private mayHold (from: Nick) (id: int64) (waiting: WaitingPosts) : bool =
        waiting.Count > 0
        && (id = 0L
            || match spanOf from.Value waiting with
               | ValueSome span -> id >= span.Lowest && id <= span.Highest
               | ValueNone -> false)

    /// The queue of these entries (oldest first), with the arrivals and spans kept.
    let private withEntries (entries: WaitingPost list) (count: int) (waiting: WaitingPosts) : WaitingPosts =
        if count = 0 then { empty with Arrivals = waiting.Arrivals }
        else { waiting with Count = count; Older = entries; Newer = [] }

    /// The post waits, after the others.
    let add (post: RoomPost) (waiting: WaitingPosts) : WaitingPosts =
        let arrival = waiting.Arrivals + 1L
        let entry = { Key = keyOfPost post; Arrival = arrival; Post = post }
        let id = post.ClientMessageId
        let from = post.From.Value
        let struct (spans, latest, latestSpan) =
            if id = 0L then struct (waiting.Spans, waiting.Latest, waiting.LatestSpan)
            else
                let span =
                    match spanOf from waiting with
                    | ValueSome span -> { Lowest = min id span.Lowest; Highest = max id span.Highest }
                    | ValueNone -> { Lowest = id; Highest = id }
                match waiting.Latest with
                | latest when System.String.Equals(from, latest) -> struct (waiting.Spans, latest, span)
                // Another sender: the one before keeps its span in the map.
                | null -> struct (waiting.Spans, from, span)
                | before -> struct (waiting.Spans.Add(before, waiting.LatestSpan), from, span)
        if waiting.Count = 0 then
            { Arrivals = arrival; Count = 1; Older = [ entry ]; Newer = []; Spans = spans; Latest = latest; LatestSpan = latestSpan }
        else
            { Arrivals = arrival
              Count = waiting.Count + 1
              Older = waiting.Older
              Newer = entry :: waiting.Newer
              Spans = spans
              Latest = latest
              LatestSpan = latestSpan }

    /// The posts that arrived by arrival number `arrival` (ArrivalCount then), in the order they arrived.
    let arrivedBy (arrival: int64) (waiting: WaitingPosts) : RoomPost list =
        waiting.Entries |> List.takeWhile (fun entry -> entry.Arrival <= arrival) |> List.map _.Post

    let ofList (posts: RoomPost list) : WaitingPosts = posts |> List.fold (fun waiting post -> add post waiting) empty

    let contains (post: RoomPost) (waiting: WaitingPosts) : bool =
        mayHold post.From post.ClientMessageId waiting
        && (let key = keyOfPost post
            waiting.Entries |> List.exists (fun entry -> entry.Key.Matches key && entry.Post = post))

    /// A post from this sender and node with this client message id waits (never for id 0).
    let containsId (from: Nick) (node: NodeId) (id: int64) (waiting: WaitingPosts) : bool =
        id <> 0L
        && mayHold from id waiting
        && (let key = key from id "" node
            waiting.Entries |> List.exists (fun entry -> entry.Key.Matches key))

    /// Without the oldest post the message answers: the same sender and client message id, or,
    /// for a message without an id, the same sender, text and sender's node. None when no post
    /// waits for it.
    let tryRemoveAnswered (message: RoomMessage) (waiting: WaitingPosts) : WaitingPosts option =
        if not (mayHold message.From message.ClientMessageId waiting) then None
        else
        match waiting.Older with
        // The usual answer: to the oldest.
        | oldest :: rest when isAnsweredBy message oldest ->
            if rest.IsEmpty then Some(withEntries (List.rev waiting.Newer) (waiting.Count - 1) waiting)
            else Some { waiting with Count = waiting.Count - 1; Older = rest }
        | _ ->
            let key = key message.From message.ClientMessageId message.Text message.FromNode
            let entries = waiting.Entries
            if not (entries |> List.exists (fun entry -> entry.Key.Matches key)) then None
            else
                let rec withoutFirst (entries: WaitingPost list) =
                    match entries with
                    | entry :: rest when entry.Key.Matches key -> rest
                    | entry :: rest -> entry :: withoutFirst rest
                    | [] -> []
                Some(withEntries (withoutFirst entries) (waiting.Count - 1) waiting)
