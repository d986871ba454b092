/// One node: the single entry point `step` that the C# shell calls for every event. It wires
/// the failure detector, the election, room placement, room order and the chat together and
/// returns the effects to carry out. Nothing here reads a clock or touches a socket: time
/// arrives as Ticked events and randomness (session tokens) with the events that need it.
module FormalChat.Protocol.Node

open FormalChat.Protocol.Chat
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.RoomReplica

let private reply client message = SendToClients(Set.singleton client, message)
let private refuse client code reason = reply client (ErrorReply(code, reason))
let private toEveryLocal (state: NodeState) message = SendToClients(namedClients state.Chat, message)

/// Presence notices ("alice joined") go to everyone while the lobby is small; in a crowd they
/// would be most of the traffic (n arrivals announced to n users), so there `/who` tells instead.
let presenceNoticeLimit = 100

let private presenceExcept (excluded: ClientId option) (state: NodeState) (text: string) : Effect list =
    let everyone = namedClients state.Chat
    if everyone.Count > presenceNoticeLimit then []
    else [ SendToClients(excluded |> Option.fold (fun clients client -> Set.remove client clients) everyone, Notice text) ]

let private presence = presenceExcept None

/// What a node that has just appeared needs to know from this one: who is online here, and
/// where every room is placed.
/// The owner shares its rooms' history only once it has had a majority for a while (see
/// maybeStartElection): a node back from a partition may still believe it owns a room the
/// leader has moved meanwhile, and its history then lacks what was acknowledged since.
let private introduction (state: NodeState) : PeerMessage list =
    let sharesHistory = state.TicksSinceStart >= listenTicksBeforeElection && hasQuorum state
    UsersListed(self state, [ for user in localUsers state.Chat -> knownUser (self state) user ])
    :: [ for KeyValue(room, placement) in state.Placements do
             yield RoomAssigned(room, placement)
             if placement.Owner = self state && sharesHistory then
                 yield HistoryShared(room, Rooms.lastWithin Rooms.transferBudgetChars (Rooms.last Rooms.historyCapacity (historyOf room state)))
         for KeyValue(room, backup) in state.Backups do
             yield BackupAssigned(room, backup) ]

/// The sender's addresses and load, and the nodes it introduces that this node has not met.
let private rememberPeers (heartbeat: Heartbeat) (state: NodeState) : Map<NodeId, PeerEntry> =
    let introduced =
        heartbeat.Known |> List.filter (fun info -> info.Id <> self state && not (state.Peers.ContainsKey info.Id))
    let peers =
        introduced
        |> List.fold (fun (peers: Map<NodeId, PeerEntry>) (info: NodeInfo) -> peers.Add(info.Id, { Info = info; Load = Load.zero })) state.Peers
    peers.Add(heartbeat.From.Id, { Info = heartbeat.From; Load = heartbeat.Load })

/// How far ahead of this node's epoch a peer frame's epoch may be (2^20). Epochs grow by one per
/// election a node starts, a few per change of the view, and every node adopts the highest it
/// hears; a node's epoch lags the cluster's only while it was down or cut off (it restarts at
/// epoch 0). Honestly, then, the lead is at most the elections the cluster has held since its
/// last whole restart: 2^20 is a million of them. A frame further ahead is forged or broken,
/// and following it would let one frame drive every epoch towards the end of its range.
let maxEpochLead : Epoch = 1L <<< 20

/// The highest epoch a peer message names, if it names one.
let private epochNamed (message: PeerMessage) : Epoch option =
    match message with
    | HeartbeatSent heartbeat -> Some heartbeat.Epoch
    | Election election -> Some election.Epoch
    | LeaderAnnounced leader -> Some leader.Epoch
    | RoomAssigned(_, placement) -> Some placement.Epoch
    | BackupAssigned(_, backup)
    | ReplicaSynced(_, backup, _, _)
    | ReplicaAppended(backup, _)
    | ReplicaStored(_, backup, _) -> Some backup.Epoch
    | NickClaimed claim
    | NickGranted claim
    | NickRefused(claim, _)
    | NickReleased claim -> Some claim.Term.Epoch
    | NicksReported(_, term, _)
    | NicksRequested term -> Some term.Epoch
    | _ -> None

/// A message this node addresses to itself (it leads, or it is alone on the ring) waits in its
/// inbox until the step drains it (as etcd-raft does with local messages); any other goes out.
let private routeOne (message: Sent) (state: NodeState) : NodeState * Effect list =
    if message.To = self state then
        { state with Inbox = state.Inbox @ [ message.Message ] }, []
    else
        state, toPeer state message.To message.Message

let private routeSent (sent: Sent list) (state: NodeState) : NodeState * Effect list =
    forEach routeOne sent (state, [])

/// A post goes to its room's owner; without a live owner this node asks the leader for one
/// and the post waits in Unconfirmed until the placement arrives.
let private routePost (post: RoomPost) (state: NodeState) : NodeState * Effect list =
    match state.Placements.TryFind post.Room with
    | Some placement when placement.Owner = self state -> sequenceAsOwner post placement state
    | Some placement when state.Coordination.View.Contains placement.Owner ->
        state, toPeer state placement.Owner (RoomPosted post)
    | _ -> routeSent (Placement.requestRoom post.Room state.Placements state.Coordination) (hold post state)

/// Spec: RecvAssignment on this node. When a room changes owner, the posts still waiting for
/// it go to the new owner, and its members are told.
let private applyAssignment (room: RoomName) (placement: Assignment) (state: NodeState) : NodeState * Effect list =
    let before = state.Placements.TryFind room
    let placements = Placement.recvAssignment room placement state.Placements
    let after = placements.TryFind room
    let state = { state with Placements = placements }
    let ownerOf (assignment: Assignment option) = assignment |> Option.map (fun a -> a.Owner)
    if ownerOf before = ownerOf after then
        state, []
    else
        let owner = after.Value.Owner
        let told =
            [ Log(Info, $"room {room} is placed on node {owner} (epoch {after.Value.Epoch})")
              match before with
              | Some earlier -> SendToClients(localMembers room state.Chat, Notice $"{room} moved to node {owner} (node {earlier.Owner} is gone)")
              | None -> () ]
        let waiting = state.Unconfirmed.TryFind room |> Option.defaultValue []
        forEach routePost waiting (then' (takeOwnership room owner) (state, told))

/// The leader's decisions (placements, backups): announced first, then applied here, so a post
/// this node forwards to a new owner reaches it after the news that it owns the room.
let private applyDecisions<'T when 'T: equality>
    (current: Map<RoomName, 'T>)
    (apply: RoomName -> 'T -> NodeState -> NodeState * Effect list)
    (decided: Map<RoomName, 'T>, sent: Sent list)
    (state: NodeState)
    : NodeState * Effect list =
    let changed = decided |> Map.filter (fun room decision -> current.TryFind room <> Some decision)
    changed |> Map.fold (fun progress room decision -> then' (apply room decision) progress) (routeSent sent state)

let private applyPlacements decided (state: NodeState) = applyDecisions state.Placements applyAssignment decided state

/// The leader's standing duty: every room with a live owner and no live backup gets one.
let private assignBackups (state: NodeState) : NodeState * Effect list =
    if not (decidesWithQuorum state) then state, [] else
    let decided = Replication.assignBackups (clientsOn state) state.Placements state.Backups state.Coordination
    applyDecisions state.Backups applyBackup decided state

let private needPlacements (rooms: RoomName seq) (state: NodeState) : NodeState * Effect list =
    rooms
    |> Seq.fold
        (fun progress room -> then' (routeSent (Placement.requestRoom room state.Placements state.Coordination)) progress)
        (state, [])

let private joinedReply (room: RoomName) (state: NodeState) : ServerReply =
    Joined(room, state.Placements.TryFind room |> Option.map (fun a -> a.Owner), memberCount room state.Chat)

// ---------------------------------------------------------------------------------------------
// Nicknames: a hello is welcomed only on the registrar's grant (NickRegistry.fs).

/// The registrar granted a hello's nickname: the client is welcomed, unless it has gone or
/// been welcomed since.
let private welcome (waiting: NickRegistry.Waiting) (state: NodeState) =
    let client, hello, session = waiting.Client, waiting.Hello, waiting.Session
    match state.Chat.Sessions.TryFind client with
    | Some(Anonymous _) ->
        let nick = hello.Nick
        // A reconnecting client may still have its old connection here: that one is replaced.
        let replaced = state.Chat.LocalNicks.TryFind nick
        let chat = replaced |> Option.fold (fun chat old -> forget old (self state) chat) state.Chat
        let resume = hello.Resume |> List.choose (fun (room, seq) -> Rooms.validateRoomName room |> Result.toOption |> Option.map (fun room -> room, seq)) |> Map.ofList
        let rooms = resume |> Map.keys |> Set.ofSeq |> Set.add Rooms.lobby
        let named = { Nick = nick; Session = session; Rooms = rooms }
        let state = { state with Chat = name client (self state) named chat }
        let catchUp room =
            match resume.TryFind room with
            | Some seq -> Rooms.since seq (historyOf room state)
            | None -> Rooms.last waiting.HistoryOnJoin (historyOf room state)
        let welcome =
            [ for old in Option.toList replaced do CloseClient(old, "replaced by a new connection of the same user")
              reply client (Welcome(nick, self state, state.Coordination.Leader, session))
              for room in rooms do
                  reply client (joinedReply room state)
                  for message in catchUp room do reply client (Message message)
              if resume.IsEmpty then yield! presenceExcept (Some client) state $"{nick} joined"
              let resuming = if resume.IsEmpty then "" else $", resuming {resume.Count} room(s)"
              Log(Info, $"{nick} connected (client {client}){resuming}") ]
            @ toEveryPeer state (UserJoined(knownUser (self state) named))
        then' (needPlacements rooms) (state, welcome)
    | _ -> state, []

let private nickContext (state: NodeState) : NickRegistry.Context =
    { Self = self state
      View = state.Coordination.View
      Decides = decidesWithQuorum state
      Held = fun () -> [ for user in localUsers state.Chat -> user.Nick, user.Session ] }

/// Steps the nickname registry and carries out what it asks, in order.
let private nicks (event: NickRegistry.Event) (state: NodeState) : NodeState * Effect list =
    let registry, outputs = NickRegistry.step (nickContext state) state.Nicks event
    let carryOut output (state: NodeState) =
        match output with
        | NickRegistry.Send sent -> routeSent [ sent ] state
        | NickRegistry.Welcome waiting -> welcome waiting state
        | NickRegistry.Refuse(waiting, code, reason) -> state, [ refuse waiting.Client code reason ]
        | NickRegistry.Note text -> state, [ Log(Debug, text) ]
    forEach carryOut outputs ({ state with Nicks = registry }, [])

// ---------------------------------------------------------------------------------------------
// Coordination: run the spec's transitions and report, in words, what changed.

/// Nodes that joined or left the view are logged; users of departed nodes are forgotten, and a
/// node that just appeared is told who is online here and where the rooms are.
let private reportViewChange (before: Coordination) (state: NodeState) : Effect list * NodeState =
    let after = state.Coordination
    let joined = Set.difference after.View before.View
    let departed = Set.difference before.View after.View
    if joined.IsEmpty && departed.IsEmpty then
        [], state
    else
        let chat, goneUsers = forgetNodesOutside after.View state.Chat
        let state = { state with Chat = chat }
        let effects =
            [ for id in joined do
                  Log(Info, $"node {id} joined the view {Set.toList after.View}")
                  yield! toPeerAll state id (introduction state @ [ UsersRequested(self state) ])
              for id in departed do
                  Log(Warning, $"node {id} left the view {Set.toList after.View}")
              for user in goneUsers do
                  yield! presence state $"{user.Nick} left (node {user.Node} is gone)" ]
        effects, state

let private coordinate (transition: Coordination -> Coordination * Sent list) (state: NodeState) : NodeState * Effect list =
    let before = state.Coordination
    let after, sent = transition before
    let state = { state with Coordination = after }
    let viewLogs, state = reportViewChange before state
    let electionLogs =
        [ if after.Leader <> before.Leader || after.Epoch <> before.Epoch then
              match after.Leader with
              | Some leader when leader = self state -> Log(Info, $"election won: node {leader} is the leader for epoch {after.Epoch}")
              | Some leader -> Log(Info, $"leader is node {leader} (epoch {after.Epoch})")
              | None -> ()
          match after.Leader with
          | Some leader when after.Leader <> before.Leader ->
              toEveryLocal state (Notice $"leader is now node {leader} (epoch {after.Epoch})")
          | _ -> () ]
    let followRegistrar (state: NodeState) =
        match after.Leader with
        | Some leader when after.Leader <> before.Leader || after.Epoch <> before.Epoch ->
            nicks (NickRegistry.LeaderFollowed { Epoch = after.Epoch; Leader = leader }) state
        | _ -> state, []
    then' (routeSent sent) (state, viewLogs @ electionLogs) |> then' followRegistrar

/// No election without a majority, and none before this node has listened for a while since it
/// started or last regained a majority: a node cut off by a partition would otherwise come back
/// leading a newer epoch than the majority's leader, and decide over it before it has heard
/// everyone (its view grows one heartbeat at a time when the partition heals).
let private maybeStartElection (state: NodeState) : NodeState * Effect list =
    if state.TicksSinceStart >= listenTicksBeforeElection && hasQuorum state && Election.needsElection state.Coordination then
        // Spec: StartElection. Its messages to this node wait in the inbox, so the state here is
        // the candidate's, and the log says so before anything the election sends.
        let state, effects = coordinate Election.startElection state
        state, Log(Info, $"election started for epoch {state.Coordination.Epoch}: node {self state} is a candidate") :: effects
    else
        state, []

let private recvHeartbeat (heartbeat: Heartbeat) (state: NodeState) : NodeState * Effect list =
    let state = { state with Peers = rememberPeers heartbeat state }
    coordinate (fun c -> FailureDetector.recvHeartbeat heartbeat.From.Id heartbeat.Epoch heartbeat.Leader c, []) state
    |> then' maybeStartElection

let private recvUserJoined (user: KnownUser) (state: NodeState) : NodeState * Effect list =
    let nick = user.User.Nick
    match state.Chat.LocalNicks.TryFind nick with
    | Some client when user.Session = (state.Chat.Directory.TryFind nick |> Option.map _.Session |> Option.defaultValue "") ->
        // The same user carried on from another node (failover or redirect): this connection is stale.
        let chat = remember user state.Chat |> forget client (self state)
        { state with Chat = chat }, [ CloseClient(client, $"continued on node {user.User.Node}") ]
    | Some client when user.User.Node > self state ->
        // Two nodes accepted the same nickname at once: the user on the higher node keeps it.
        { state with Chat = remember user state.Chat |> forget client (self state) },
        [ refuse client NickTaken $"the nickname {nick} was taken on node {user.User.Node} at the same moment"
          CloseClient(client, "nickname conflict") ]
    | Some _ -> state, []
    | None ->
        let isNew = not (state.Chat.Directory.ContainsKey nick)
        { state with Chat = remember user state.Chat },
        (if isNew then presence state $"{nick} joined on node {user.User.Node}" else [])

let private handlePlausible (message: PeerMessage) (state: NodeState) : NodeState * Effect list =
    match message with
    | HeartbeatSent heartbeat when heartbeat.From.Id = self state -> state, []
    | HeartbeatSent heartbeat -> recvHeartbeat heartbeat state
    | Election election -> coordinate (Election.recvElection election) state
    | LeaderAnnounced leader -> coordinate (Election.recvLeader leader) state
    | LeaveAnnounced node when node <> self state && not (state.Coordination.View.Contains node) ->
        state, [ Log(Info, $"node {node} announced it is leaving, but it is not in this node's view; ignored") ]
    | LeaveAnnounced node ->
        coordinate (fun c -> FailureDetector.recvLeave node c, []) state
        |> then' maybeStartElection
        |> fun (state, effects) -> state, Log(Info, $"node {node} announced it is leaving") :: effects
    | PrivateForwarded line ->
        match state.Chat.LocalNicks.TryFind line.To with
        | Some client -> state, [ reply client (Private line) ]
        | None -> state, [ Log(Debug, $"private message for {line.To}, who is not here; dropped") ]
    | UserJoined user -> recvUserJoined user state
    | UserLeft(nick, node) ->
        match state.Chat.Directory.TryFind nick with
        | Some entry when entry.Node = node ->
            { state with Chat = { state.Chat with Directory = state.Chat.Directory.Remove nick } },
            presence state $"{nick} left"
        | _ -> state, []
    | MemberJoined(room, nick) -> { state with Chat = updateRemoteRooms nick (Set.add room) state.Chat }, []
    | MemberLeft(room, nick) -> { state with Chat = updateRemoteRooms nick (Set.remove room) state.Chat }, []
    | UsersListed(node, users) -> { state with Chat = replaceUsersOf node users state.Chat }, []
    | UsersRequested node ->
        state, toPeerAll state node (introduction state)
    | PlacementRequested _ when not (decidesWithQuorum state) -> state, []
    | PlacementRequested(room, requester) ->
        // A room whose owner has left gets its backup promoted first, as on the leader's tick: a
        // fresh placement would start the room again without what only the backup holds.
        let lastSeq = (historyOf room state).LastSeq
        applyPlacements (Replication.promoteBackup lastSeq room state.Placements state.Backups state.Coordination) state
        |> then' (fun state -> applyPlacements (Placement.assignRoom (clientsOn state) lastSeq requester room state.Placements state.Coordination) state)
        |> then' assignBackups
    | RoomAssigned(room, placement) -> applyAssignment room placement state
    | RoomPosted post -> routePost post state
    | RoomSequenced message -> onReplica message.Room (Replication.recvSequenced message) state
    | BackupAssigned(room, backup) -> applyBackup room backup state
    | ReplicaSynced(room, backup, committed, pending) -> recvSync room backup committed pending state
    | ReplicaAppended(backup, message) -> recvAppend backup message state
    | ReplicaStored(room, backup, seq) -> recvStored room backup seq state
    | HistoryRequested(room, after, requester) ->
        state, toPeer state requester (HistoryShared(room, Rooms.lastWithin Rooms.transferBudgetChars (Rooms.since after (historyOf room state))))
    | HistoryShared(room, messages) -> recvShared room messages state
    | NickClaimed _ | NickGranted _ | NickRefused _ | NickReleased _ | NicksReported _ | NicksRequested _ ->
        nicks (NickRegistry.Received message) state


let handlePeerMessage (message: PeerMessage) (state: NodeState) : NodeState * Effect list =
    match epochNamed message with
    | Some epoch when epoch - state.Coordination.Epoch > maxEpochLead ->
        state, [ Log(Warning, $"a peer frame names epoch {epoch}, implausibly far ahead of this node's {state.Coordination.Epoch}; ignored") ]
    | _ -> handlePlausible message state

/// Messages a node sends itself can lead to more (a node alone on the ring: its election
/// message, then its leader announcement); far more than that many in one step is a bug.
let maxInboxPerStep = 10_000

/// Handles the messages this node sent itself, oldest first, until none is left.
let private drainInbox (state: NodeState) : NodeState * Effect list =
    let mutable state = state
    let effects = ResizeArray<Effect list>()
    let mutable handled = 0
    while not state.Inbox.IsEmpty && handled < maxInboxPerStep do
        let message = state.Inbox.Head
        let after, more = handlePeerMessage message { state with Inbox = state.Inbox.Tail }
        state <- after
        effects.Add more
        handled <- handled + 1
    if not state.Inbox.IsEmpty then
        effects.Add [ Log(Warning, $"{state.Inbox.Length} message(s) this node sent itself dropped after {maxInboxPerStep} in one step") ]
        state <- { state with Inbox = [] }
    state, List.concat effects

// ---------------------------------------------------------------------------------------------
// Clients.

/// The session token a hello may use: the one it proves it owns, or this connection's own.
let private sessionFor (hello: HelloRequest) (token: string) (state: NodeState) : Result<string, string> =
    match state.Chat.Directory.TryFind hello.Nick with
    | Some entry when hello.Session = Some entry.Session -> Ok entry.Session
    | Some entry -> Result.Error $"the nickname {hello.Nick} is already in use on node {entry.Node}"
    | None -> Ok(hello.Session |> Option.defaultValue token)

let private hello (config: ProtocolConfig) (client: ClientId) (hello: HelloRequest) (state: NodeState) =
    match state.Chat.Sessions.TryFind client with
    | Some(Named current) -> state, [ refuse client AlreadyHello $"you are already {current.Nick}" ]
    | None -> state, []
    | Some(Anonymous token) ->
    match validateNick hello.Nick, sessionFor hello token state with
    | Result.Error reason, _ -> state, [ refuse client NickInvalid reason ]
    | _, Result.Error reason -> state, [ refuse client NickTaken reason ]
    | Ok _, Ok _ when state.Chat.LocalNicks.Count >= config.MaxClients && not (state.Chat.LocalNicks.ContainsKey hello.Nick) ->
        state, [ refuse client ServerFull $"node {self state} has its maximum of {config.MaxClients} users"; CloseClient(client, "server full") ]
    | Ok nick, Ok session ->
        // Welcomed only on the registrar's grant (NickRegistry.fs): one winner per nickname.
        let waiting : NickRegistry.Waiting =
            { Client = client; Hello = { hello with Nick = nick }; Session = session; HistoryOnJoin = config.HistoryOnJoin
              Term = { Epoch = 0L; Leader = self state }; TicksWaited = 0 }
        nicks (NickRegistry.HelloReceived waiting) state

let private disconnect (client: ClientId) (state: NodeState) =
    let stillHere = state.Chat.LocalNicks |> Map.tryFindKey (fun _ c -> c = client)
    let state' = { state with Chat = forget client (self state) state.Chat }
    match stillHere, namedSession client state.Chat with
    | Some _, Some session when (state.Chat.Directory.TryFind session.Nick |> Option.map _.Node) = Some(self state) ->
        (state',
         presence state' $"{session.Nick} left" @ [ Log(Info, $"{session.Nick} disconnected (client {client})") ]
         @ toEveryPeer state' (UserLeft(session.Nick, self state)))
        |> then' (nicks (NickRegistry.UserLeft(session.Nick, session.Session)))
    | _ -> nicks (NickRegistry.ClientLeft client) state'

let private join (config: ProtocolConfig) (client: ClientId) (session: NamedSession) (room: RoomName) (state: NodeState) =
    if session.Rooms.Contains room then
        state, [ reply client (joinedReply room state) ]
    else
        let state = { state with Chat = joinRoom client (self state) room state.Chat }
        let effects =
            reply client (joinedReply room state)
            :: [ for message in Rooms.last config.HistoryOnJoin (historyOf room state) -> reply client (Message message) ]
            @ toEveryPeer state (MemberJoined(room, session.Nick))
        then' (needPlacements [ room ]) (state, effects)

let private leave (client: ClientId) (session: NamedSession) (room: RoomName) (state: NodeState) =
    if room = Rooms.lobby then state, [ refuse client NotInRoom "everyone stays in #lobby" ]
    elif not (session.Rooms.Contains room) then state, [ refuse client NotInRoom $"you are not in {room}" ]
    else
        { state with Chat = leaveRoom client (self state) room state.Chat },
        reply client (LeftRoom room) :: toEveryPeer state (MemberLeft(room, session.Nick))

let private say (config: ProtocolConfig) (client: ClientId) (session: NamedSession) (room: RoomName) (text: string) (id: int64) (state: NodeState) =
    match validateText config.MaxTextLength text with
    | Result.Error reason -> state, [ refuse client TextInvalid reason ]
    | Ok _ when not (session.Rooms.Contains room) -> state, [ refuse client NotInRoom $"join {room} first" ]
    | Ok text ->
        let post = { Room = room; From = session.Nick; FromNode = self state; Text = text; ClientMessageId = id }
        let waiting = state.Unconfirmed.TryFind room |> Option.defaultValue []
        let alreadyWaiting = id <> 0L && waiting |> List.exists (fun p -> p.From = post.From && p.ClientMessageId = id)
        let state = if alreadyWaiting then state else { state with Unconfirmed = state.Unconfirmed.Add(room, waiting @ [ post ]) }
        routePost post state

let private whisper (config: ProtocolConfig) (client: ClientId) (nick: string) (target: string) (text: string) (state: NodeState) =
    match validateText config.MaxTextLength text, state.Chat.Directory.TryFind target with
    | Result.Error reason, _ -> state, [ refuse client TextInvalid reason ]
    | _, None -> state, [ refuse client NoSuchUser $"nobody called {target} is online" ]
    | Ok text, Some entry ->
        let line = { PrivateLine.From = nick; FromNode = self state; To = target; Text = text }
        let delivery =
            if entry.Node = self state then
                [ for recipient in Option.toList (state.Chat.LocalNicks.TryFind target) do
                      if recipient <> client then reply recipient (Private line) ]
            else
                toPeer state entry.Node (PrivateForwarded line)
        { state with MessagesSinceTick = state.MessagesSinceTick + 1 }, delivery @ [ reply client (Private line) ]

let private roomList (state: NodeState) : RoomSummary list =
    let rooms = Set.union (occupiedRooms state.Chat) (state.Placements |> Map.keys |> Set.ofSeq)
    [ for room in rooms ->
          { Room = room
            Owner = state.Placements.TryFind room |> Option.map (fun a -> a.Owner)
            Backup =
              if Replication.hasBackup room state.Placements state.Backups state.Coordination then Some state.Backups[room].Backup
              else None
            Members = memberCount room state.Chat } ]

let private withRoom client (room: RoomName) (action: RoomName -> NodeState * Effect list) (state: NodeState) =
    match Rooms.validateRoomName room with
    | Ok room -> action room
    | Result.Error reason -> state, [ refuse client RoomInvalid reason ]

let private request (config: ProtocolConfig) (client: ClientId) (request: ClientRequest) (state: NodeState) =
    match request, namedSession client state.Chat with
    | Hello greeting, _ -> hello config client greeting state
    | Quit, _ -> disconnect client state |> then' (fun state -> state, [ CloseClient(client, "bye") ])
    // Answered before hello, so a client choosing a node can look without joining.
    | Status, _ -> state, [ reply client (StatusReported(clusterStatus state)) ]
    | Rooms, _ -> state, [ reply client (RoomsListed(roomList state)) ]
    | _, None -> state, [ refuse client HelloFirst "say hello with a nickname first" ]
    | Say(room, text, id), Some session -> withRoom client room (fun room -> say config client session room text id state) state
    | Whisper(target, text), Some session -> whisper config client session.Nick target text state
    | Join room, Some session -> withRoom client room (fun room -> join config client session room state) state
    | Leave room, Some session -> withRoom client room (fun room -> leave client session room state) state
    | Who None, Some _ -> state, [ reply client (WhoListed(None, userEntries None state.Chat)) ]
    | Who(Some room), Some _ ->
        withRoom client room (fun room -> state, [ reply client (WhoListed(Some room, userEntries (Some room) state.Chat)) ]) state

// ---------------------------------------------------------------------------------------------
// Time.

/// The leader's standing duty: every room whose owner has left the view gets a new one.
/// The leader's standing duties when owners leave: a room's backup is promoted where it has a
/// live one, the other rooms are placed afresh, and every room gets a live backup.
let private reassignRooms (state: NodeState) : NodeState * Effect list =
    let lastSeq room = (historyOf room state).LastSeq
    if not (decidesWithQuorum state) then state, [] else
    applyPlacements (Replication.promoteBackups lastSeq state.Placements state.Backups state.Coordination) state
    |> then' (fun state -> applyPlacements (Placement.reassignRooms (clientsOn state) lastSeq state.Placements state.Coordination) state)
    |> then' assignBackups

/// Every owned room: a backup that fell behind (a lost message) is sent the state again, and
/// what can commit does. Missing messages not yet received are asked for again, of the room's
/// owner now (the one asked may have died).
let private replicateOwnedRooms (config: ProtocolConfig) (state: NodeState) : NodeState * Effect list =
    let resynced = state.Primaries |> Map.map (fun _ primary -> Replication.resyncIfStalled config.SuspectAfter primary)
    let stalled =
        [ for KeyValue(room, primary) in resynced do
              if primary.Synced.IsNone && state.Primaries[room].Synced.IsSome then
                  Log(Info, $"room {room}: the backup confirmed nothing new for {config.SuspectAfter} ticks; sending it the room's state again") ]
    let state = { state with Primaries = resynced }
    let owned = forEach replicate (List.ofSeq state.Primaries.Keys) (state, stalled)
    owned |> then' (fun state ->
        let stillMissing = state.FillsRequested |> Set.filter (fun room -> not (state.Primaries.ContainsKey room))
        { state with FillsRequested = stillMissing }, [ for room in stillMissing do yield! askForMissing room state ])

/// Every post still waiting goes to its room's owner again: a post can be lost on a broken link,
/// or reach a node that did not yet know the room had moved. The owner recognises a retry
/// (Replication.sequencePost), so a post is sequenced once however often it is sent.
let private resendWaiting (state: NodeState) : NodeState * Effect list =
    forEach routePost (state.Unconfirmed.Values |> Seq.concat) (state, [])

/// Rooms this node needs placed (members here, or posts waiting) and still has no live owner for.
let private retryPlacements (state: NodeState) : NodeState * Effect list =
    let wanted = Set.union (state.Chat.LocalMembers |> Map.keys |> Set.ofSeq) (state.Unconfirmed |> Map.filter (fun _ posts -> not posts.IsEmpty) |> Map.keys |> Set.ofSeq)
    needPlacements (wanted |> Set.filter (fun room -> Placement.needsPlacement room state.Placements state.Coordination)) state

/// A node far above its fair share of clients for K heartbeats in a row sends the excess to
/// the least-loaded node.
let private rebalance (config: ProtocolConfig) (state: NodeState) : NodeState * Effect list =
    let others = livePeers state |> List.map (fun info -> info, clientsOn state info.Id)
    let mine = clientsOn state (self state)
    let total = mine + List.sumBy snd others
    let fairShare = (total + others.Length) / (others.Length + 1)
    let excess target = min (mine - fairShare) (fairShare - snd target)
    match config.Rebalance, List.sortBy (fun (info: NodeInfo, clients) -> clients, info.Id) others with
    | Some policy, (target :: _) when mine * 100 > fairShare * (100 + policy.ThresholdPercent) && excess target > 0 ->
        if state.OverloadedTicks + 1 < config.SuspectAfter then
            { state with OverloadedTicks = state.OverloadedTicks + 1 }, []
        else
            let info, clients = target
            let movers = state.Chat.LocalNicks.Values |> Seq.sortDescending |> Seq.truncate (min (excess target) policy.MaxRedirectsPerTick) |> List.ofSeq
            let why = $"node {info.Id} has {clients} clients, this node {mine}"
            { state with OverloadedTicks = 0 },
            Log(Info, $"redirecting {movers.Length} client(s) to node {info.Id}: {why}")
            :: [ for client in movers do
                     reply client (Redirected(info.Id, info.ClientEndpoint, why))
                     CloseClient(client, $"redirected to node {info.Id}") ]
    | _ -> { state with OverloadedTicks = 0 }, []

/// Every room whose log was damaged: while its history has a gap, every live peer is asked for
/// the messages after the last seq before it (any node answers from its committed copy, and
/// fillDamaged takes what is missing); once whole, the log is rewritten so the damage does not
/// come back at the next start. What is written but not committed (stored as the backup, pending
/// as the owner) is written again after the history.
let private repairDamaged (state: NodeState) : NodeState * Effect list =
    let repair room (state: NodeState, effects: Effect list) =
        let history = historyOf room state
        match Rooms.firstGap history with
        | Some(before, _) -> state, effects @ [ for peer in livePeers state -> SendToPeer(peer, HistoryRequested(room, before, self state)) ]
        | None ->
            let uncommitted =
                (state.Replicas.TryFind room |> Option.defaultValue []) @ (state.Primaries.TryFind room |> Option.map _.Pending |> Option.defaultValue [])
                |> List.filter (fun message -> message.Seq > history.LastSeq)
                |> List.distinctBy _.Seq
                |> List.sortBy _.Seq
            let messages = Rooms.last Rooms.historyCapacity history @ uncommitted
            let last = messages |> List.tryLast |> Option.map _.Seq |> Option.defaultValue 0L
            { state with Damaged = state.Damaged.Remove room; Durable = state.Durable.Add(room, last) },
            effects @ [ RewriteLog(room, messages); Log(Info, $"room {room}: the gap left by the damaged log is filled; rewrote the log ({messages.Length} messages)") ]
    state.Damaged |> Set.fold (fun acc room -> repair room acc) (state, [])

let private tick (config: ProtocolConfig) (state: NodeState) =
    let load =
        { Clients = state.Chat.LocalNicks.Count
          Rooms = Placement.roomsOwned state.Placements (self state)
          MessagesPerSecond = state.MessagesSinceTick * 1000 / max 1 config.HeartbeatIntervalMs }
    let state =
        { state with
            TicksSinceStart = min (state.TicksSinceStart + 1) listenTicksBeforeElection
            MessagesSinceTick = 0
            Load = load }
    let state, effects =
        coordinate (fun c -> FailureDetector.tick config.SuspectAfter c, []) state
        |> then' (fun state -> (if hasQuorum state then state else { state with TicksSinceStart = 0 }), [])
        |> then' maybeStartElection
        // A node alone on the ring elects itself by messages to itself: leader before it decides.
        |> then' drainInbox
        |> then' reassignRooms
        |> then' (replicateOwnedRooms config)
        |> then' repairDamaged
        |> then' resendWaiting
        |> then' retryPlacements
        |> then' (rebalance config)
        |> then' (nicks (NickRegistry.Ticked(NickRegistry.maxTicksWaited config.SuspectAfter)))
    state, Multicast(HeartbeatSent(heartbeatOf state)) :: effects

let private shutdown (state: NodeState) =
    { state with Stopped = true },
    Log(Info, $"node {self state} is leaving the cluster") :: toEveryPeer state (LeaveAnnounced(self state)) @ [ Stop ]

/// Where the shell sends this node's heartbeat over TCP, besides the multicast group: to the
/// seeds always, and to every node it knows when there is no group (`hasGroup` false), so
/// seed-only clusters still see heartbeats.
let heartbeatTargets (seeds: Endpoint list) (hasGroup: bool) (state: NodeState) : Endpoint list =
    let known = if hasGroup then [] else [ for KeyValue(_, peer) in state.Peers -> peer.Info.PeerEndpoint ]
    List.distinct (seeds @ known)

/// Posts of this node's clients that may wait for their owners at once. Beyond it the shell reads
/// no client requests until some are sequenced: every waiting post is sent again each tick
/// (resendWaiting), so their number is work per tick, and a flood would make it unbounded.
let maxPostsInFlight = 1024

/// Whether the shell may hand this node more client requests now (see maxPostsInFlight).
let acceptsClientRequests (state: NodeState) : bool =
    let mutable waiting = 0
    for KeyValue(_, posts) in state.Unconfirmed do waiting <- waiting + posts.Length
    waiting < maxPostsInFlight

let private handle (config: ProtocolConfig) (state: NodeState) (event: Event) : NodeState * Effect list =
    match event with
    | Ticked -> tick config state
    | PeerMessageReceived message -> handlePeerMessage message state
    | ClientConnected(client, _) when state.Chat.Sessions.Count >= config.MaxClients ->
        state, [ refuse client ServerFull $"node {self state} has its maximum of {config.MaxClients} clients"; CloseClient(client, "server full") ]
    | ClientConnected(client, session) ->
        { state with Chat = { state.Chat with Sessions = state.Chat.Sessions.Add(client, Anonymous session) } }, []
    | ClientRequested(client, message) -> request config client message state
    | ClientDisconnected client -> disconnect client state
    | ShutdownRequested -> shutdown state

/// The one entry point: the next state and the effects to carry out, in order. The messages
/// the node sent itself on the way are handled before it returns.
let step (config: ProtocolConfig) (state: NodeState) (event: Event) : NodeState * Effect list =
    if state.Stopped then state, []
    else then' drainInbox (handle config state event)
