namespace FormalChat.Protocol

/// A room's posts that wait here to be seen sequenced, in the order they arrived (see
/// NodeState.Unconfirmed). The message that answers one finds it by key (acknowledgePost), so
/// acknowledging a post costs log n even with a thousand waiting. Two are equal when they hold
/// the same posts in the same order.
[<CustomEquality; CustomComparison>]
type WaitingPosts =
    private
        { Arrivals: int64
          ByArrival: Map<int64, RoomPost>
          /// The arrival numbers of the posts with each key, oldest first (only posts without an
          /// id can share one).
          ByKey: Map<string, int64 list> }

    member this.Length = this.ByArrival.Count
    member this.IsEmpty = this.ByArrival.IsEmpty

    /// In the order they arrived.
    member this.Posts: RoomPost list = this.ByArrival |> Map.values |> List.ofSeq

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
        member this.GetEnumerator() = (Map.values this.ByArrival :> seq<RoomPost>).GetEnumerator()

    interface System.Collections.IEnumerable with
        member this.GetEnumerator() = (Map.values this.ByArrival :> System.Collections.IEnumerable).GetEnumerator()

[<RequireQualifiedAccess>]
module WaitingPosts =
    let empty = { Arrivals = 0L; ByArrival = Map.empty; ByKey = Map.empty }

    /// A post's identity as its acknowledgement finds it: the sender and the client message id;
    /// without an id (0), the text and the sender's node as well.
    let private key (from: Nick) (id: int64) (text: string) (node: NodeId) : string =
        if id = 0L then Rooms.idKey from node 0L + "\n" + string node + "\n" + text else Rooms.idKey from node id

    let private keyOfPost (post: RoomPost) = key post.From post.ClientMessageId post.Text post.FromNode

    let private arrivalsOf (key: string) (waiting: WaitingPosts) = waiting.ByKey.TryFind key |> Option.defaultValue []

    /// The post waits, after the others.
    let add (post: RoomPost) (waiting: WaitingPosts) : WaitingPosts =
        let arrival = waiting.Arrivals + 1L
        let key = keyOfPost post
        { Arrivals = arrival
          ByArrival = waiting.ByArrival.Add(arrival, post)
          ByKey = waiting.ByKey.Add(key, arrivalsOf key waiting @ [ arrival ]) }

    let ofList (posts: RoomPost list) : WaitingPosts = posts |> List.fold (fun waiting post -> add post waiting) empty

    let contains (post: RoomPost) (waiting: WaitingPosts) : bool =
        arrivalsOf (keyOfPost post) waiting |> List.exists (fun arrival -> waiting.ByArrival[arrival] = post)

    /// A post from this sender and node with this client message id waits (never for id 0).
    let containsId (from: Nick) (node: NodeId) (id: int64) (waiting: WaitingPosts) : bool =
        id <> 0L && waiting.ByKey.ContainsKey(key from id "" node)

    /// Without the oldest post the message answers: the same sender and client message id, or,
    /// for a message without an id, the same sender, text and sender's node. None when no post
    /// waits for it.
    let tryRemoveAnswered (message: RoomMessage) (waiting: WaitingPosts) : WaitingPosts option =
        let key = key message.From message.ClientMessageId message.Text message.FromNode
        match arrivalsOf key waiting with
        | [] -> None
        | oldest :: rest ->
            Some
                { waiting with
                    ByArrival = waiting.ByArrival.Remove oldest
                    ByKey = if rest.IsEmpty then waiting.ByKey.Remove key else waiting.ByKey.Add(key, rest) }
