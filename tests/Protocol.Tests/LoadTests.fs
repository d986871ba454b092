/// What load must not change (issue "Stay up and fast under load"): a member is shown each
/// sequence number once and in order, the shell is told when to stop reading clients, and the
/// work per message does not grow with the history.
module FormalChat.Protocol.Tests.LoadTests

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open Xunit

let private config = ProtocolConfig.defaults

let private message (seq: int64) (text: string) : RoomMessage =
    { Room = (RoomName "#dev"); Seq = seq; From = Nick "ann"; FromNode = 1; Text = text; ClientMessageId = seq }

let private post (id: int64) : RoomPost =
    { Room = (RoomName "#dev"); From = Nick "ann"; FromNode = 2; Text = $"post {id}"; ClientMessageId = id }

let private shownSeqs (effects: Effect list) : int64 list =
    [ for effect in effects do
          match effect with
          | SendToClients(_, Message shown) -> shown.Seq
          | _ -> () ]

let ``waiting posts of senders taking turns are each recognised as retries and answered, whichever sent last`` () =
    let postBy (nick: string) (id: int64) : RoomPost =
        { Room = (RoomName "#dev"); From = Nick nick; FromNode = 2; Text = $"{nick} {id}"; ClientMessageId = id }
    let answer (posted: RoomPost) (seq: int64) : RoomMessage =
        { Room = posted.Room; Seq = seq; From = posted.From; FromNode = posted.FromNode; Text = posted.Text; ClientMessageId = posted.ClientMessageId }
    let posts = [ postBy "ann" 1L; postBy "ann" 2L; postBy "bob" 7L; postBy "ann" 3L; postBy "bob" 8L; postBy "bob" 9L ]
    let waiting = WaitingPosts.ofList posts
    for posted in posts do
        Assert.True(WaitingPosts.containsId posted.From posted.FromNode posted.ClientMessageId waiting)
    Assert.False(WaitingPosts.containsId (Nick "ann") 2 4L waiting)
    Assert.False(WaitingPosts.containsId (Nick "bob") 2 6L waiting)
    Assert.False(WaitingPosts.containsId (Nick "cy") 2 1L waiting)
    // Answered in order, each takes its own post off the front.
    let mutable left = waiting
    for seq, posted in List.indexed posts do
        left <- (WaitingPosts.tryRemoveAnswered (answer posted (int64 seq + 1L)) left).Value
    Assert.True(left.IsEmpty)

let ``a number already shown to the members is not shown again after the node's copy is replaced`` () =
    // This node showed 1..3, then the owner's copy (1..2, its 3 never committed) replaced its own.
    let state =
        { NodeState.init { Id = 2; ClientEndpoint = { Host = "127.0.0.1"; Port = 5002 }; PeerEndpoint = { Host = "127.0.0.1"; Port = 6002 } } with
            Histories = Map [ (RoomName "#dev"), Rooms.ofMessages [ message 1L "one"; message 2L "two" ] ]
            Shown = Map [ (RoomName "#dev"), 3L ] }

    let state, again = Node.step config state (PeerMessageReceived(RoomSequenced(message 3L "the owner's three")))
    let _, next = Node.step config state (PeerMessageReceived(RoomSequenced(message 4L "four")))

    Assert.Empty(shownSeqs again)
    Assert.Equal<int64 list>([ 4L ], shownSeqs next)

let ``the shell may read client requests until maxPostsInFlight posts wait for their owners`` () =
    let waiting count = { NodeState.init { Id = 2; ClientEndpoint = { Host = "127.0.0.1"; Port = 5002 }; PeerEndpoint = { Host = "127.0.0.1"; Port = 6002 } } with Unconfirmed = Map [ (RoomName "#dev"), WaitingPosts.ofList [ for id in 1L .. int64 count -> post id ] ] }

    Assert.True(Node.acceptsClientRequests (waiting (Node.maxPostsInFlight - 1)))
    Assert.False(Node.acceptsClientRequests (waiting Node.maxPostsInFlight))

let ``a full history keeps the newest historyCapacity messages and recognises retries of those alone`` () =
    let count = Rooms.historyCapacity + 100
    let history =
        [ 1L .. int64 count ]
        |> List.fold (fun history seq -> Rooms.record (message seq $"m{seq}") history |> Option.defaultValue history) Rooms.emptyHistory
    let retry (id: int64) = { post id with FromNode = 1 }

    Assert.Equal(Rooms.historyCapacity, history.Recent.Length)
    Assert.Equal(int64 count, history.LastSeq)
    Assert.Equal(None, Rooms.alreadySequenced (retry 100L) history)
    Assert.Equal(Some(int64 count), Rooms.alreadySequenced (retry (int64 count)) history |> Option.map _.Seq)
    Assert.Equal<int64 list>([ int64 count - 2L .. int64 count ], Rooms.last 3 history |> List.map _.Seq)

let ``two histories of the same messages are equal however they were built`` () =
    let messages = [ for seq in 1L .. 2500L -> message seq $"m{seq}" ]
    let recorded = messages |> List.fold (fun history m -> Rooms.record m history |> Option.get) Rooms.emptyHistory

    Assert.Equal(Rooms.ofMessages messages, recorded)
    Assert.Equal(Rooms.ofMessages (List.skip 500 messages), recorded)
    Assert.NotEqual(Rooms.ofMessages (List.skip 501 messages), recorded)

let ``a history holds its newest messages in order at every length, across its chunks and their refills`` () =
    for count in [ 0; 1; 63; 64; 65; 128; Rooms.historyCapacity; Rooms.historyCapacity + 1; Rooms.historyCapacity + 63; Rooms.historyCapacity + 64; 2 * Rooms.historyCapacity + 100 ] do
        let history =
            [ 1L .. int64 count ]
            |> List.fold (fun history seq -> Rooms.record (message seq $"m{seq}") history |> Option.get) (Rooms.indexed Rooms.emptyHistory)
        let held = min count Rooms.historyCapacity
        let oldest = int64 (count - held + 1)
        Assert.Equal(held, history.Length)
        Assert.Equal<int64 list>([ int64 count .. -1L .. oldest ], history.Recent |> List.map _.Seq)
        for wanted in [ 0; 1; 50; 63; 64; 65; Rooms.historyCapacity; Rooms.historyCapacity + 1 ] do
            let taken = min wanted held
            Assert.Equal<int64 list>([ int64 (count - taken + 1) .. int64 count ], Rooms.last wanted history |> List.map _.Seq)
        let retry (id: int64) = { post id with FromNode = 1 }
        if count > 0 then
            Assert.Equal(Some oldest, Rooms.alreadySequenced (retry oldest) history |> Option.map _.Seq)
        if oldest > 1L then
            Assert.Equal(None, Rooms.alreadySequenced (retry (oldest - 1L)) history)

let private ownerInfo = { Id = 3; ClientEndpoint = { Host = "127.0.0.1"; Port = 5003 }; PeerEndpoint = { Host = "127.0.0.1"; Port = 6003 } }

/// Node 2, with these posts waiting for #dev's owner, node 3 (live, and leader).
let private waitingFor (posts: RoomPost list) : NodeState =
    let self = { Id = 2; ClientEndpoint = { Host = "127.0.0.1"; Port = 5002 }; PeerEndpoint = { Host = "127.0.0.1"; Port = 6002 } }
    { NodeState.init self with
        Coordination = { Coordination.init 2 with View = Set [ 2; 3 ]; Leader = Some 3; Epoch = 1L }
        Peers = Map [ 3, { Info = ownerInfo; Load = Load.zero } ]
        Placements = Map [ (RoomName "#dev"), { Owner = 3; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L } ]
        Unconfirmed = Map [ (RoomName "#dev"), WaitingPosts.ofList posts ] }

/// A heartbeat of the owner, then a tick: the posts the tick sent again.
let private tickWithOwnerAlive (state: NodeState) : NodeState * int64 list =
    let alive, _ = Node.step config state (PeerMessageReceived(HeartbeatSent { From = ownerInfo; Epoch = 1L; Leader = Some 3; Load = Load.zero; Known = [] }))
    let ticked, effects = Node.step config alive Ticked
    ticked, [ for effect in effects do match effect with SendToPeer(_, RoomPosted p) -> p.ClientMessageId | _ -> () ]

let ``posts the owner leaves unanswered for suspectAfter ticks are sent again, each once, in order`` () =
    let mutable state = waitingFor [ for id in 1L .. 1000L -> post id ]
    let mutable resent = []
    for _ in 1 .. config.SuspectAfter + 1 do
        let next, sent = tickWithOwnerAlive state
        state <- next
        resent <- resent @ [ sent ]

    Assert.All(List.take (config.SuspectAfter - 1) resent, fun sent -> Assert.Empty sent)
    Assert.Equal<int64 list>([ 1L .. 1000L ], resent[config.SuspectAfter - 1])
    Assert.Empty(List.last resent)

let ``only posts that have waited suspectAfter ticks are sent again`` () =
    // 1..500 wait from the first tick on; 501..1000 arrive after it, as a flood's posts keep coming.
    let state, _ = tickWithOwnerAlive (waitingFor [ for id in 1L .. 500L -> post id ])
    let later = [ for id in 501L .. 1000L -> post id ] |> List.fold (fun waiting p -> WaitingPosts.add p waiting) state.Unconfirmed[RoomName "#dev"]
    let mutable state = { state with Unconfirmed = state.Unconfirmed.Add(RoomName "#dev", later) }
    let mutable resent = []
    for _ in 2 .. config.SuspectAfter do
        let next, sent = tickWithOwnerAlive state
        state <- next
        resent <- resent @ sent

    Assert.Equal<int64 list>([ 1L .. 500L ], resent)

[<Tests>]
let tests =
    testList "Load" [
        testCase "waiting posts of senders taking turns are each recognised as retries and answered, whichever sent last"
            ``waiting posts of senders taking turns are each recognised as retries and answered, whichever sent last``
        testCase "a number already shown to the members is not shown again after the node's copy is replaced"
            ``a number already shown to the members is not shown again after the node's copy is replaced``
        testCase "the shell may read client requests until maxPostsInFlight posts wait for their owners"
            ``the shell may read client requests until maxPostsInFlight posts wait for their owners``
        testCase "a full history keeps the newest historyCapacity messages and recognises retries of those alone"
            ``a full history keeps the newest historyCapacity messages and recognises retries of those alone``
        testCase "a history holds its newest messages in order at every length, across its chunks and their refills"
            ``a history holds its newest messages in order at every length, across its chunks and their refills``
        testCase "two histories of the same messages are equal however they were built"
            ``two histories of the same messages are equal however they were built``
        testCase "posts the owner leaves unanswered for suspectAfter ticks are sent again, each once, in order"
            ``posts the owner leaves unanswered for suspectAfter ticks are sent again, each once, in order``
        testCase "only posts that have waited suspectAfter ticks are sent again"
            ``only posts that have waited suspectAfter ticks are sent again``
    ]
