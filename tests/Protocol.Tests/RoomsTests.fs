/// Per-room order and history (Rooms.fs) as pure functions, then rooms end to end through
/// Node.step on small clusters wired by Simulation.Nodes: placement by the leader, one order
/// for every member, history on join, resume, retries, owner failover, rebalancing and
/// session takeover.
module FormalChat.Protocol.Tests.RoomsTests

open System
open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.Tests.Simulation
open FsCheck
open FsCheck.FSharp
open Xunit

let private messageOf (room: RoomName) (seq: int64) (from: string) (id: int64) : RoomMessage =
    { Room = room; Seq = seq; From = Nick from; FromNode = 1; Text = $"{from} {seq}"; ClientMessageId = id }

/// A history holding seqs first..last of #dev, each from "ann" with client message id = seq.
let private historyOf (first: int64) (last: int64) : Rooms.RoomHistory =
    [ first..last ]
    |> List.fold (fun history seq -> (Rooms.record (messageOf (RoomName "#dev") seq "ann" seq) history).Value) Rooms.emptyHistory

let private seqs (messages: RoomMessage list) : int64 list = messages |> List.map _.Seq

// ---------------------------------------------------------------------------------------------
// Rooms: record, since, last, alreadySequenced, sequence, validateRoomName.

let ``record: a newer message is kept and becomes LastSeq`` () =
    let history = historyOf 1L 2L

    let next = Rooms.record (messageOf (RoomName "#dev") 3L "bob" 0L) history

    Assert.Equal(Some 3L, next |> Option.map _.LastSeq)
    Assert.Equal<int64 list>([ 3L; 2L; 1L ], next.Value.Recent |> seqs)

let ``record: a message not newer than LastSeq is refused`` () =
    let history = historyOf 1L 5L

    Assert.Equal(None, Rooms.record (messageOf (RoomName "#dev") 5L "bob" 0L) history)
    Assert.Equal(None, Rooms.record (messageOf (RoomName "#dev") 2L "bob" 0L) history)

let ``record: a gap is accepted, the sequence goes on from the newest`` () =
    let next = Rooms.record (messageOf (RoomName "#dev") 9L "bob" 0L) (historyOf 1L 2L)

    Assert.Equal(Some 9L, next |> Option.map _.LastSeq)

let ``record: history keeps at most historyCapacity messages, the newest`` () =
    let count = int64 Rooms.historyCapacity + 100L

    let history = historyOf 1L count

    Assert.Equal(Rooms.historyCapacity, history.Recent.Length)
    Assert.Equal(count, history.LastSeq)
    Assert.Equal(count, history.Recent.Head.Seq)
    Assert.Equal(101L, (List.last history.Recent).Seq)

let ``since: the messages after a sequence number, oldest first`` () =
    let history = historyOf 1L 6L

    Assert.Equal<int64 list>([ 5L; 6L ], Rooms.since 4L history |> seqs)
    Assert.Equal<int64 list>([ 1L .. 6L ], Rooms.since 0L history |> seqs)
    Assert.Empty(Rooms.since 6L history)
    Assert.Empty(Rooms.since 99L history)

let ``last: the last n messages, oldest first`` () =
    let history = historyOf 1L 6L

    Assert.Equal<int64 list>([ 4L; 5L; 6L ], Rooms.last 3 history |> seqs)
    Assert.Equal<int64 list>([ 1L .. 6L ], Rooms.last 50 history |> seqs)
    Assert.Empty(Rooms.last 0 history)

let ``alreadySequenced: a retry is found by sender and client message id`` () =
    let history = historyOf 1L 6L
    let retry = { Room = (RoomName "#dev"); From = Nick "ann"; FromNode = 2; Text = "ann 4"; ClientMessageId = 4L }

    Assert.Equal(Some 4L, Rooms.alreadySequenced retry history |> Option.map _.Seq)
    Assert.Equal(None, Rooms.alreadySequenced { retry with From = Nick "bob" } history)
    Assert.Equal(None, Rooms.alreadySequenced { retry with ClientMessageId = 7L } history)

let ``alreadySequenced: id 0 means no id, and is never taken for a retry`` () =
    let history =
        (Rooms.record { messageOf (RoomName "#dev") 1L "ann" 0L with Text = "hi" } Rooms.emptyHistory).Value

    Assert.Equal(None, Rooms.alreadySequenced { Room = (RoomName "#dev"); From = Nick "ann"; FromNode = 1; Text = "hi"; ClientMessageId = 0L } history)

let ``sequence: the next number continues from the newest of the history and the assignment`` () =
    let post = { Room = (RoomName "#dev"); From = Nick "ann"; FromNode = 2; Text = "hi"; ClientMessageId = 9L }

    Assert.Equal(7L, (Rooms.sequence post { Owner = 1; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L } (historyOf 1L 6L)).Seq)
    Assert.Equal(41L, (Rooms.sequence post { Owner = 1; Epoch = 2L; Leader = 0; Version = 1; LastSeq = 40L } (historyOf 1L 6L)).Seq)
    Assert.Equal(1L, (Rooms.sequence post { Owner = 1; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L } Rooms.emptyHistory).Seq)

let ``sequence: the message keeps the post's room, sender, node, text and id`` () =
    let post = { Room = (RoomName "#dev"); From = Nick "ann"; FromNode = 2; Text = "hi"; ClientMessageId = 9L }

    let message = Rooms.sequence post { Owner = 1; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L } Rooms.emptyHistory

    Assert.Equal({ Room = (RoomName "#dev"); Seq = 1L; From = Nick "ann"; FromNode = 2; Text = "hi"; ClientMessageId = 9L }, message)

let ``validateRoomName: a valid name is accepted, in lower case`` (name: string, expected: string) =
    Assert.Equal(Ok(RoomName expected), Rooms.validateRoomName name)

let ``validateRoomName: an invalid name is refused with a reason`` (name: string) =
    match Rooms.validateRoomName name with
    | Ok room -> failwith $"accepted {room}"
    | Result.Error reason -> Assert.False(String.IsNullOrWhiteSpace reason)

// ---------------------------------------------------------------------------------------------
// Through Node.step: small clusters.

let private config = { ProtocolConfig.defaults with SuspectAfter = 3; Rebalance = None; HistoryOnJoin = 3 }

let private say (id: NodeId) (client: ClientId) (room: RoomName) (text: string) (messageId: int64) (net: Nodes.Net) =
    Nodes.request id client (Say(room.Value, text, messageId)) net

let private ownerOf (room: RoomName) (net: Nodes.Net) (node: NodeId) : NodeId option =
    net.States[node].Placements.TryFind room |> Option.map _.Owner

let private shownTexts (client: ClientId) (room: RoomName) (net: Nodes.Net) : (int64 * string) list =
    Nodes.shown client room net |> List.map (fun message -> message.Seq, message.Text)

let private errorsOf (client: ClientId) (net: Nodes.Net) : ErrorCode list =
    [ for reply in Nodes.inbox client net do
          match reply with
          | ErrorReply(code, _) -> code
          | _ -> () ]

/// Nodes 1, 2, 3 led by 3; ann on node 1 (client 10) owns #lobby, ben on 2 (20), cat on 3 (30).
let private threeWithUsers () : Nodes.Net = Nodes.threeWithUsers config

let ``a new room is placed by the leader on the node with the fewest rooms, then the fewest clients`` () =
    let net =
        Nodes.formed config [ 1; 2; 3 ]
        |> Nodes.connect 1 10 "ann"
        |> Nodes.settle
        |> Nodes.connect 1 11 "amy"
        |> Nodes.connect 2 20 "ben"
        |> Nodes.connect 3 30 "cat"
        |> Nodes.connect 3 31 "cid"
        |> Nodes.settle
        |> Nodes.tickAll
    for node in [ 1; 2; 3 ] do
        Assert.Equal(Some 1, ownerOf Rooms.lobby net node)

    // Nodes 2 and 3 own no room; node 2 has one client, node 3 two.
    let net = net |> Nodes.request 1 10 (Join "#dev") |> Nodes.settle
    for node in [ 1; 2; 3 ] do
        Assert.Equal(Some 2, ownerOf (RoomName "#dev") net node)

    // Now node 3 is the only node without a room, though it has the most clients but one.
    let net = net |> Nodes.request 2 20 (Join "#ops") |> Nodes.settle
    for node in [ 1; 2; 3 ] do
        Assert.Equal(Some 3, ownerOf (RoomName "#ops") net node)
        Assert.Equal(net.States[3].Coordination.Epoch, net.States[node].Placements[(RoomName "#ops")].Epoch)

let ``rooms lists every room with its owner and members`` () =
    let net = threeWithUsers () |> Nodes.request 2 20 (Join "#dev") |> Nodes.settle |> Nodes.clearInboxes

    let net = net |> Nodes.request 3 30 Rooms

    match Nodes.inbox 30 net with
    | [ RoomsListed rooms ] ->
        Assert.Equal<RoomSummary list>(
            [ { Room = (RoomName "#dev"); Owner = ownerOf (RoomName "#dev") net 3; Backup = (rooms |> List.find (fun r -> r.Room = (RoomName "#dev"))).Backup; Members = 1 }
              { Room = Rooms.lobby; Owner = Some 1; Backup = (rooms |> List.find (fun r -> r.Room = Rooms.lobby)).Backup; Members = 3 } ],
            rooms |> List.sortBy _.Room)
    | other -> failwith $"expected one RoomsListed, got {other}"

let ``members on three nodes see one order, with the same seqs and texts, under interleaved senders`` () =
    let random = Random 7
    let mutable net = threeWithUsers ()
    let senders = [ 1, 10L, "ann"; 2, 20L, "ben"; 3, 30L, "cat" ]
    for round in 1..5 do
        for node, client, nick in senders do
            net <- say node client Rooms.lobby $"{nick} {round}" (int64 round) net
            // Some messages arrive between the sends, in any order across the links.
            for _ in 1 .. random.Next 4 do
                net <- Nodes.deliverOneRandomly random net
    net <- Nodes.settleRandomly random net

    let seen = [ for _, client, _ in senders -> shownTexts client Rooms.lobby net ]
    Assert.Equal<int64 list>([ 1L .. 15L ], seen.Head |> List.map fst)
    for other in seen.Tail do
        Assert.Equal<(int64 * string) list>(seen.Head, other)
    Assert.Equal<Set<string>>(
        set [ for round in 1..5 do for _, _, nick in senders -> $"{nick} {round}" ],
        seen.Head |> List.map snd |> Set.ofList)

let ``join shows the last HistoryOnJoin messages of the room, oldest first`` () =
    let net =
        threeWithUsers ()
        |> Nodes.request 1 10 (Join "#dev")
        |> Nodes.settle
    let net = [ 1..5 ] |> List.fold (fun net n -> say 1 10 (RoomName "#dev") $"dev {n}" (int64 n) net |> Nodes.settle) net

    let net = net |> Nodes.clearInboxes |> Nodes.request 2 20 (Join "#dev") |> Nodes.settle

    match Nodes.inbox 20 net with
    | Joined((RoomName "#dev"), owner, 2) :: rest ->
        Assert.Equal(ownerOf (RoomName "#dev") net 2, owner)
        Assert.Equal<ServerReply list>([ for message in Nodes.shown 20 (RoomName "#dev") net -> Message message ], rest)
        Assert.Equal<(int64 * string) list>([ 3L, "dev 3"; 4L, "dev 4"; 5L, "dev 5" ], shownTexts 20 (RoomName "#dev") net)
    | other -> failwith $"expected Joined then the history, got {other}"

/// Nodes 1..5 led by 5, one user on each (ann on 1 is client 10, ..., node n's client is n * 10);
/// ann has joined #dev. The outsider is a node with a user that neither owns nor backs up #dev
/// nor leads: committed #dev messages go there only while it has a member in #dev.
let private fiveWithDev () : Nodes.Net * NodeId =
    let net = Nodes.formed config [ 1..5 ] |> Nodes.connect 1 10 "ann" |> Nodes.settle
    let net = [ 2..5 ] |> List.fold (fun net node -> Nodes.connect node (int64 (node * 10)) $"user{node}" net) net |> Nodes.settle
    let net = net |> Nodes.request 1 10 (Join "#dev") |> Nodes.settle |> Nodes.tickAll |> Nodes.tickAll
    let owner = net.States[1].Placements[(RoomName "#dev")].Owner
    let backup = net.States[owner].Backups[(RoomName "#dev")].Backup
    net, [ 2..4 ] |> List.find (fun node -> node <> owner && node <> backup)

let ``a node with no member in a room is sent none of its messages, and its first member is shown the current history, not its stale copy`` () =
    let net, outsider = fiveWithDev ()
    let client = int64 (outsider * 10)
    let net = net |> Nodes.request outsider client (Join "#dev") |> Nodes.settle
    let net = [ 1..2 ] |> List.fold (fun net n -> say 1 10 (RoomName "#dev") $"dev {n}" (int64 n) net |> Nodes.settle) net
    let net = net |> Nodes.request outsider client (ClientRequest.Leave "#dev") |> Nodes.settle
    let net = [ 3..5 ] |> List.fold (fun net n -> say 1 10 (RoomName "#dev") $"dev {n}" (int64 n) net |> Nodes.settle) net
    Assert.Equal(2L, (NodeState.historyOf (RoomName "#dev") net.States[outsider]).LastSeq) // its copy has grown stale

    let net = net |> Nodes.clearInboxes |> Nodes.request outsider client (Join "#dev")
    Assert.Empty(Nodes.shown client (RoomName "#dev") net) // nothing of the room before the owner answers
    let net = net |> Nodes.settle |> say 1 10 (RoomName "#dev") "dev 6" 6L |> Nodes.settle

    match Nodes.inbox client net with
    | Joined((RoomName "#dev"), _, 2) :: _ -> ()
    | other -> failwith $"expected Joined first, got {other}"
    Assert.Equal<(int64 * string) list>([ 3L, "dev 3"; 4L, "dev 4"; 5L, "dev 5"; 6L, "dev 6" ], shownTexts client (RoomName "#dev") net)

let ``a client resuming on a node with no member in the room is shown exactly the messages after its resume point`` () =
    let net, outsider = fiveWithDev ()
    let net = [ 1..6 ] |> List.fold (fun net n -> say 1 10 (RoomName "#dev") $"dev {n}" (int64 n) net |> Nodes.settle) net
    Assert.Equal(0L, (NodeState.historyOf (RoomName "#dev") net.States[outsider]).LastSeq)

    let net =
        net
        |> Nodes.apply outsider (ClientConnected(99, "eve-token"))
        |> Nodes.request outsider 99 (Hello { Nick = "eve"; Session = None; Resume = [ "#dev", 4L ]; Password = None })
        |> Nodes.settle
        |> say 1 10 (RoomName "#dev") "dev 7" 7L
        |> Nodes.settle

    Assert.Equal<(int64 * string) list>([ 5L, "dev 5"; 6L, "dev 6"; 7L, "dev 7" ], shownTexts 99 (RoomName "#dev") net)

let ``a post is acknowledged at its node also when the sender left the room before it was committed`` () =
    let net, outsider = fiveWithDev ()
    let client = int64 (outsider * 10)
    let net = net |> Nodes.request outsider client (Join "#dev") |> Nodes.settle

    // The post is on its way to the owner when its sender leaves: by the time the owner commits
    // it, the outsider has no member in #dev any more.
    let net = say outsider client (RoomName "#dev") "bye" 1L net |> Nodes.request outsider client (ClientRequest.Leave "#dev") |> Nodes.settle

    Assert.Equal<string list>([ "bye" ], shownTexts 10 (RoomName "#dev") net |> List.map snd)
    Assert.True(net.States[outsider].Unconfirmed.TryFind (RoomName "#dev") |> Option.forall _.IsEmpty)

let ``a room placed afresh on a node with no member in it continues with the history the leader hands over`` () =
    let net, outsider = fiveWithDev ()
    let net = [ 1..3 ] |> List.fold (fun net n -> say 1 10 (RoomName "#dev") $"dev {n}" (int64 n) net |> Nodes.settle) net
    let owner = net.States[1].Placements[(RoomName "#dev")].Owner
    let backup = net.States[owner].Backups[(RoomName "#dev")].Backup
    Assert.Equal(0L, (NodeState.historyOf (RoomName "#dev") net.States[outsider]).LastSeq)

    // Owner and backup both die (two faults; five nodes keep a majority): nothing to promote, the
    // leader places #dev afresh on a live node, maybe one that was sent none of it.
    let mutable net = net |> Nodes.crash owner |> Nodes.crash backup
    for _ in 1 .. 2 * config.SuspectAfter do
        net <- Nodes.tickAll net
    let placed = net.States[5].Placements[(RoomName "#dev")].Owner
    Assert.NotEqual(owner, placed)

    Assert.Equal<int64 list>([ 1L; 2L; 3L ], (NodeState.historyOf (RoomName "#dev") net.States[placed]).Recent |> List.rev |> List.map _.Seq)

let ``hello with a resume replays exactly the messages after the given seq, room by room`` () =
    let net = threeWithUsers () |> Nodes.request 1 10 (Join "#dev") |> Nodes.settle
    let net = [ 1..6 ] |> List.fold (fun net n -> say 1 10 Rooms.lobby $"lobby {n}" (int64 n) net |> Nodes.settle) net
    let net = [ 1..2 ] |> List.fold (fun net n -> say 1 10 (RoomName "#dev") $"dev {n}" (int64 (10 + n)) net |> Nodes.settle) net
    // Ann's node connection drops; her client had shown up to #lobby 4 and #dev 1.
    let net = net |> Nodes.apply 1 (ClientDisconnected 10) |> Nodes.settle

    let net =
        net
        |> Nodes.apply 3 (ClientConnected(31, "a-new-token"))
        |> Nodes.request 3 31 (Hello { Nick = "ann"; Session = Some(Nodes.sessionOf 10); Resume = [ Rooms.lobby.Value, 4L; "#dev", 1L ]; Password = None })
        |> Nodes.settle

    // The token rotates on a resume: the connection's own replaces the one it proved.
    Assert.Equal(Welcome(Nick "ann", 3, Some 3, "a-new-token"), (Nodes.inbox 31 net).Head)
    Assert.Equal<(int64 * string) list>([ 5L, "lobby 5"; 6L, "lobby 6" ], shownTexts 31 Rooms.lobby net)
    Assert.Equal<(int64 * string) list>([ 2L, "dev 2" ], shownTexts 31 (RoomName "#dev") net)
    Assert.Equal<Set<RoomName>>(set [ Rooms.lobby; (RoomName "#dev") ], (Chat.namedSession 31 net.States[3].Chat).Value.Rooms)

let ``a retried post with the same client message id is shown once, also when retried through another node`` () =
    let net = threeWithUsers ()
    Assert.Equal(Some 1, ownerOf Rooms.lobby net 3)

    // Cat's send and its retry leave node 3 before the owner answers the first.
    let net = net |> say 3 30 Rooms.lobby "once" 42L |> say 3 30 Rooms.lobby "once" 42L |> Nodes.settle
    // Cat fails over to node 2 having shown nothing, and sends it a third time.
    let net =
        net
        |> Nodes.apply 3 (ClientDisconnected 30)
        |> Nodes.settle
        |> Nodes.apply 2 (ClientConnected(21, "another-token"))
        |> Nodes.request 2 21 (Hello { Nick = "cat"; Session = Some(Nodes.sessionOf 30); Resume = [ Rooms.lobby.Value, 0L ]; Password = None })
        |> say 2 21 Rooms.lobby "once" 42L
        |> Nodes.settle

    for client in [ 10L; 20L; 30L; 21L ] do
        Assert.Equal<(int64 * string) list>([ 1L, "once" ], shownTexts client Rooms.lobby net)
    for node in [ 1; 2; 3 ] do
        Assert.Equal(1L, (NodeState.historyOf Rooms.lobby net.States[node]).LastSeq)
        Assert.True(net.States[node].Unconfirmed |> Map.forall (fun _ posts -> posts.IsEmpty), $"node {node} still waits")

/// Delivers everything in flight in the order sent, as Nodes.settle, but loses what `lost` picks.
let private settleLosing (lost: Nodes.InFlight -> bool) (net: Nodes.Net) : Nodes.Net =
    let rec loop (remaining: int) (net: Nodes.Net) =
        match net.InFlight |> List.filter (lost >> not) with
        | [] -> { net with InFlight = [] }
        | _ when remaining = 0 -> failwith "peer messages still flowing after 10000 deliveries"
        | message :: rest -> loop (remaining - 1) (Nodes.apply message.To (PeerMessageReceived message.Message) { net with InFlight = rest })
    loop 10_000 net

/// Owner 1 sequences cat's id-less post, but its commit does not reach `losers`; then node 1
/// crashes and node 2 takes #lobby over, holding the message committed or only as the backup's copy.
let private idlessPostResentAfterOwnerChange (losers: Set<NodeId>) () =
    let net = threeWithUsers ()
    Assert.Equal(Some 1, ownerOf Rooms.lobby net 3)
    Assert.Equal(2, net.States[1].Backups[Rooms.lobby].Backup)

    let commitLost (message: Nodes.InFlight) =
        losers.Contains message.To && (match message.Message with RoomSequenced _ -> true | _ -> false)
    let net = net |> say 3 30 Rooms.lobby "four" 0L |> settleLosing commitLost
    Assert.Equal((if losers.Contains 2 then 0L else 1L), (NodeState.historyOf Rooms.lobby net.States[2]).LastSeq)
    Assert.Equal(1, net.States[3].Unconfirmed[Rooms.lobby].Length)
    let net = [ 1 .. config.SuspectAfter ] |> List.fold (fun net _ -> Nodes.tickAll net) (Nodes.crash 1 net)

    // Node 3 sent the waiting post again to the new owner, which knew it by node 3's id for it.
    Assert.Equal(Some 2, ownerOf Rooms.lobby net 3)
    for node in [ 2; 3 ] do
        Assert.Equal(1L, (NodeState.historyOf Rooms.lobby net.States[node]).LastSeq)
        Assert.True(net.States[node].Unconfirmed |> Map.forall (fun _ posts -> posts.IsEmpty), $"node {node} still waits")
    for client in [ 20L; 30L ] do
        Assert.Equal<(int64 * string) list>([ 1L, "four" ], shownTexts client Rooms.lobby net)

let ``posts without an id (or with a negative one) get this node's ids: negative, distinct, and told apart from another node's`` () =
    // A client's ids are positive: a negative one counts as none, so it cannot pose as the node's.
    let net = threeWithUsers () |> say 3 30 Rooms.lobby "same" 0L |> say 3 30 Rooms.lobby "same" -1L |> Nodes.settle
    // Cat moves to node 2, whose counter gives the same numbers as node 3's did.
    let net =
        net
        |> Nodes.apply 3 (ClientDisconnected 30)
        |> Nodes.apply 2 (ClientConnected(21, "another-token"))
        |> Nodes.request 2 21 (Hello { Nick = "cat"; Session = Some(Nodes.sessionOf 30); Resume = [ Rooms.lobby.Value, 2L ]; Password = None })
        // The welcome waits for the leader's grant of the nick (NickRegistry).
        |> Nodes.settle
        |> say 2 21 Rooms.lobby "same" 0L
        |> Nodes.settle

    let messages = (NodeState.historyOf Rooms.lobby net.States[1]).Recent |> List.rev
    Assert.Equal<(int64 * NodeId * int64) list>(
        [ 1L, 3, -1L; 2L, 3, -2L; 3L, 2, -1L ],
        messages |> List.map (fun message -> message.Seq, message.FromNode, message.ClientMessageId))

let ``a post that reaches the new owner before the owner's own assignment waits there and is sequenced when it arrives`` () =
    // Node 2, following leader 3, has not heard yet that #dev is placed on it; node 1 has, and
    // sends ann's post (the links 3->2 and 1->2 race).
    let heartbeat (id: NodeId) (leader: NodeId option) =
        PeerMessageReceived(HeartbeatSent { From = Nodes.infoOf id; Epoch = 1L; Leader = leader; Load = Load.zero; Known = [] })
    let node2 =
        [ heartbeat 3 (Some 3); heartbeat 1 (Some 3) ]
        |> List.fold (fun state event -> fst (Node.step config state event)) (init (Nodes.infoOf 2))
    let post = { Room = (RoomName "#dev"); From = Nick "ann"; FromNode = 1; Text = "early"; ClientMessageId = 1L }

    let waiting, effects = Node.step config node2 (PeerMessageReceived(RoomPosted post))

    Assert.Contains(SendToPeer(Nodes.infoOf 3, PlacementRequested((RoomName "#dev"), 2)), effects)
    Assert.Equal<RoomPost list>([ post ], waiting.Unconfirmed[(RoomName "#dev")].Posts)

    let placed, _ = Node.step config waiting (PeerMessageReceived(RoomAssigned((RoomName "#dev"), { Owner = 2; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L })))

    let message = { Room = (RoomName "#dev"); Seq = 1L; From = Nick "ann"; FromNode = 1; Text = "early"; ClientMessageId = 1L }
    Assert.Equal<RoomMessage list>([ message ], placed.Primaries[(RoomName "#dev")].Pending.Messages)

    // It commits once the backup the leader assigned has stored it.
    let backup = { Backup = 3; Owner = 2; Epoch = 1L; Leader = 0; Version = 1 }
    let placed, effects =
        [ BackupAssigned((RoomName "#dev"), backup); ReplicaStored((RoomName "#dev"), backup, 1L) ]
        |> List.fold (fun (state, _) message -> Node.step config state (PeerMessageReceived message)) (placed, [])
    Assert.Contains(SendToPeer(Nodes.infoOf 1, RoomSequenced message), effects)
    Assert.Contains(SendToPeer(Nodes.infoOf 3, RoomSequenced message), effects)
    Assert.Empty(placed.Unconfirmed[(RoomName "#dev")])

let ``when the owner crashes the leader reassigns its rooms, and the new owner continues the sequence`` () =
    let net = threeWithUsers ()
    let net = [ 1..3 ] |> List.fold (fun net n -> say 1 10 Rooms.lobby $"before {n}" (int64 n) net |> Nodes.settle) net

    // Node 1, the owner of #lobby, stops without a word; 2 and 3 suspect it after K ticks.
    let net = [ 1 .. config.SuspectAfter ] |> List.fold (fun net _ -> Nodes.tickAll net) (Nodes.crash 1 net)

    for node in [ 2; 3 ] do
        Assert.False(net.States[node].Coordination.View.Contains 1)
        Assert.Equal(Some 2, ownerOf Rooms.lobby net node)
    Assert.Contains(Notice "#lobby moved to node 2 (node 1 is gone)", Nodes.inbox 30 net)

    let net = net |> say 3 30 Rooms.lobby "after" 9L |> Nodes.settle |> say 2 20 Rooms.lobby "after too" 3L |> Nodes.settle

    for client in [ 20L; 30L ] do
        Assert.Equal<(int64 * string) list>(
            [ 1L, "before 1"; 2L, "before 2"; 3L, "before 3"; 4L, "after"; 5L, "after too" ],
            shownTexts client Rooms.lobby net)

let ``when the owner leaves on purpose a later post gets the room placed again and sequenced by the new owner`` () =
    let net = threeWithUsers ()
    let net = [ 1..3 ] |> List.fold (fun net n -> say 1 10 Rooms.lobby $"before {n}" (int64 n) net |> Nodes.settle) net

    let net = net |> Nodes.apply 1 ShutdownRequested |> Nodes.settle
    for node in [ 2; 3 ] do
        Assert.False(net.States[node].Coordination.View.Contains 1)

    // No tick yet: the post itself asks the leader for a new owner, and waits for it.
    let net = net |> say 2 20 Rooms.lobby "after" 5L |> Nodes.settle

    for node in [ 2; 3 ] do
        Assert.Equal(Some 2, ownerOf Rooms.lobby net node)
    for client in [ 20L; 30L ] do
        Assert.Equal<(int64 * string) list>(
            [ 1L, "before 1"; 2L, "before 2"; 3L, "before 3"; 4L, "after" ],
            shownTexts client Rooms.lobby net)

let ``a node with 10 clients and a peer with none redirects the excess after K heartbeats, then waits for them to arrive`` () =
    let policy = { ThresholdPercent = 50; MaxRedirectsPerTick = 100 }
    let balancing = { config with Rebalance = Some policy }
    let clients = [ 100L .. 109L ]
    let net =
        clients
        |> List.fold (fun net client -> Nodes.connect 1 client $"user{client}" net) (Nodes.formed balancing [ 1; 2 ])
        |> Nodes.settle

    // The imbalance must last K heartbeats, so every load in them is current.
    let waiting = [ 1 .. balancing.SuspectAfter - 1 ] |> List.fold (fun net _ -> Nodes.tickAll net) net
    Assert.Empty(waiting.Closed)
    let net = Nodes.tickAll waiting

    // Fair share is 5 each: the 5 newest connections go.
    let moved = [ 105L .. 109L ]
    Assert.Equal<ClientId list>(moved, net.Closed |> Map.keys |> List.ofSeq)
    for client in moved do
        match List.rev (Nodes.inbox client net) with
        | Redirected(2, endpoint, reason) :: _ ->
            Assert.Equal((Nodes.infoOf 2).ClientEndpoint, endpoint)
            Assert.False(String.IsNullOrWhiteSpace reason)
        | other -> failwith $"expected a redirect to node 2 last, got {other}"
    Assert.Equal(0, net.States[1].OverloadedTicks)

    // The shell closes them; they never reach node 2, so node 1 still looks loaded. They count at
    // node 2 while they may still be on their way; then the imbalance must last K heartbeats again.
    let net = moved |> List.fold (fun net client -> Nodes.apply 1 (ClientDisconnected client) net) net |> Nodes.settle
    let patience = Rebalance.redirectArrivalTicks balancing + balancing.SuspectAfter
    let cooling = [ 1 .. patience - 1 ] |> List.fold (fun net _ -> Nodes.tickAll net) net
    Assert.Equal(moved.Length, cooling.Closed.Count)

    let after = Nodes.tickAll cooling
    Assert.True(after.Closed.Count > moved.Length, "an imbalance that lasts once the redirected clients cannot be on their way any more is acted on again")

let private balancing = { config with Rebalance = Some { ThresholdPercent = 50; MaxRedirectsPerTick = 100 } }

/// Nodes 1 and 2 with these clients all on node 1, after the K heartbeats that make node 1
/// redirect some: the net, and the clients it redirected (closed, not yet disconnected).
let private redirectedAfterK (clients: ClientId list) : Nodes.Net * ClientId list =
    let net =
        clients
        |> List.fold (fun net client -> Nodes.connect 1 client $"user{client}" net) (Nodes.formed balancing [ 1; 2 ])
        |> Nodes.settle
    let net = [ 1 .. balancing.SuspectAfter ] |> List.fold (fun net _ -> Nodes.tickAll net) net
    net, net.Closed |> Map.keys |> List.ofSeq

/// A redirected client reconnects to node 2 with its session, as the real client does.
let private reconnectToNode2 (resume: (string * int64) list) (client: ClientId) (net: Nodes.Net) : Nodes.Net =
    net
    |> Nodes.apply 2 (ClientConnected(client + 1000L, $"new-{client}"))
    |> Nodes.request 2 (client + 1000L) (Hello { Nick = $"user{client}"; Session = Some(Nodes.sessionOf client); Resume = resume; Password = None })

/// Flaky loopback test (RoomsOverLoopbackTests.A_node_joining_an_unbalanced_cluster_takes_clients_by_redirect):
/// redirected clients are counted at their target only once the registrar grants their nicknames,
/// which took longer than K heartbeats there, and node 1 sent node 2 more, falling to 2 of 8.
let ``rebalance: redirected clients count at their target until its heartbeats show them, so a slow target is sent no more`` () =
    let net, moved = redirectedAfterK [ 100L .. 107L ]
    Assert.Equal(4, moved.Length)
    Assert.Equal(Some { Target = 2; Expected = 4; TicksLeft = Rebalance.redirectArrivalTicks balancing }, net.States[1].Redirected)
    let net = moved |> List.fold (fun net client -> Nodes.apply 1 (ClientDisconnected client) net) net |> Nodes.settle

    // Still on their way (not yet welcomed at node 2) for more than K heartbeats: node 1, with its
    // fair share of 4, redirects no one else.
    let slow = [ 1 .. 2 * balancing.SuspectAfter ] |> List.fold (fun net _ -> Nodes.tickAll net) net
    Assert.Equal(moved.Length, slow.Closed.Count)
    Assert.Equal(4, slow.States[1].Chat.LocalNicks.Count)

    // They arrive; node 2's heartbeats show them, and node 1 stops counting them itself.
    let arrived =
        moved
        |> List.fold (fun net client -> reconnectToNode2 [] client net) slow
        |> Nodes.settle
        |> Nodes.tickAll
        |> Nodes.tickAll
    Assert.Equal(None, arrived.States[1].Redirected)
    Assert.Equal(moved.Length, arrived.Closed.Count)

let ``redirected clients that reconnect to the target leave the cluster balanced, with no further redirects`` () =
    let net, moved = redirectedAfterK [ 100L .. 109L ]
    Assert.NotEmpty(moved)

    let net =
        moved
        |> List.fold (fun net client -> net |> Nodes.apply 1 (ClientDisconnected client) |> reconnectToNode2 [ Rooms.lobby.Value, 0L ] client) net
        |> Nodes.settle
    let later = [ 1..10 ] |> List.fold (fun net _ -> Nodes.tickAll net) net

    Assert.Equal(moved.Length, later.Closed.Count)
    Assert.Equal(5, later.States[1].Chat.LocalNicks.Count)
    Assert.Equal(5, later.States[2].Chat.LocalNicks.Count)

/// Delivers what is in flight, in order, until a step at `node` welcomes `client`: that step's effects.
let rec private effectsOfWelcome (node: NodeId) (client: ClientId) (net: Nodes.Net) : Effect list * Nodes.Net =
    match net.InFlight with
    | [] -> failwith $"client {client} was never welcomed at node {node}"
    | message :: rest ->
        let event = PeerMessageReceived message.Message
        let _, effects = Node.step net.Config net.States[message.To] event
        let net = { net with InFlight = rest } |> Nodes.apply message.To event
        let welcomes = effects |> List.exists (function SendToClients(clients, Welcome _) -> clients.Contains client | _ -> false)
        if message.To = node && welcomes then effects, Nodes.settle net else effectsOfWelcome node client net

let ``hello with the session token of a connection still open on this node takes the nickname over and closes the old one`` () =
    let net = threeWithUsers () |> Nodes.apply 1 (ClientConnected(11, "token-11"))
    let hello = Hello { Nick = "ann"; Session = Some(Nodes.sessionOf 10); Resume = []; Password = None }

    // Welcomed on the registrar's grant (NickRegistry.fs), which the old connection's session already holds.
    let net = net |> Nodes.request 1 11 hello
    Assert.False(net.Closed.ContainsKey 10, "the old connection stays until the grant")
    let effects, net = effectsOfWelcome 1 11 net
    let next = net.States[1]

    let closeAt = effects |> List.findIndex (fun effect -> effect = CloseClient(10, "replaced by a new connection of the same user"))
    let welcomeAt = effects |> List.findIndex (fun effect -> effect = SendToClients(set [ 11L ], Welcome(Nick "ann", 1, Some 3, "token-11")))
    Assert.True(closeAt < welcomeAt, "the old connection is closed before the new one is welcomed")
    Assert.Equal(Some "replaced by a new connection of the same user", net.Closed.TryFind 10)
    Assert.Contains(Welcome(Nick "ann", 1, Some 3, "token-11"), net.Inbox[11])
    Assert.Equal(Some 11L, next.Chat.LocalNicks.TryFind(Nick "ann"))
    Assert.False(next.Chat.Sessions.ContainsKey 10)
    Assert.Equal<Set<ClientId>>(Set.singleton 11L, Chat.localMembers Rooms.lobby next.Chat)

let ``hello with the session token on another node closes the old connection where it was`` () =
    let net =
        threeWithUsers ()
        |> Nodes.apply 2 (ClientConnected(21, "token-21"))
        |> Nodes.request 2 21 (Hello { Nick = "ann"; Session = Some(Nodes.sessionOf 10); Resume = []; Password = None })
        |> Nodes.settle

    Assert.Equal(Some "continued on node 2", net.Closed.TryFind 10)
    Assert.Empty(errorsOf 21 net)
    Assert.False(net.States[1].Chat.Sessions.ContainsKey 10)
    for node in [ 1; 2; 3 ] do
        Assert.Equal(Some 2, net.States[node].Chat.Directory.TryFind(Nick "ann") |> Option.map _.Node)

let ``hello with a wrong session token for a nickname in use is refused with NickTaken`` () =
    let net =
        threeWithUsers ()
        |> Nodes.apply 2 (ClientConnected(21, "token-21"))
        |> Nodes.request 2 21 (Hello { Nick = "ann"; Session = Some "forged"; Resume = []; Password = None })
        |> Nodes.apply 1 (ClientConnected(11, "token-11"))
        |> Nodes.request 1 11 (Hello { Nick = "ann"; Session = Some "forged"; Resume = []; Password = None })
        |> Nodes.settle

    Assert.Equal<ErrorCode list>([ NickTaken ], errorsOf 21 net)
    Assert.Equal<ErrorCode list>([ NickTaken ], errorsOf 11 net)
    // The refused connections are closed; the nickname's own stays.
    Assert.Equal<Map<ClientId, string>>(Map.ofList [ 11L, "nick-taken"; 21L, "nick-taken" ], net.Closed)
    Assert.Equal(Some 10L, net.States[1].Chat.LocalNicks.TryFind(Nick "ann"))

/// Seed 167448822: node 1 gained its first #dev member before the leader's placement of the new
/// room reached it, and the owner's first committed message to it skipped numbers. The gap rule
/// marked a fill as asked (Replication.recvSequenced asks once), but with no owner known nothing
/// was sent; when the placement came, no one asked, and every later message waited behind the gap.
let ``applyAssignment: a fill marked as asked before the room's owner was known is asked of the owner once it is`` () =
    let state = (Nodes.formed config [ 1; 2; 3 ]).States[1]
    let skipping = { messageOf (RoomName "#dev") 3L "ben" 3L with FromNode = 2 }

    let state, asked = RoomReplica.onReplica (RoomName "#dev") (Replication.recvSequenced skipping) state
    Assert.True(state.FillsRequested.Contains(RoomName "#dev"))
    Assert.Empty(asked |> List.filter (function SendToPeer _ -> true | _ -> false))

    let placement = { Owner = 2; Epoch = state.Coordination.Epoch; Leader = 3; Version = 1; LastSeq = 0L }
    let _, effects = RoomPlacement.applyAssignment (RoomName "#dev") placement state

    Assert.Contains(SendToPeer(Nodes.infoOf 2, HistoryRequested(RoomName "#dev", 0L, 1)), effects)

// ---------------------------------------------------------------------------------------------
// Property: one order per room at every node, under random interleavings.

/// Each client's script, in order: join #dev, then say alternately in #dev and #lobby.
let private scriptOf (node: NodeId) (client: ClientId) (nick: string) (count: int) : (NodeId * ClientId * ClientRequest) list =
    (node, client, Join "#dev")
    :: [ for n in 1..count -> node, client, Say((if n % 2 = 0 then Rooms.lobby.Value else "#dev"), $"{nick} {n}", int64 n) ]

let private interleavedHistories =
    let property (seed: int) =
        let random = Random seed
        let net = threeWithUsers ()
        let count = 6
        let scripts =
            [ scriptOf 1 10 "ann" count; scriptOf 2 20 "ben" count; scriptOf 3 30 "cat" count ] |> List.map List.toArray
        let positions = Array.zeroCreate scripts.Length
        let mutable net = net
        while positions |> Array.mapi (fun index position -> position < scripts[index].Length) |> Array.exists id do
            if random.Next 3 = 0 || net.InFlight.IsEmpty then
                let ready = [ for index in 0 .. scripts.Length - 1 do if positions[index] < scripts[index].Length then index ]
                let index = ready[random.Next ready.Length]
                let node, client, request = scripts[index][positions[index]]
                positions[index] <- positions[index] + 1
                net <- Nodes.request node client request net
            else
                net <- Nodes.deliverOneRandomly random net
        net <- Nodes.settleRandomly random net

        for room, total in [ Rooms.lobby, 3 * (count / 2); (RoomName "#dev"), 3 * (count - count / 2) ] do
            let describe (messages: RoomMessage list) =
                messages |> List.map (fun message -> $"{message.Seq}:{message.Text}") |> String.concat ", "
            let histories = [ for node in 1..3 -> Rooms.since 0L (NodeState.historyOf room net.States[node]) ]
            let story =
                [ for node in 1..3 do
                      $"node {node}: owner {ownerOf room net node}, history [{describe histories[node - 1]}], waiting {net.States[node].Unconfirmed.TryFind room}" ]
                |> String.concat "\n"
            for other in histories.Tail do
                Assert.True((histories.Head = other), $"seed {seed}: {room} differs between nodes\n{story}")
            Assert.True((List.map _.Seq histories.Head = [ 1L .. int64 total ]), $"seed {seed}: {room} is not 1..{total}\n{story}")
            // A member that joined late saw the last HistoryOnJoin messages, then everything after:
            // a tail of the room's one history, with no gap and no duplicate, holding its own posts.
            for client, nick in [ 10L, "ann"; 20L, "ben"; 30L, "cat" ] do
                let shown = Nodes.shown client room net
                let history = histories.Head
                let tail = history |> List.skip (history.Length - shown.Length)
                let own = history |> List.filter (fun message -> message.From = Nick nick)
                Assert.True(
                    (shown = tail && own |> List.forall (fun message -> List.contains message shown)),
                    $"seed {seed}: client {client} saw {room} as [{describe shown}]\n{story}")

    property

/// 300 seeds drawn the same way every run, as the simulator's seeds are: a failure names its seed
/// and replays. (Random seeds found 167448822, below.)
let ``property: under random interleavings every node keeps the same history of every room, and every member sees a gapless tail of it`` () =
    let seeds = Random 7
    for _ in 1..300 do
        interleavedHistories (seeds.Next())

/// Found by the property above with random seeds (rarely: none of 10,000 others failed so):
/// node 1 ended with no history of #dev and ann's three posts still waiting, while nodes 2 and 3
/// held all nine messages. The owner's first message to node 1 skipped numbers before the leader's placement
/// reached node 1, so the fill it marked as asked went nowhere, and the placement's arrival did
/// not ask it (RoomPlacement.applyAssignment, RoomReplica.askNewOwner).
let ``regression seed 167448822: a member's node holds the history its own posts were committed into`` () =
    interleavedHistories 167448822

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "Rooms" [
        testCase "record: a newer message is kept and becomes LastSeq"
            ``record: a newer message is kept and becomes LastSeq``
        testCase "record: a message not newer than LastSeq is refused"
            ``record: a message not newer than LastSeq is refused``
        testCase "record: a gap is accepted, the sequence goes on from the newest"
            ``record: a gap is accepted, the sequence goes on from the newest``
        testCase "record: history keeps at most historyCapacity messages, the newest"
            ``record: history keeps at most historyCapacity messages, the newest``
        testCase "since: the messages after a sequence number, oldest first"
            ``since: the messages after a sequence number, oldest first``
        testCase "last: the last n messages, oldest first"
            ``last: the last n messages, oldest first``
        testCase "alreadySequenced: a retry is found by sender and client message id"
            ``alreadySequenced: a retry is found by sender and client message id``
        testCase "alreadySequenced: id 0 means no id, and is never taken for a retry"
            ``alreadySequenced: id 0 means no id, and is never taken for a retry``
        testCase "sequence: the next number continues from the newest of the history and the assignment"
            ``sequence: the next number continues from the newest of the history and the assignment``
        testCase "sequence: the message keeps the post's room, sender, node, text and id"
            ``sequence: the message keeps the post's room, sender, node, text and id``
        testTheory "validateRoomName: a valid name is accepted, in lower case"
            [ ("#general", "#general")
              ("#Dev", "#dev")
              ("#a", "#a")
              ("#under_score-dash9", "#under_score-dash9")
              ("#abcdefghijklmnopqrstuvwxyz012345", "#abcdefghijklmnopqrstuvwxyz012345") ]
            ``validateRoomName: a valid name is accepted, in lower case``
        testTheory "validateRoomName: an invalid name is refused with a reason"
            [ ""; "general"; "#"; "##"; "#two words"; "#émile"; "#abcdefghijklmnopqrstuvwxyz0123456" ]
            ``validateRoomName: an invalid name is refused with a reason``
        testCase "a new room is placed by the leader on the node with the fewest rooms, then the fewest clients"
            ``a new room is placed by the leader on the node with the fewest rooms, then the fewest clients``
        testCase "rooms lists every room with its owner and members"
            ``rooms lists every room with its owner and members``
        testCase "members on three nodes see one order, with the same seqs and texts, under interleaved senders"
            ``members on three nodes see one order, with the same seqs and texts, under interleaved senders``
        testCase "join shows the last HistoryOnJoin messages of the room, oldest first"
            ``join shows the last HistoryOnJoin messages of the room, oldest first``
        testCase "a node with no member in a room is sent none of its messages, and its first member is shown the current history, not its stale copy"
            ``a node with no member in a room is sent none of its messages, and its first member is shown the current history, not its stale copy``
        testCase "a client resuming on a node with no member in the room is shown exactly the messages after its resume point"
            ``a client resuming on a node with no member in the room is shown exactly the messages after its resume point``
        testCase "a post is acknowledged at its node also when the sender left the room before it was committed"
            ``a post is acknowledged at its node also when the sender left the room before it was committed``
        testCase "a room placed afresh on a node with no member in it continues with the history the leader hands over"
            ``a room placed afresh on a node with no member in it continues with the history the leader hands over``
        testCase "hello with a resume replays exactly the messages after the given seq, room by room"
            ``hello with a resume replays exactly the messages after the given seq, room by room``
        testCase "a retried post with the same client message id is shown once, also when retried through another node"
            ``a retried post with the same client message id is shown once, also when retried through another node``
        testCase "a post without an id sent again after an owner change is sequenced once (new owner had it committed)"
            (idlessPostResentAfterOwnerChange (set [ 3 ]))
        testCase "a post without an id sent again after an owner change is sequenced once (new owner had the backup's copy)"
            (idlessPostResentAfterOwnerChange (set [ 2; 3 ]))
        testCase "posts without an id (or with a negative one) get this node's ids: negative, distinct, and told apart from another node's"
            ``posts without an id (or with a negative one) get this node's ids: negative, distinct, and told apart from another node's``
        testCase "a post that reaches the new owner before the owner's own assignment waits there and is sequenced when it arrives"
            ``a post that reaches the new owner before the owner's own assignment waits there and is sequenced when it arrives``
        testCase "when the owner crashes the leader reassigns its rooms, and the new owner continues the sequence"
            ``when the owner crashes the leader reassigns its rooms, and the new owner continues the sequence``
        testCase "when the owner leaves on purpose a later post gets the room placed again and sequenced by the new owner"
            ``when the owner leaves on purpose a later post gets the room placed again and sequenced by the new owner``
        testCase "a node with 10 clients and a peer with none redirects the excess after K heartbeats, then waits for them to arrive"
            ``a node with 10 clients and a peer with none redirects the excess after K heartbeats, then waits for them to arrive``
        testCase "rebalance: redirected clients count at their target until its heartbeats show them, so a slow target is sent no more"
            ``rebalance: redirected clients count at their target until its heartbeats show them, so a slow target is sent no more``
        testCase "redirected clients that reconnect to the target leave the cluster balanced, with no further redirects"
            ``redirected clients that reconnect to the target leave the cluster balanced, with no further redirects``
        testCase "hello with the session token of a connection still open on this node takes the nickname over and closes the old one"
            ``hello with the session token of a connection still open on this node takes the nickname over and closes the old one``
        testCase "hello with the session token on another node closes the old connection where it was"
            ``hello with the session token on another node closes the old connection where it was``
        testCase "hello with a wrong session token for a nickname in use is refused with NickTaken"
            ``hello with a wrong session token for a nickname in use is refused with NickTaken``
        testCase "property: under random interleavings every node keeps the same history of every room, and every member sees a gapless tail of it"
            ``property: under random interleavings every node keeps the same history of every room, and every member sees a gapless tail of it``
        testCase "applyAssignment: a fill marked as asked before the room's owner was known is asked of the owner once it is"
            ``applyAssignment: a fill marked as asked before the room's owner was known is asked of the owner once it is``
        testCase "regression seed 167448822: a member's node holds the history its own posts were committed into"
            ``regression seed 167448822: a member's node holds the history its own posts were committed into``
    ]
