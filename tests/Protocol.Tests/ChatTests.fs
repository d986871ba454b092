/// Chat through the one entry point Node.step: nicknames, broadcast, private messages, the user
/// directory, limits, heartbeats on tick and a graceful leave.
module FormalChat.Protocol.Tests.ChatTests

open FormalChat.Protocol
open FormalChat.Protocol.Node
open Xunit

let private config = { ProtocolConfig.defaults with SuspectAfter = 3 }

let private infoOf (id: NodeId) : NodeInfo =
    { Id = id
      ClientEndpoint = { Host = "127.0.0.1"; Port = 5000 + id }
      PeerEndpoint = { Host = "127.0.0.1"; Port = 6000 + id } }

let private heartbeatFrom (id: NodeId) : Event =
    PeerMessageReceived(
        HeartbeatSent
            { From = infoOf id
              Epoch = 0
              Leader = None
              Load = Load.zero
              Known = [] }
    )

/// Runs events in order and returns the final state and the effects of the last event only.
let private run (events: Event list) (state: NodeState) : NodeState * Effect list =
    events |> List.fold (fun (state, _) event -> step config state event) (state, [])

let private steps (events: Event list) (state: NodeState) : NodeState = fst (run events state)

/// Node 1 with peers 2 and 3 in its view.
let private nodeWithPeers () : NodeState =
    init (infoOf 1) |> steps [ heartbeatFrom 2; heartbeatFrom 3 ]

let private connectAs (client: ClientId) (nick: string) : Event list =
    [ ClientConnected client; ClientRequested(client, Hello nick) ]

let private repliesTo (client: ClientId) (effects: Effect list) : ServerReply list =
    [ for effect in effects do
          match effect with
          | SendToClients(clients, reply) when List.contains client clients -> reply
          | _ -> () ]

let private errorCodes (client: ClientId) (effects: Effect list) : ErrorCode list =
    [ for reply in repliesTo client effects do
          match reply with
          | Error(code, reason) ->
              Assert.False(System.String.IsNullOrWhiteSpace reason, "every error has a reason")
              code
          | _ -> () ]

let private peerSends (effects: Effect list) : (NodeId * PeerMessage) list =
    [ for effect in effects do
          match effect with
          | SendToPeer(info, message) -> info.Id, message
          | _ -> () ]

let private whoFor (client: ClientId) (state: NodeState) : UserEntry list =
    let _, effects = step config state (ClientRequested(client, Who))
    match repliesTo client effects with
    | [ WhoListed users ] -> users
    | other -> failwith $"expected one WhoListed, got {other}"

// ---------------------------------------------------------------------------------------------
// Hello.

[<Fact>]
let ``hello with a valid nickname is welcomed with the node id and the leader`` () =
    let state = init (infoOf 1) |> steps [ ClientConnected 10 ]

    let next, effects = step config state (ClientRequested(10, Hello "alice"))

    Assert.Contains(Welcome("alice", 1, None), repliesTo 10 effects)
    Assert.Equal(Some "alice", Chat.nickOf 10 next.Chat)
    Assert.Equal(Some 1, next.Chat.Directory.TryFind "alice")

[<Fact>]
let ``hello announces the new user to every live peer`` () =
    let state = nodeWithPeers ()

    let _, effects = run (connectAs 10 "alice") state

    Assert.Equal<(NodeId * PeerMessage) list>([ 2, UserJoined("alice", 1); 3, UserJoined("alice", 1) ], peerSends effects)

[<Fact>]
let ``hello with a nickname already used on this node is refused with NickTaken`` () =
    let state = init (infoOf 1) |> steps (connectAs 10 "alice" @ [ ClientConnected 11 ])

    let next, effects = step config state (ClientRequested(11, Hello "alice"))

    Assert.Equal<ErrorCode list>([ NickTaken ], errorCodes 11 effects)
    Assert.Equal(None, Chat.nickOf 11 next.Chat)
    Assert.Equal(Some "alice", Chat.nickOf 10 next.Chat)

[<Fact>]
let ``hello with a nickname known on another node is refused with NickTaken`` () =
    let state =
        nodeWithPeers () |> steps [ PeerMessageReceived(UserJoined("bob", 2)); ClientConnected 10 ]

    let _, effects = step config state (ClientRequested(10, Hello "bob"))

    Assert.Equal<ErrorCode list>([ NickTaken ], errorCodes 10 effects)

[<Theory>]
[<InlineData("")>]
[<InlineData("has space")>]
[<InlineData("semi;colon")>]
[<InlineData("émile")>]
[<InlineData("abcdefghijklmnopqrstuvwxyz0123456")>]
let ``hello with an invalid nickname is refused with NickInvalid`` (nick: string) =
    let state = init (infoOf 1) |> steps [ ClientConnected 10 ]

    let next, effects = step config state (ClientRequested(10, Hello nick))

    Assert.Equal<ErrorCode list>([ NickInvalid ], errorCodes 10 effects)
    Assert.Equal(None, Chat.nickOf 10 next.Chat)

[<Fact>]
let ``a second hello on the same connection is refused with AlreadyHello`` () =
    let state = init (infoOf 1) |> steps (connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, Hello "alicia"))

    Assert.Equal<ErrorCode list>([ AlreadyHello ], errorCodes 10 effects)

[<Fact>]
let ``every request but hello and quit before hello is refused with HelloFirst`` () =
    let state = init (infoOf 1) |> steps [ ClientConnected 10 ]

    for request in [ Say "hi"; Whisper("bob", "hi"); Who; Status ] do
        let next, effects = step config state (ClientRequested(10, request))
        Assert.Equal<ErrorCode list>([ HelloFirst ], errorCodes 10 effects)
        Assert.Equal(state, next)

// ---------------------------------------------------------------------------------------------
// Say and Whisper.

[<Fact>]
let ``say goes to every named local client and is forwarded to every live peer`` () =
    let state =
        nodeWithPeers () |> steps (connectAs 10 "alice" @ connectAs 11 "carol" @ [ ClientConnected 12 ])

    let _, effects = step config state (ClientRequested(10, Say "hello, world"))

    let line = { ChatLine.From = "alice"; FromNode = 1; Text = "hello, world" }
    let toClients =
        [ for effect in effects do
              match effect with
              | SendToClients(clients, Message sent) -> List.sort clients, sent
              | _ -> () ]
    Assert.Equal<(ClientId list * ChatLine) list>([ [ 10L; 11L ], line ], toClients)
    Assert.Equal<(NodeId * PeerMessage) list>([ 2, BroadcastForwarded line; 3, BroadcastForwarded line ], peerSends effects)

[<Fact>]
let ``say is not forwarded to a peer that left`` () =
    let state =
        nodeWithPeers () |> steps (PeerMessageReceived(LeaveAnnounced 3) :: connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, Say "hi"))

    Assert.Equal<NodeId list>([ 2 ], peerSends effects |> List.map fst)

[<Fact>]
let ``a forwarded broadcast is delivered to every named local client`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice" @ connectAs 11 "carol")
    let line = { ChatLine.From = "bob"; FromNode = 2; Text = "hi all" }

    let _, effects = step config state (PeerMessageReceived(BroadcastForwarded line))

    Assert.Equal<Effect list>([ SendToClients([ 10L; 11L ], Message line) ], effects)

[<Theory>]
[<InlineData("")>]
[<InlineData("   ")>]
[<InlineData("two\nlines")>]
let ``say with empty or multi-line text is refused with TextInvalid`` (text: string) =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, Say text))

    Assert.Equal<ErrorCode list>([ TextInvalid ], errorCodes 10 effects)
    Assert.Empty(peerSends effects)

[<Fact>]
let ``whisper to a user on another node is forwarded to that node only and echoed to the sender`` () =
    let state =
        nodeWithPeers () |> steps (PeerMessageReceived(UserJoined("bob", 3)) :: connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, Whisper("bob", "psst")))

    let line = { PrivateLine.From = "alice"; FromNode = 1; To = "bob"; Text = "psst" }
    Assert.Equal<(NodeId * PeerMessage) list>([ 3, PrivateForwarded line ], peerSends effects)
    Assert.Equal<ServerReply list>([ Private line ], repliesTo 10 effects)

[<Fact>]
let ``whisper to a user on this node goes to that user and is echoed to the sender`` () =
    let state = init (infoOf 1) |> steps (connectAs 10 "alice" @ connectAs 11 "carol")

    let _, effects = step config state (ClientRequested(10, Whisper("carol", "psst")))

    let line = { PrivateLine.From = "alice"; FromNode = 1; To = "carol"; Text = "psst" }
    Assert.Equal<ServerReply list>([ Private line ], repliesTo 11 effects)
    Assert.Equal<ServerReply list>([ Private line ], repliesTo 10 effects)
    Assert.Empty(peerSends effects)

[<Fact>]
let ``a forwarded private message reaches only its addressee`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice" @ connectAs 11 "carol")
    let line = { PrivateLine.From = "bob"; FromNode = 2; To = "carol"; Text = "psst" }

    let _, effects = step config state (PeerMessageReceived(PrivateForwarded line))

    Assert.Equal<Effect list>([ SendToClients([ 11L ], Private line) ], effects)

[<Fact>]
let ``whisper to an unknown nickname is refused with NoSuchUser`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, Whisper("nobody", "psst")))

    Assert.Equal<ErrorCode list>([ NoSuchUser ], errorCodes 10 effects)
    Assert.Empty(peerSends effects)

// ---------------------------------------------------------------------------------------------
// The directory: disconnects, peers' users, suspicion.

[<Fact>]
let ``disconnect tells every peer the user left and removes the user from the directory`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice" @ connectAs 11 "carol")

    let next, effects = step config state (ClientDisconnected 10)

    Assert.Equal<(NodeId * PeerMessage) list>([ 2, UserLeft("alice", 1); 3, UserLeft("alice", 1) ], peerSends effects)
    Assert.Equal(None, next.Chat.Directory.TryFind "alice")
    Assert.DoesNotContain({ Nick = "alice"; Node = 1 }, whoFor 11 next)
    Assert.Equal(None, Chat.nickOf 10 next.Chat)

[<Fact>]
let ``quit says goodbye to the peers and closes the connection last`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice")

    let next, effects = step config state (ClientRequested(10, Quit))

    Assert.Equal<(NodeId * PeerMessage) list>([ 2, UserLeft("alice", 1); 3, UserLeft("alice", 1) ], peerSends effects)
    Assert.Equal(CloseClient(10, "bye"), List.last effects)
    Assert.False(next.Chat.Sessions.ContainsKey 10)

[<Fact>]
let ``who lists users of this node and of peers, and a peer's departed user disappears`` () =
    let state =
        nodeWithPeers ()
        |> steps (PeerMessageReceived(UserJoined("bob", 2)) :: PeerMessageReceived(UserJoined("dave", 3)) :: connectAs 10 "alice")

    let users = whoFor 10 state
    let afterLeft = steps [ PeerMessageReceived(UserLeft("bob", 2)) ] state

    Assert.Equal<UserEntry list>(
        [ { Nick = "alice"; Node = 1 }; { Nick = "bob"; Node = 2 }; { Nick = "dave"; Node = 3 } ],
        users |> List.sortBy (fun user -> user.Nick))
    Assert.DoesNotContain({ Nick = "bob"; Node = 2 }, whoFor 10 afterLeft)

[<Fact>]
let ``a UserLeft naming another node than the directory's does not remove the user`` () =
    let state = nodeWithPeers () |> steps (PeerMessageReceived(UserJoined("bob", 2)) :: connectAs 10 "alice")

    let next = steps [ PeerMessageReceived(UserLeft("bob", 3)) ] state

    Assert.Contains({ Nick = "bob"; Node = 2 }, whoFor 10 next)

[<Fact>]
let ``the users of a suspected node disappear from who`` () =
    let state =
        nodeWithPeers ()
        |> steps (PeerMessageReceived(UserJoined("bob", 2)) :: PeerMessageReceived(UserJoined("dave", 3)) :: connectAs 10 "alice")

    // Node 3 keeps heartbeating, node 2 falls silent for K ticks.
    let suspected =
        state |> steps [ for _ in 1 .. config.SuspectAfter do yield Ticked; yield heartbeatFrom 3 ]

    Assert.False(suspected.Coordination.View.Contains 2)
    Assert.Equal<UserEntry list>(
        [ { Nick = "alice"; Node = 1 }; { Nick = "dave"; Node = 3 } ],
        whoFor 10 suspected |> List.sortBy (fun user -> user.Nick))

[<Fact>]
let ``a node that joins the view is sent the list of local users`` () =
    let state = init (infoOf 1) |> steps (connectAs 10 "alice" @ connectAs 11 "carol")

    let _, effects = step config state (heartbeatFrom 2)

    match peerSends effects with
    | [ 2, UsersListed(1, nicks) ] -> Assert.Equal<string list>([ "alice"; "carol" ], List.sort nicks)
    | other -> failwith $"expected one UsersListed to node 2, got {other}"

[<Fact(Skip = "Protocol.FSharp bug, see report: a peer that only one side suspected never re-sends its users")>]
let ``after a one-sided suspicion heals, the peer's users are back in who`` () =
    // Node 1 suspects node 2 (its heartbeats were lost), while node 2 never stopped hearing node 1.
    let state =
        nodeWithPeers ()
        |> steps (PeerMessageReceived(UserJoined("bob", 2)) :: connectAs 10 "alice")
        |> steps [ for _ in 1 .. config.SuspectAfter do yield Ticked; yield heartbeatFrom 3 ]
    Assert.False(state.Coordination.View.Contains 2)

    // Node 2's heartbeats get through again. Node 2 saw no view change, so per Node.fs it sends
    // nothing more; node 1 must nevertheless learn bob again.
    let healed = state |> steps [ heartbeatFrom 2 ]

    Assert.True(healed.Coordination.View.Contains 2)
    Assert.Contains({ Nick = "bob"; Node = 2 }, whoFor 10 healed)

/// Two or more nodes wired together: every SendToPeer effect is delivered to its node, in order,
/// until nothing is left (heartbeats are delivered by the test, multicasts are dropped).
let private relay (nodes: Map<NodeId, NodeState>) (pending: (NodeId * PeerMessage) list) : Map<NodeId, NodeState> =
    let rec loop (remaining: int) (nodes: Map<NodeId, NodeState>) (pending: (NodeId * PeerMessage) list) =
        match pending with
        | [] -> nodes
        | _ when remaining = 0 -> failwith "peer messages still flowing after 1000 deliveries"
        | (target, message) :: rest ->
            match nodes.TryFind target with
            | None -> loop (remaining - 1) nodes rest
            | Some state ->
                let next, effects = step config state (PeerMessageReceived message)
                loop (remaining - 1) (nodes.Add(target, next)) (rest @ peerSends effects)
    loop 1000 nodes pending

/// Runs one event at one node and relays the peer messages it causes.
let private at (id: NodeId) (event: Event) (nodes: Map<NodeId, NodeState>) : Map<NodeId, NodeState> =
    let next, effects = step config nodes[id] event
    relay (nodes.Add(id, next)) (peerSends effects)

[<Fact>]
let ``two nodes that meet exchange their users, and a new user is known on both`` () =
    let nodes =
        Map.ofList [ 1, init (infoOf 1) |> steps (connectAs 10 "alice"); 2, init (infoOf 2) ]
        |> at 1 (heartbeatFrom 2)
        |> at 2 (heartbeatFrom 1)
        |> at 2 (ClientConnected 20)
        |> at 2 (ClientRequested(20, Hello "bob"))

    for id in [ 1; 2 ] do
        Assert.Equal<Map<string, NodeId>>(Map.ofList [ "alice", 1; "bob", 2 ], nodes[id].Chat.Directory)

[<Fact(Skip = "Protocol.FSharp bug, see report: a node restarted before it was suspected is never told the others' users")>]
let ``a node restarted before it was suspected learns who is online elsewhere and refuses their nicknames`` () =
    let met =
        Map.ofList [ 1, init (infoOf 1) |> steps (connectAs 10 "alice"); 2, init (infoOf 2) ]
        |> at 1 (heartbeatFrom 2)
        |> at 2 (heartbeatFrom 1)
    Assert.Equal(Some 1, met[2].Chat.Directory.TryFind "alice")

    // kill -9 of node 2 and a restart within K intervals: node 1 never suspects it.
    let restarted = met.Add(2, init (infoOf 2)) |> at 2 (heartbeatFrom 1) |> at 1 (heartbeatFrom 2)
    Assert.True(restarted[1].Coordination.View.Contains 2)

    Assert.Equal(Some 1, restarted[2].Chat.Directory.TryFind "alice")
    let _, effects = restarted[2] |> run (connectAs 20 "alice")
    Assert.Equal<ErrorCode list>([ NickTaken ], errorCodes 20 effects)

// ---------------------------------------------------------------------------------------------
// Limits.

[<Fact>]
let ``a connection beyond MaxClients is refused with ServerFull and closed`` () =
    let limited = { config with MaxClients = 2 }
    let state =
        [ ClientConnected 10; ClientRequested(10, Hello "alice"); ClientConnected 11 ]
        |> List.fold (fun state event -> fst (step limited state event)) (init (infoOf 1))

    let next, effects = step limited state (ClientConnected 12)

    Assert.Equal<ErrorCode list>([ ServerFull ], errorCodes 12 effects)
    Assert.Contains(effects, fun effect -> match effect with CloseClient(12L, _) -> true | _ -> false)
    Assert.False(next.Chat.Sessions.ContainsKey 12)

// ---------------------------------------------------------------------------------------------
// Time and shutdown.

[<Fact>]
let ``a tick multicasts this node's heartbeat before any other effect`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice")

    let next, effects = step config state Ticked

    match effects with
    | Multicast(HeartbeatSent heartbeat) :: _ ->
        Assert.Equal(infoOf 1, heartbeat.From)
        Assert.Equal(next.Coordination.Epoch, heartbeat.Epoch)
        Assert.Equal(1, heartbeat.Load.Clients)
        Assert.Equal<NodeId list>([ 2; 3 ], heartbeat.Known |> List.map (fun info -> info.Id) |> List.sort)
    | other -> failwith $"expected a heartbeat first, got {other}"

[<Fact>]
let ``no election while the node listens for its first intervals, an election on the tick that ends them`` () =
    let listening = List.replicate (listenTicksBeforeElection - 1) Ticked
    let state = nodeWithPeers () |> steps listening
    Assert.False state.Coordination.Participant
    Assert.Equal(0, state.Coordination.Epoch)

    let next, effects = step config state Ticked

    Assert.True next.Coordination.Participant
    Assert.Contains((2, Election { Candidate = 1; Epoch = 1 }), peerSends effects)

[<Fact>]
let ``a node alone elects itself once it has listened`` () =
    let next = init (infoOf 4) |> steps (List.replicate listenTicksBeforeElection Ticked)

    Assert.Equal(Some 4, next.Coordination.Leader)
    Assert.Equal(1, next.Coordination.Epoch)
    Assert.False next.Coordination.Participant

[<Fact>]
let ``shutdown announces the leave to every peer, then stops, and later events do nothing`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice")

    let stopped, effects = step config state ShutdownRequested

    Assert.Equal<(NodeId * PeerMessage) list>([ 2, LeaveAnnounced 1; 3, LeaveAnnounced 1 ], peerSends effects)
    Assert.Equal(Stop, List.last effects)
    let lastLeave = effects |> List.findIndexBack (fun effect -> match effect with SendToPeer _ -> true | _ -> false)
    Assert.True(lastLeave < List.length effects - 1)
    for event in [ Ticked; heartbeatFrom 2; ClientConnected 11; ClientRequested(10, Say "hi"); ShutdownRequested ] do
        Assert.Equal((stopped, []), step config stopped event)
