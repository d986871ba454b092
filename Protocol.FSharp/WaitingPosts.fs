namespace FormalChat.Protocol

/// A room's posts that wait here to be seen sequenced, in the order they arrived (see
/// NodeState.Unconfirmed). The message that answers one finds it by key (acknowledgePost), so
/// acknowledging a post costs log n even with a thousand waiting; a post waits in one map, so
/// adding or acknowledging one changes one map. Their order is by arrival number, put together
/// when asked for (a resend each tick, an owner change). Two are equal when they hold the same
/// posts in the same order.
[<CustomEquality; CustomComparison>]
type WaitingPosts =
    private
        { Arrivals: int64
          Count: int
          /// The posts with each key, with their arrival numbers, oldest first (only posts
          /// without an id can share one).
          ByKey: Map<Rooms.PostKey, (int64 * RoomPost) list> }

    member this.Length = this.Count
    member this.IsEmpty = this.Count = 0

    /// In the order they arrived.
    member this.Posts: RoomPost list =
        if this.Count = 0 then []
        else
            this.ByKey.Values
            |> Seq.concat
            |> Seq.sortBy fst
            |> Seq.map snd
            |> List.ofSeq

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
    let empty = { Arrivals = 0L; Count = 0; ByKey = Map.empty }

    /// A post's identity as its acknowledgement finds it: the sender and the client message id;
    /// without an id (0), the text and the sender's node as well.
    let private key (from: Nick) (id: int64) (text: string) (node: NodeId) : Rooms.PostKey =
        if id = 0L then { Id = 0L; Node = node; From = from.Value; Text = text } else Rooms.idKey from node id

    let private keyOfPost (post: RoomPost) = key post.From post.ClientMessageId post.Text post.FromNode

    let private postsOf (key: Rooms.PostKey) (waiting: WaitingPosts) =
        match waiting.ByKey.TryGetValue key with
        | true, posts -> posts
        | _ -> []

    /// The post waits, after the others.
    let add (post: RoomPost) (waiting: WaitingPosts) : WaitingPosts =
        let arrival = waiting.Arrivals + 1L
        let key = keyOfPost post
        { Arrivals = arrival
          Count = waiting.Count + 1
          ByKey = waiting.ByKey.Add(key, (match postsOf key waiting with [] -> [ arrival, post ] | posts -> posts @ [ arrival, post ])) }

    let ofList (posts: RoomPost list) : WaitingPosts = posts |> List.fold (fun waiting post -> add post waiting) empty

    let contains (post: RoomPost) (waiting: WaitingPosts) : bool =
        postsOf (keyOfPost post) waiting |> List.exists (fun (_, waitingPost) -> waitingPost = post)

    /// A post from this sender and node with this client message id waits (never for id 0).
    let containsId (from: Nick) (node: NodeId) (id: int64) (waiting: WaitingPosts) : bool =
        id <> 0L && waiting.ByKey.ContainsKey(key from id "" node)

    /// Without the oldest post the message answers: the same sender and client message id, or,
    /// for a message without an id, the same sender, text and sender's node. None when no post
    /// waits for it.
    let tryRemoveAnswered (message: RoomMessage) (waiting: WaitingPosts) : WaitingPosts option =
        let key = key message.From message.ClientMessageId message.Text message.FromNode
        match postsOf key waiting with
        | [] -> None
        | _ :: rest ->
            Some
                { waiting with
                    Count = waiting.Count - 1
                    ByKey = if rest.IsEmpty then waiting.ByKey.Remove key else waiting.ByKey.Add(key, rest) }
