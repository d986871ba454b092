/// Chat through the one entry point Node.step: nicknames and sessions, broadcast (a say to
/// #lobby, sequenced by the room's owner), private messages, the user directory, limits,
/// heartbeats on tick and a graceful leave.
module FormalChat.Protocol.Tests.ChatTests

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.Node
open Xunit

let private config = { ProtocolConfig.defaults with SuspectAfter = 3; Rebalance = None }

let private infoOf (id: NodeId) : NodeInfo = Simulation.Nodes.infoOf id

let private heartbeatFrom (id: NodeId) : Event =
    PeerMessageReceived(
        HeartbeatSent
            { From = infoOf id
              Epoch = 0L
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

let private sessionOf (client: ClientId) = Simulation.Nodes.sessionOf client

let private helloAs (nick: string) = Hello { Nick = nick; Session = None; Resume = []; Password = None }

/// The nickname registrar these nodes follow (NickRegistry.fs): node 3 in epoch 0, told to the
/// node by its request for a report, so the node's coordination is left as each test sets it.
let private registrarTerm : NickTerm = { Epoch = 0L; Leader = 3 }

let private followsRegistrar = PeerMessageReceived(NicksRequested registrarTerm)

/// The registrar's grant of the client's hello.
let private granted (client: ClientId) (nick: string) : Event =
    PeerMessageReceived(NickGranted { Nick = Nick nick; Session = sessionOf client; Previous = None; Node = 1; Term = registrarTerm })

/// A hello, up to the claim sent to the registrar.
let private helloEvents (client: ClientId) (nick: string) : Event list =
    [ ClientConnected(client, sessionOf client); followsRegistrar; ClientRequested(client, helloAs nick) ]

/// A hello the registrar grants.
let private connectAs (client: ClientId) (nick: string) : Event list = helloEvents client nick @ [ granted client nick ]

/// The leader has placed #lobby on `owner` (epoch 1, nothing sequenced yet).
let private lobbyOn (owner: NodeId) : Event =
    PeerMessageReceived(RoomAssigned(Rooms.lobby, { Owner = owner; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L }))

/// Node 1, the owner of #lobby, has a backup on `backup` that confirmed the room's state: what
/// node 1 sequences commits once the backup confirms it (an owner with live peers never commits
/// alone).
let private lobbyBackedBy (backup: NodeId) : Event list =
    [ PeerMessageReceived(BackupAssigned(Rooms.lobby, { Backup = backup; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }))
      PeerMessageReceived(ReplicaStored(Rooms.lobby, { Backup = backup; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }, 0L)) ]

let private repliesTo (client: ClientId) (effects: Effect list) : ServerReply list =
    [ for effect in effects do
          match effect with
          | SendToClients(clients, reply) when clients.Contains client -> reply
          | _ -> () ]

let private errorCodes (client: ClientId) (effects: Effect list) : ErrorCode list =
    [ for reply in repliesTo client effects do
          match reply with
          | ErrorReply(code, reason) ->
              Assert.False(System.String.IsNullOrWhiteSpace reason, "every error has a reason")
              code
          | _ -> () ]

let private peerSends (effects: Effect list) : (NodeId * PeerMessage) list =
    [ for effect in effects do
          match effect with
          | SendToPeer(info, message) -> info.Id, message
          | _ -> () ]

let private nickOf (client: ClientId) (state: NodeState) : string option =
    Chat.namedSession client state.Chat |> Option.map _.Nick.Value

let private nodeOf (nick: string) (state: NodeState) : NodeId option =
    state.Chat.Directory.TryFind(Nick nick) |> Option.map _.Node

let private whoFor (client: ClientId) (state: NodeState) : UserEntry list =
    let _, effects = step config state (ClientRequested(client, Who None))
    match repliesTo client effects with
    | [ WhoListed(None, users) ] -> users
    | other -> failwith $"expected one WhoListed, got {other}"

/// The owner's answer to this node's request for #lobby's history (nothing sequenced yet): the
/// clients that said hello while this node had no member there see the room from here on.
let private lobbyHistoryShared : Event = PeerMessageReceived(HistoryShared(Rooms.lobby, []))

let private inLobby (nick: string) (node: NodeId) : UserEntry = { Nick = Nick nick; Node = node; Rooms = [ Rooms.lobby ] }

let private known (nick: string) (node: NodeId) : KnownUser = { User = inLobby nick node; Session = $"session-of-{nick}" }

// ---------------------------------------------------------------------------------------------
// Hello.

let ``hello with a valid nickname is welcomed with the node id, the leader and the connection's session`` () =
    let state = init (infoOf 1) |> steps (helloEvents 10 "alice")

    let next, effects = step config state (granted 10 "alice")

    Assert.Contains(Welcome(Nick "alice", 1, None, sessionOf 10), repliesTo 10 effects)
    Assert.Equal(Some "alice", nickOf 10 next)
    Assert.Equal(Some 1, nodeOf "alice" next)

let ``hello puts the client in #lobby`` () =
    let state = init (infoOf 1) |> steps (helloEvents 10 "alice")

    let next, effects = step config state (granted 10 "alice")

    Assert.Contains(Joined(Rooms.lobby, None, 1), repliesTo 10 effects)
    Assert.Equal<Set<ClientId>>(Set.singleton 10L, Chat.localMembers Rooms.lobby next.Chat)

let ``hello announces the new user, with its rooms and session, to every live peer`` () =
    let state = nodeWithPeers ()

    let _, effects = run (connectAs 10 "alice") state

    let alice = { User = inLobby "alice" 1; Session = sessionOf 10 }
    Assert.Equal<(NodeId * PeerMessage) list>([ 2, UserJoined(alice, None); 3, UserJoined(alice, None) ], peerSends effects)

let ``hello with a nickname already used on this node is refused with NickTaken`` () =
    let state = init (infoOf 1) |> steps (connectAs 10 "alice" @ [ ClientConnected(11, sessionOf 11) ])

    let next, effects = step config state (ClientRequested(11, helloAs "alice"))

    Assert.Equal<ErrorCode list>([ NickTaken ], errorCodes 11 effects)
    // Closed after the refusal, as the other refused hellos for a nickname are (docs/PROTOCOL.md).
    Assert.Equal(CloseClient(11, "nick-taken"), List.last effects)
    Assert.Equal(None, nickOf 11 next)
    Assert.Equal(Some "alice", nickOf 10 next)

let ``hello with a nickname known on another node is refused with NickTaken`` () =
    let state =
        nodeWithPeers () |> steps [ PeerMessageReceived(UserJoined(known "bob" 2, None)); ClientConnected(10, sessionOf 10) ]

    let _, effects = step config state (ClientRequested(10, helloAs "bob"))

    Assert.Equal<ErrorCode list>([ NickTaken ], errorCodes 10 effects)

let ``hello with an invalid nickname is refused with NickInvalid`` (nick: string) =
    let state = init (infoOf 1) |> steps [ ClientConnected(10, sessionOf 10) ]

    let next, effects = step config state (ClientRequested(10, helloAs nick))

    Assert.Equal<ErrorCode list>([ NickInvalid ], errorCodes 10 effects)
    Assert.Equal(None, nickOf 10 next)

let ``a second hello on the same connection is refused with AlreadyHello`` () =
    let state = init (infoOf 1) |> steps (connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, helloAs "alicia"))

    Assert.Equal<ErrorCode list>([ AlreadyHello ], errorCodes 10 effects)

let ``every request but hello, quit, status and rooms before hello is refused with HelloFirst`` () =
    let state = init (infoOf 1) |> steps [ ClientConnected(10, sessionOf 10) ]

    for request in [ Say(Rooms.lobby.Value, "hi", 0L); Whisper("bob", "hi"); Who None; Who(Some "#dev"); Join "#dev"; Leave "#dev" ] do
        let next, effects = step config state (ClientRequested(10, request))
        Assert.Equal<ErrorCode list>([ HelloFirst ], errorCodes 10 effects)
        Assert.Equal(state, next)

let ``status and rooms are answered before hello, so a client can look before it joins`` () =
    let state = init (infoOf 1) |> steps [ ClientConnected(10, sessionOf 10) ]

    for request in [ Status; Rooms ] do
        let next, effects = step config state (ClientRequested(10, request))
        Assert.Empty(errorCodes 10 effects)
        Assert.Equal(state, next)
        Assert.Single(effects) |> ignore

// ---------------------------------------------------------------------------------------------
// Say (to #lobby: broadcast) and Whisper.

let ``a say to #lobby at its owner is sequenced, shown to every named local client and sent to the backup and the nodes with members`` () =
    let state =
        nodeWithPeers ()
        |> steps (lobbyOn 1 :: lobbyBackedBy 2 @ PeerMessageReceived(UserJoined(known "bob" 3, None)) :: connectAs 10 "alice" @ connectAs 11 "carol" @ [ ClientConnected(12, sessionOf 12) ])

    let sequenced, effects = step config state (ClientRequested(10, Say(Rooms.lobby.Value, "hello, world", 7L)))

    let message = { Room = Rooms.lobby; Seq = 1L; From = Nick "alice"; FromNode = 1; Text = "hello, world"; ClientMessageId = 7L }
    // Sent to the backup only; shown once the backup has stored it.
    Assert.Equal<(NodeId * PeerMessage) list>([ 2, ReplicaAppended(Rooms.lobby, { Backup = 2; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }, [ message ]) ], peerSends effects)
    Assert.Empty(repliesTo 10 effects)

    let next, effects = step config sequenced (PeerMessageReceived(ReplicaStored(Rooms.lobby, { Backup = 2; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }, 1L)))

    let toClients =
        [ for effect in effects do
              match effect with
              | SendToClients(clients, Message shown) -> clients, shown
              | _ -> () ]
    Assert.Equal<(Set<ClientId> * RoomMessage) list>([ set [ 10L; 11L ], message ], toClients)
    Assert.Equal<(NodeId * PeerMessage) list>([ 2, RoomSequenced message; 3, RoomSequenced message ], peerSends effects)
    Assert.Equal(1L, (historyOf Rooms.lobby next).LastSeq)

let ``a say to #lobby at another node than its owner goes to the owner only and is shown when it comes back sequenced`` () =
    let state = nodeWithPeers () |> steps (lobbyOn 2 :: connectAs 10 "alice" @ connectAs 11 "carol" @ [ lobbyHistoryShared ])

    let posted, effects = step config state (ClientRequested(10, Say(Rooms.lobby.Value, "hi all", 7L)))

    let post = { Room = Rooms.lobby; From = Nick "alice"; FromNode = 1; Text = "hi all"; ClientMessageId = 7L }
    Assert.Equal<(NodeId * PeerMessage) list>([ 2, RoomPosted post ], peerSends effects)
    Assert.Empty(repliesTo 10 effects)
    Assert.Equal<RoomPost list>([ post ], posted.Unconfirmed[Rooms.lobby].Posts)

    let message = { Room = Rooms.lobby; Seq = 1L; From = Nick "alice"; FromNode = 1; Text = "hi all"; ClientMessageId = 7L }
    let confirmed, effects = step config posted (PeerMessageReceived(RoomSequenced message))

    // Written to this node's log first, so a restart of the whole cluster keeps it.
    Assert.Equal<Effect list>([ AppendToLog(Rooms.lobby, [ message ]); SendToClients(set [ 10L; 11L ], Message message) ], effects)
    Assert.Empty(confirmed.Unconfirmed[Rooms.lobby])

let ``a committed message is not sent to a node with no member in the room, unless it backs the room up`` () =
    let state = nodeWithPeers () |> steps (lobbyOn 1 :: lobbyBackedBy 2 @ connectAs 10 "alice")

    let _, effects = run [ ClientRequested(10, Say(Rooms.lobby.Value, "hi", 0L)); PeerMessageReceived(ReplicaStored(Rooms.lobby, { Backup = 2; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }, 1L)) ] state

    Assert.Equal<NodeId list>([ 2 ], peerSends effects |> List.map fst)

let ``a say to #lobby is not sent to a peer that left`` () =
    let state =
        nodeWithPeers () |> steps (lobbyOn 1 :: lobbyBackedBy 2 @ PeerMessageReceived(LeaveAnnounced 3) :: connectAs 10 "alice")

    let _, effects = run [ ClientRequested(10, Say(Rooms.lobby.Value, "hi", 0L)); PeerMessageReceived(ReplicaStored(Rooms.lobby, { Backup = 2; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }, 1L)) ] state

    Assert.Equal<NodeId list>([ 2 ], peerSends effects |> List.map fst)

let ``a sequenced #lobby message from its owner is delivered to every named local client`` () =
    let state = nodeWithPeers () |> steps (lobbyOn 2 :: connectAs 10 "alice" @ connectAs 11 "carol" @ [ lobbyHistoryShared; ClientConnected(12, sessionOf 12) ])
    let message = { Room = Rooms.lobby; Seq = 1L; From = Nick "bob"; FromNode = 2; Text = "hi all"; ClientMessageId = 3L }

    let _, effects = step config state (PeerMessageReceived(RoomSequenced message))

    // Written to this node's log first, so a restart of the whole cluster keeps it.
    Assert.Equal<Effect list>([ AppendToLog(Rooms.lobby, [ message ]); SendToClients(set [ 10L; 11L ], Message message) ], effects)

let ``say with empty or multi-line text is refused with TextInvalid`` (text: string) =
    let state = nodeWithPeers () |> steps (lobbyOn 2 :: connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, Say(Rooms.lobby.Value, text, 0L)))

    Assert.Equal<ErrorCode list>([ TextInvalid ], errorCodes 10 effects)
    Assert.Empty(peerSends effects)

let ``whisper to a user on another node is forwarded to that node only and echoed to the sender`` () =
    let state =
        nodeWithPeers () |> steps (PeerMessageReceived(UserJoined(known "bob" 3, None)) :: connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, Whisper("bob", "psst")))

    let line = { PrivateLine.From = Nick "alice"; FromNode = 1; To = Nick "bob"; Text = "psst" }
    Assert.Equal<(NodeId * PeerMessage) list>([ 3, PrivateForwarded line ], peerSends effects)
    Assert.Equal<ServerReply list>([ Private line ], repliesTo 10 effects)

let ``whisper to a user on this node goes to that user and is echoed to the sender`` () =
    let state = init (infoOf 1) |> steps (connectAs 10 "alice" @ connectAs 11 "carol")

    let _, effects = step config state (ClientRequested(10, Whisper("carol", "psst")))

    let line = { PrivateLine.From = Nick "alice"; FromNode = 1; To = Nick "carol"; Text = "psst" }
    Assert.Equal<ServerReply list>([ Private line ], repliesTo 11 effects)
    Assert.Equal<ServerReply list>([ Private line ], repliesTo 10 effects)
    Assert.Empty(peerSends effects)

let ``a forwarded private message reaches only its addressee`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice" @ connectAs 11 "carol")
    let line = { PrivateLine.From = Nick "bob"; FromNode = 2; To = Nick "carol"; Text = "psst" }

    let _, effects = step config state (PeerMessageReceived(PrivateForwarded line))

    Assert.Equal<Effect list>([ SendToClients(set [ 11L ], Private line) ], effects)

let ``whisper to an unknown nickname is refused with NoSuchUser`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, Whisper("nobody", "psst")))

    Assert.Equal<ErrorCode list>([ NoSuchUser ], errorCodes 10 effects)
    Assert.Empty(peerSends effects)

let ``whisper to a target that is no valid nickname is refused with NoSuchUser`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice")

    let _, effects = step config state (ClientRequested(10, Whisper("no body", "psst")))

    Assert.Equal<ErrorCode list>([ NoSuchUser ], errorCodes 10 effects)
    Assert.Empty(peerSends effects)

let ``a Nick is equal and ordered as its ordinal string`` () =
    Assert.Equal(Nick "alice", Nick "alice")
    Assert.NotEqual(Nick "alice", Nick "Alice")
    let texts = [ "bob"; "Bob"; "alice"; "_x"; "a-1"; "Zed" ]
    Assert.Equal<string list>(List.sortWith (fun a b -> System.String.CompareOrdinal(a, b)) texts, texts |> List.map Nick |> List.sort |> List.map _.Value)

// ---------------------------------------------------------------------------------------------
// The directory: disconnects, peers' users, suspicion.

let ``disconnect tells every peer the user left and removes the user from the directory`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice" @ connectAs 11 "carol")

    let next, effects = step config state (ClientDisconnected 10)

    let released = NickReleased { Nick = Nick "alice"; Session = sessionOf 10; Previous = None; Node = 1; Term = registrarTerm }
    Assert.Equal<(NodeId * PeerMessage) list>([ 2, UserLeft(Nick "alice", 1); 3, UserLeft(Nick "alice", 1); 3, released ], peerSends effects)
    Assert.Equal(None, nodeOf "alice" next)
    Assert.DoesNotContain(inLobby "alice" 1, whoFor 11 next)
    Assert.Equal(None, nickOf 10 next)
    Assert.Equal<Set<ClientId>>(Set.singleton 11L, Chat.localMembers Rooms.lobby next.Chat)

let ``quit says goodbye to the peers and closes the connection last`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice")

    let next, effects = step config state (ClientRequested(10, Quit))

    let released = NickReleased { Nick = Nick "alice"; Session = sessionOf 10; Previous = None; Node = 1; Term = registrarTerm }
    Assert.Equal<(NodeId * PeerMessage) list>([ 2, UserLeft(Nick "alice", 1); 3, UserLeft(Nick "alice", 1); 3, released ], peerSends effects)
    Assert.Equal(CloseClient(10, "bye"), List.last effects)
    Assert.False(next.Chat.Sessions.ContainsKey 10)

let ``who lists users of this node and of peers, and a peer's departed user disappears`` () =
    let state =
        nodeWithPeers ()
        |> steps (PeerMessageReceived(UserJoined(known "bob" 2, None)) :: PeerMessageReceived(UserJoined(known "dave" 3, None)) :: connectAs 10 "alice")

    let users = whoFor 10 state
    let afterLeft = steps [ PeerMessageReceived(UserLeft(Nick "bob", 2)) ] state

    Assert.Equal<UserEntry list>(
        [ inLobby "alice" 1; inLobby "bob" 2; inLobby "dave" 3 ],
        users |> List.sortBy (fun user -> user.Nick))
    Assert.DoesNotContain(inLobby "bob" 2, whoFor 10 afterLeft)

let ``a UserLeft naming another node than the directory's does not remove the user`` () =
    let state = nodeWithPeers () |> steps (PeerMessageReceived(UserJoined(known "bob" 2, None)) :: connectAs 10 "alice")

    let next = steps [ PeerMessageReceived(UserLeft(Nick "bob", 3)) ] state

    Assert.Contains(inLobby "bob" 2, whoFor 10 next)

let ``the users of a suspected node disappear from who`` () =
    let state =
        nodeWithPeers ()
        |> steps (PeerMessageReceived(UserJoined(known "bob" 2, None)) :: PeerMessageReceived(UserJoined(known "dave" 3, None)) :: connectAs 10 "alice")

    // Node 3 keeps heartbeating, node 2 falls silent for K ticks.
    let suspected =
        state |> steps [ for _ in 1 .. config.SuspectAfter do yield Ticked; yield heartbeatFrom 3 ]

    Assert.False(suspected.Coordination.View.Contains 2)
    Assert.Equal<UserEntry list>(
        [ inLobby "alice" 1; inLobby "dave" 3 ],
        whoFor 10 suspected |> List.sortBy (fun user -> user.Nick))

let ``a node that joins the view is sent the list of local users and asked for its own`` () =
    let state = init (infoOf 1) |> steps (connectAs 10 "alice" @ connectAs 11 "carol")

    let _, effects = step config state (heartbeatFrom 2)

    match peerSends effects with
    | [ 2, UsersListed(1, users); 2, RoomsHeld(1, []); 2, UsersRequested 1 ] ->
        Assert.Equal<string list>([ "alice"; "carol" ], users |> List.map (fun user -> user.User.Nick.Value) |> List.sort)
        Assert.All(users, fun user -> Assert.Equal(1, user.User.Node))
    | other -> failwith $"expected a UsersListed, a RoomsHeld and a UsersRequested to node 2, got {other}"

let ``a UsersRequested is answered with this node's users and its placements`` () =
    let state = nodeWithPeers () |> steps (lobbyOn 3 :: connectAs 10 "alice")

    let _, effects = step config state (PeerMessageReceived(UsersRequested 2))

    Assert.Equal<(NodeId * PeerMessage) list>(
        [ 2, UsersListed(1, [ { User = inLobby "alice" 1; Session = sessionOf 10 } ])
          2, RoomAssigned(Rooms.lobby, { Owner = 3; Epoch = 1L; Leader = 0; Version = 1; LastSeq = 0L })
          2, RoomsHeld(1, []) ],
        peerSends effects)

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

let private directoryNodes (state: NodeState) : Map<string, NodeId> =
    state.Chat.Directory |> Seq.map (fun (KeyValue(nick, entry)) -> nick.Value, entry.Node) |> Map.ofSeq

let ``after a one-sided suspicion heals, the peer's users are back in who`` () =
    // Node 1 suspects node 2 (its heartbeats were lost), while node 2 never stopped hearing node 1.
    let met =
        Map.ofList [ 1, init (infoOf 1) |> steps (connectAs 10 "alice"); 2, init (infoOf 2) |> steps (connectAs 20 "bob") ]
        |> at 1 (heartbeatFrom 2)
        |> at 2 (heartbeatFrom 1)
        |> at 1 (heartbeatFrom 3)
    Assert.Contains(inLobby "bob" 2, whoFor 10 met[1])
    let suspecting = [ 1 .. config.SuspectAfter ] |> List.fold (fun nodes _ -> nodes |> at 1 Ticked |> at 1 (heartbeatFrom 3)) met
    Assert.False(suspecting[1].Coordination.View.Contains 2)
    Assert.True(suspecting[2].Coordination.View.Contains 1)
    Assert.DoesNotContain(inLobby "bob" 2, whoFor 10 suspecting[1])

    // Node 2's heartbeats get through again. Node 2 saw no view change, so it would not send its
    // users by itself: node 1 asks for them.
    let healed = suspecting |> at 1 (heartbeatFrom 2)

    Assert.True(healed[1].Coordination.View.Contains 2)
    Assert.Contains(inLobby "bob" 2, whoFor 10 healed[1])

let ``two nodes that meet exchange their users, and a new user is known on both`` () =
    let nodes =
        Map.ofList [ 1, init (infoOf 1) |> steps (connectAs 10 "alice"); 2, init (infoOf 2) ]
        |> at 1 (heartbeatFrom 2)
        |> at 2 (heartbeatFrom 1)
        |> fun nodes -> connectAs 20 "bob" |> List.fold (fun nodes event -> at 2 event nodes) nodes

    for id in [ 1; 2 ] do
        Assert.Equal<Map<string, NodeId>>(Map.ofList [ "alice", 1; "bob", 2 ], directoryNodes nodes[id])

let ``a node restarted before it was suspected learns who is online elsewhere and refuses their nicknames`` () =
    let met =
        Map.ofList [ 1, init (infoOf 1) |> steps (connectAs 10 "alice"); 2, init (infoOf 2) ]
        |> at 1 (heartbeatFrom 2)
        |> at 2 (heartbeatFrom 1)
    Assert.Equal(Some 1, nodeOf "alice" met[2])

    // kill -9 of node 2 and a restart within K intervals: node 1 never suspects it.
    let restarted = met.Add(2, init (infoOf 2)) |> at 2 (heartbeatFrom 1) |> at 1 (heartbeatFrom 2)
    Assert.True(restarted[1].Coordination.View.Contains 2)

    Assert.Equal(Some 1, nodeOf "alice" restarted[2])
    let _, effects = restarted[2] |> run (helloEvents 20 "alice")
    Assert.Equal<ErrorCode list>([ NickTaken ], errorCodes 20 effects)

// ---------------------------------------------------------------------------------------------
// Limits.

let ``a connection beyond MaxClients is refused with ServerFull and closed`` () =
    let limited = { config with MaxClients = 2 }
    let state =
        connectAs 10 "alice" @ [ ClientConnected(11, sessionOf 11) ]
        |> List.fold (fun state event -> fst (step limited state event)) (init (infoOf 1))

    let next, effects = step limited state (ClientConnected(12, sessionOf 12))

    Assert.Equal<ErrorCode list>([ ServerFull ], errorCodes 12 effects)
    Assert.Contains(effects, fun effect -> match effect with CloseClient(12L, _) -> true | _ -> false)
    Assert.False(next.Chat.Sessions.ContainsKey 12)

// ---------------------------------------------------------------------------------------------
// Time and shutdown.

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

let ``no election while the node listens for its first intervals, an election on the tick that ends them`` () =
    let listening = List.replicate (listenTicksBeforeElection - 1) Ticked
    let state = nodeWithPeers () |> steps listening
    Assert.False state.Coordination.Participant
    Assert.Equal(0L, state.Coordination.Epoch)

    let next, effects = step config state Ticked

    Assert.True next.Coordination.Participant
    Assert.Contains((2, Election { Candidate = 1; Epoch = 1L }), peerSends effects)

let ``a node alone elects itself once it has listened`` () =
    let next = init (infoOf 4) |> steps (List.replicate listenTicksBeforeElection Ticked)

    Assert.Equal(Some 4, next.Coordination.Leader)
    Assert.Equal(1L, next.Coordination.Epoch)
    Assert.False next.Coordination.Participant

// ---------------------------------------------------------------------------------------------
// Forged peer frames (issue 11): what Wire lets through must still not wrap, inflate or commit.

let private warnings (effects: Effect list) : string list =
    [ for effect in effects do
          match effect with
          | Log(Warning, line) -> line
          | _ -> () ]

let ``a leader frame at epoch 2^31-1 or Int64.MaxValue is ignored with a log line, and wraps nothing`` () =
    let state = nodeWithPeers () |> steps (List.replicate listenTicksBeforeElection Ticked)
    let before = state.Coordination
    Assert.True(before.Epoch >= 1L)

    for epoch in [ int64 System.Int32.MaxValue; System.Int64.MaxValue; before.Epoch + maxEpochLead + 1L ] do
        let next, effects = step config state (PeerMessageReceived(LeaderAnnounced { Leader = 3; Epoch = epoch }))
        Assert.Equal(before, next.Coordination)
        Assert.Empty(peerSends effects)
        Assert.Single(warnings effects) |> ignore

    // Within the allowed lead the announcement is news, as it was.
    let next, _ = step config state (PeerMessageReceived(LeaderAnnounced { Leader = 3; Epoch = before.Epoch + maxEpochLead }))
    Assert.Equal(before.Epoch + maxEpochLead, next.Coordination.Epoch)
    Assert.Equal(Some 3, next.Coordination.Leader)

let ``an epoch past 2^31-1 is a positive int64: the next election does not wrap`` () =
    let state = { Coordination.init 1 with Epoch = int64 System.Int32.MaxValue }

    let next, sent = Election.startElection state

    Assert.Equal(int64 System.Int32.MaxValue + 1L, next.Epoch)
    Assert.Equal<Sent list>([ { To = 1; Message = Election { Candidate = 1; Epoch = int64 System.Int32.MaxValue + 1L } } ], sent)

let ``a flood of leave frames cannot push the epoch without bound`` () =
    let state = nodeWithPeers () |> steps (List.replicate listenTicksBeforeElection Ticked)
    let before = state.Coordination.Epoch

    // A leave for a node that is not in the view changes nothing, however many come.
    let flooded = state |> steps (List.replicate 178 (PeerMessageReceived(LeaveAnnounced 7)))
    Assert.Equal(state.Coordination, flooded.Coordination)

    // A leave for a live node (then its next heartbeat) is a view change the core cannot tell
    // from a real one, and each starts a round: +1 per leave here (178 leaves: epoch 1 to 181),
    // as issue 11 saw. It never wraps, and the shell refuses a leave naming another node than
    // the one that proved the cluster key on the link (PeerNetwork.cs), so only that node itself
    // can send it: a real leave and rejoin (docs/SECURITY.md).
    let churned = state |> steps (List.replicate 178 [ PeerMessageReceived(LeaveAnnounced 3); heartbeatFrom 3; Ticked ] |> List.concat)
    Assert.True(churned.Coordination.Epoch >= before)
    Assert.True(churned.Coordination.Epoch <= before + 2L * 178L, $"epoch {churned.Coordination.Epoch} after 178 leaves from {before}")

let ``a replica-stored with seq 2^62 commits nothing, and the true confirmation still does`` () =
    let state = nodeWithPeers () |> steps (lobbyOn 1 :: lobbyBackedBy 2 @ connectAs 10 "alice")
    let pending = state |> steps [ ClientRequested(10, Say(Rooms.lobby.Value, "hi", 1L)) ]
    let backup = { Backup = 2; Owner = 1; Epoch = 1L; Leader = 0; Version = 1 }

    let forged, effects = step config pending (PeerMessageReceived(ReplicaStored(Rooms.lobby, backup, 1L <<< 62)))

    Assert.Equal(0L, (historyOf Rooms.lobby forged).LastSeq)
    Assert.Empty(repliesTo 10 effects)
    Assert.Empty(peerSends effects)
    Assert.Single(warnings effects) |> ignore

    let confirmed, _ = step config forged (PeerMessageReceived(ReplicaStored(Rooms.lobby, backup, 1L)))
    Assert.Equal(1L, (historyOf Rooms.lobby confirmed).LastSeq)

let ``shutdown announces the leave to every peer, then stops, and later events do nothing`` () =
    let state = nodeWithPeers () |> steps (connectAs 10 "alice")

    let stopped, effects = step config state ShutdownRequested

    Assert.Equal<(NodeId * PeerMessage) list>([ 2, LeaveAnnounced 1; 3, LeaveAnnounced 1 ], peerSends effects)
    Assert.Equal(Stop, List.last effects)
    let lastLeave = effects |> List.findIndexBack (fun effect -> match effect with SendToPeer _ -> true | _ -> false)
    Assert.True(lastLeave < List.length effects - 1)
    for event in
        [ Ticked; heartbeatFrom 2; ClientConnected(11, sessionOf 11); ClientRequested(10, Say(Rooms.lobby.Value, "hi", 0L)); ShutdownRequested ] do
        Assert.Equal((stopped, []), step config stopped event)

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "Chat" [
        testCase "hello with a valid nickname is welcomed with the node id, the leader and the connection's session"
            ``hello with a valid nickname is welcomed with the node id, the leader and the connection's session``
        testCase "hello puts the client in #lobby"
            ``hello puts the client in #lobby``
        testCase "hello announces the new user, with its rooms and session, to every live peer"
            ``hello announces the new user, with its rooms and session, to every live peer``
        testCase "hello with a nickname already used on this node is refused with NickTaken"
            ``hello with a nickname already used on this node is refused with NickTaken``
        testCase "hello with a nickname known on another node is refused with NickTaken"
            ``hello with a nickname known on another node is refused with NickTaken``
        testTheory "hello with an invalid nickname is refused with NickInvalid"
            [ ""; "has space"; "semi;colon"; "émile"; "abcdefghijklmnopqrstuvwxyz0123456" ]
            ``hello with an invalid nickname is refused with NickInvalid``
        testCase "a second hello on the same connection is refused with AlreadyHello"
            ``a second hello on the same connection is refused with AlreadyHello``
        testCase "every request but hello, quit, status and rooms before hello is refused with HelloFirst"
            ``every request but hello, quit, status and rooms before hello is refused with HelloFirst``
        testCase "status and rooms are answered before hello, so a client can look before it joins"
            ``status and rooms are answered before hello, so a client can look before it joins``
        testCase "a say to #lobby at its owner is sequenced, shown to every named local client and sent to the backup and the nodes with members"
            ``a say to #lobby at its owner is sequenced, shown to every named local client and sent to the backup and the nodes with members``
        testCase "a committed message is not sent to a node with no member in the room, unless it backs the room up"
            ``a committed message is not sent to a node with no member in the room, unless it backs the room up``
        testCase "a say to #lobby at another node than its owner goes to the owner only and is shown when it comes back sequenced"
            ``a say to #lobby at another node than its owner goes to the owner only and is shown when it comes back sequenced``
        testCase "a say to #lobby is not sent to a peer that left"
            ``a say to #lobby is not sent to a peer that left``
        testCase "a sequenced #lobby message from its owner is delivered to every named local client"
            ``a sequenced #lobby message from its owner is delivered to every named local client``
        testTheory "say with empty or multi-line text is refused with TextInvalid"
            [ ""; "   "; "two\nlines" ]
            ``say with empty or multi-line text is refused with TextInvalid``
        testCase "whisper to a user on another node is forwarded to that node only and echoed to the sender"
            ``whisper to a user on another node is forwarded to that node only and echoed to the sender``
        testCase "whisper to a user on this node goes to that user and is echoed to the sender"
            ``whisper to a user on this node goes to that user and is echoed to the sender``
        testCase "a forwarded private message reaches only its addressee"
            ``a forwarded private message reaches only its addressee``
        testCase "whisper to an unknown nickname is refused with NoSuchUser"
            ``whisper to an unknown nickname is refused with NoSuchUser``
        testCase "whisper to a target that is no valid nickname is refused with NoSuchUser"
            ``whisper to a target that is no valid nickname is refused with NoSuchUser``
        testCase "a Nick is equal and ordered as its ordinal string" ``a Nick is equal and ordered as its ordinal string``
        testCase "disconnect tells every peer the user left and removes the user from the directory"
            ``disconnect tells every peer the user left and removes the user from the directory``
        testCase "quit says goodbye to the peers and closes the connection last"
            ``quit says goodbye to the peers and closes the connection last``
        testCase "who lists users of this node and of peers, and a peer's departed user disappears"
            ``who lists users of this node and of peers, and a peer's departed user disappears``
        testCase "a UserLeft naming another node than the directory's does not remove the user"
            ``a UserLeft naming another node than the directory's does not remove the user``
        testCase "the users of a suspected node disappear from who"
            ``the users of a suspected node disappear from who``
        testCase "a node that joins the view is sent the list of local users and asked for its own"
            ``a node that joins the view is sent the list of local users and asked for its own``
        testCase "a UsersRequested is answered with this node's users and its placements"
            ``a UsersRequested is answered with this node's users and its placements``
        testCase "after a one-sided suspicion heals, the peer's users are back in who"
            ``after a one-sided suspicion heals, the peer's users are back in who``
        testCase "two nodes that meet exchange their users, and a new user is known on both"
            ``two nodes that meet exchange their users, and a new user is known on both``
        testCase "a node restarted before it was suspected learns who is online elsewhere and refuses their nicknames"
            ``a node restarted before it was suspected learns who is online elsewhere and refuses their nicknames``
        testCase "a connection beyond MaxClients is refused with ServerFull and closed"
            ``a connection beyond MaxClients is refused with ServerFull and closed``
        testCase "a tick multicasts this node's heartbeat before any other effect"
            ``a tick multicasts this node's heartbeat before any other effect``
        testCase "no election while the node listens for its first intervals, an election on the tick that ends them"
            ``no election while the node listens for its first intervals, an election on the tick that ends them``
        testCase "a node alone elects itself once it has listened"
            ``a node alone elects itself once it has listened``
        testCase "a leader frame at epoch 2^31-1 or Int64.MaxValue is ignored with a log line, and wraps nothing"
            ``a leader frame at epoch 2^31-1 or Int64.MaxValue is ignored with a log line, and wraps nothing``
        testCase "an epoch past 2^31-1 is a positive int64: the next election does not wrap"
            ``an epoch past 2^31-1 is a positive int64: the next election does not wrap``
        testCase "a flood of leave frames cannot push the epoch without bound"
            ``a flood of leave frames cannot push the epoch without bound``
        testCase "a replica-stored with seq 2^62 commits nothing, and the true confirmation still does"
            ``a replica-stored with seq 2^62 commits nothing, and the true confirmation still does``
        testCase "shutdown announces the leave to every peer, then stops, and later events do nothing"
            ``shutdown announces the leave to every peer, then stops, and later events do nothing``
    ]
