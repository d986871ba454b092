namespace FormalChat.Protocol

/// One waiting post: its key (WaitingPosts.key), and its arrival number.
type WaitingPost = { Key: Rooms.PostKey; Arrival: int64; Post: RoomPost }

/// A room's posts that wait here to be seen sequenced, in the order they arrived (see
/// NodeState.Unconfirmed). The message that answers one finds it by key (acknowledgePost), so
/// acknowledging a post costs log n even with a thousand waiting; a post waits in one map, so
/// adding or acknowledging one changes one map. Their order is by arrival number, put together
/// when asked for (a resend each tick, an owner change). The map is keyed by the key's stable
/// hash: it compares int64s, and the posts whose keys share a hash (rarely others than one key)
/// share its bucket. Two are equal when they hold the same posts in the same order.
[<CustomEquality; CustomComparison>]
type WaitingPosts =
    private
        { Arrivals: int64
          Count: int
          /// The posts by the hash of their key, with their keys and arrival numbers, oldest
          /// first (only posts without an id can share a key).
          ByKey: Map<int64, WaitingPost list> }

    member this.Length = this.Count
    member this.IsEmpty = this.Count = 0

    /// How many posts have arrived since this value was empty: a post's arrival number is at
    /// most this (RoomPlacement.resendWaiting tells how long a post has waited by it).
    member this.ArrivalCount = this.Arrivals

    /// In the order they arrived.
    member this.Posts: RoomPost list =
        if this.Count = 0 then []
        else
            this.ByKey.Values
            |> Seq.concat
            |> Seq.sortBy _.Arrival
            |> Seq.map _.Post
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

    let private bucketOf (key: Rooms.PostKey) (waiting: WaitingPosts) : WaitingPost list =
        match waiting.ByKey.TryGetValue key.StableHash with
        | true, bucket -> bucket
        | _ -> []

    /// The post waits, after the others.
    let add (post: RoomPost) (waiting: WaitingPosts) : WaitingPosts =
        let arrival = waiting.Arrivals + 1L
        let key = keyOfPost post
        let entry = { Key = key; Arrival = arrival; Post = post }
        { Arrivals = arrival
          Count = waiting.Count + 1
          ByKey = waiting.ByKey.Add(key.StableHash, (match bucketOf key waiting with [] -> [ entry ] | bucket -> bucket @ [ entry ])) }

    /// The posts that arrived by arrival number `arrival` (ArrivalCount then), in the order they arrived.
    let arrivedBy (arrival: int64) (waiting: WaitingPosts) : RoomPost list =
        [ for KeyValue(_, bucket) in waiting.ByKey do
              for entry in bucket do
                  if entry.Arrival <= arrival then yield entry ]
        |> List.sortBy _.Arrival
        |> List.map _.Post

    let ofList (posts: RoomPost list) : WaitingPosts = posts |> List.fold (fun waiting post -> add post waiting) empty

    let contains (post: RoomPost) (waiting: WaitingPosts) : bool =
        let key = keyOfPost post
        bucketOf key waiting |> List.exists (fun entry -> entry.Key.Matches key && entry.Post = post)

    /// A post from this sender and node with this client message id waits (never for id 0).
    let containsId (from: Nick) (node: NodeId) (id: int64) (waiting: WaitingPosts) : bool =
        let key = key from id "" node
        id <> 0L && bucketOf key waiting |> List.exists (fun entry -> entry.Key.Matches key)

    /// Without the oldest post the message answers: the same sender and client message id, or,
    /// for a message without an id, the same sender, text and sender's node. None when no post
    /// waits for it.
    let tryRemoveAnswered (message: RoomMessage) (waiting: WaitingPosts) : WaitingPosts option =
        let key = key message.From message.ClientMessageId message.Text message.FromNode
        match bucketOf key waiting with
        | [] -> None
        | bucket when not (bucket |> List.exists (fun entry -> entry.Key.Matches key)) -> None
        | bucket ->
            // The bucket is oldest first: the first with the key is the oldest.
            let rec withoutFirst (entries: WaitingPost list) =
                match entries with
                | entry :: rest when entry.Key.Matches key -> rest
                | entry :: rest -> entry :: withoutFirst rest
                | [] -> []
            let rest = withoutFirst bucket
            Some
                { waiting with
                    Count = waiting.Count - 1
                    ByKey = if rest.IsEmpty then waiting.ByKey.Remove key.StableHash else waiting.ByKey.Add(key.StableHash, rest) }
