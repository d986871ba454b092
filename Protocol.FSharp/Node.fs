/// One node: the single entry point `step` that the C# shell calls for every event. It wires
/// the failure detector, the election, room placement, room order and the chat together and
/// returns the effects to carry out. Nothing here reads a clock or touches a socket: time
/// arrives as Ticked events and randomness (session tokens) with the events that need it.
module FormalChat.Protocol.Node

open FormalChat.Protocol.Chat
open FormalChat.Protocol.NodeState

let private reply client message = SendToClients(Set.singleton client, message)
let private refuse client code reason = reply client (Error(code, reason))
let private toEveryLocal (state: NodeState) message = SendToClients(namedClients state.Chat, message)

/// Presence notices ("alice joined") go to everyone while the lobby is small; in a crowd they
/// would be most of the traffic (n arrivals announced to n users), so there `/who` tells instead.
let presenceNoticeLimit = 100

let private presenceExcept (excluded: ClientId option) (state: NodeState) (text: string) : Effect list =
    let everyone = namedClients state.Chat
    if everyone.Count > presenceNoticeLimit then []
    else [ SendToClients(excluded |> Option.fold (fun clients client -> Set.remove client clients) everyone, Notice text) ]

let private presence = presenceExcept None
let private toEveryPeer (state: NodeState) message = [ for info in livePeers state -> SendToPeer(info, message) ]

/// Every message to one node by id goes through here. A node this one has no address for
/// (never heard of, or named only by a frame) gets nothing and the log says so: a lookup must
/// never take the node down.
let private toPeerAll (state: NodeState) (node: NodeId) (messages: PeerMessage list) : Effect list =
    match state.Peers.TryFind node with
    | Some peer -> [ for message in messages -> SendToPeer(peer.Info, message) ]
    | None -> [ Log(Warning, $"no address for node {node}; dropped {messages.Length} message(s)") ]

let private toPeer (state: NodeState) (node: NodeId) (message: PeerMessage) : Effect list = toPeerAll state node [ message ]

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

let private then' (next: NodeState -> NodeState * Effect list) (state: NodeState, effects: Effect list) =
    let state, more = next state
    state, effects @ more

/// `next` for each item in turn, threading the state, with the effects in order. They are joined
/// once at the end: appending as it goes (then' in a fold) costs the square of the number of
/// items, and under load that is thousands of posts or messages in one step.
let private forEach (next: 'T -> NodeState -> NodeState * Effect list) (items: 'T seq) (state: NodeState, effects: Effect list) =
    let mutable state = state
    let batches = ResizeArray<Effect list>()
    batches.Add effects
    for item in items do
        let after, more = next item state
        state <- after
        if not more.IsEmpty then batches.Add more
    state, List.concat batches

// ---------------------------------------------------------------------------------------------
// Rooms: the replica rules (Replication.fs) applied to this node's state, and their outputs
// turned into effects.

/// The acknowledgement of a client's post: the post's sequenced message has come back to the
/// node the client posted through (committed by the owner, so its backup holds it), and the post
/// stops waiting there; the client sees the message itself, with its number, as its answer. A
/// post waiting here is done once its message is known here: as it arrives, or already in the
/// history (a retry of a message sequenced before). Nicknames are unique, so a sender and a
/// client message id name one message, whichever node the retry went through; without an id (0)
/// the text and the sender's node must match too.
let private acknowledgePost (message: RoomMessage) (state: NodeState) : NodeState =
    let waiting = state.Unconfirmed.TryFind message.Room |> Option.defaultValue []
    let isThis (post: RoomPost) =
        post.From = message.From
        && (if message.ClientMessageId = 0L then post.Text = message.Text && post.FromNode = message.FromNode
            else post.ClientMessageId = message.ClientMessageId)
    match List.tryFindIndex isThis waiting with
    | Some index -> { state with Unconfirmed = state.Unconfirmed.Add(message.Room, List.removeAt index waiting) }
    | None -> state

/// A committed message goes to the room's members here, unless they have been shown its number.
let private show (message: RoomMessage) (state: NodeState) : NodeState * Effect list =
    let shown = state.Shown.TryFind message.Room |> Option.defaultValue 0L
    if message.Seq <= shown then state, []
    else { state with Shown = state.Shown.Add(message.Room, message.Seq) }, [ SendToClients(localMembers message.Room state.Chat, Message message) ]

/// Asks the room's live owner for the committed messages after the last one this node has.
let private askForMissing (room: RoomName) (state: NodeState) : Effect list =
    match state.Placements.TryFind room with
    | Some placement when placement.Owner <> self state && state.Coordination.View.Contains placement.Owner ->
        toPeer state placement.Owner (HistoryRequested(room, (historyOf room state).LastSeq, self state))
    | _ -> []

/// What this node holds of a room, as the replica rules see it.
let private replicaOf (room: RoomName) (state: NodeState) : Replication.Replica =
    { History = historyOf room state
      Stored = state.Replicas.TryFind room |> Option.defaultValue []
      Primary = state.Primaries.TryFind room
      Durable = state.Durable.TryFind room |> Option.defaultValue 0L
      AwaitingFill = state.FillsRequested.Contains room }

/// The replica back into the state, each map touched only where the replica changed it.
let private withReplica (room: RoomName) (before: Replication.Replica) (replica: Replication.Replica) (state: NodeState) : NodeState =
    let changed (a: 'T) (b: 'T) = not (LanguagePrimitives.PhysicalEquality a b)
    let state = if changed before.History replica.History then { state with Histories = state.Histories.Add(room, replica.History) } else state
    let state =
        if not (changed before.Stored replica.Stored) then state
        elif replica.Stored.IsEmpty then { state with Replicas = state.Replicas.Remove room }
        else { state with Replicas = state.Replicas.Add(room, replica.Stored) }
    let state =
        match replica.Primary with
        | _ when not (changed before.Primary replica.Primary) -> state
        | Some primary -> { state with Primaries = state.Primaries.Add(room, primary) }
        | None -> { state with Primaries = state.Primaries.Remove room }
    let state = if before.Durable <> replica.Durable then { state with Durable = state.Durable.Add(room, replica.Durable) } else state
    if before.AwaitingFill = replica.AwaitingFill then state
    elif replica.AwaitingFill then { state with FillsRequested = state.FillsRequested.Add room }
    else { state with FillsRequested = state.FillsRequested.Remove room }

/// One replica output as effects on this node, in order.
let private carryOut (room: RoomName) (output: Replication.ReplicaOutput) (state: NodeState) : NodeState * Effect list =
    match output with
    | Replication.LogAppended messages -> state, [ AppendToLog(room, messages) ]
    | Replication.LogReplaced messages ->
        state, [ RewriteLog(room, messages); Log(Info, $"room {room}: replaced this node's copy with the owner's ({messages.Length} messages)") ]
    | Replication.Delivered message -> show message (acknowledgePost message state)
    | Replication.AlreadyDelivered message -> acknowledgePost message state, []
    | Replication.SentTo sent -> state, toPeer state sent.To sent.Message
    | Replication.Broadcast message -> state, toEveryPeer state message
    | Replication.FillRequested -> state, askForMissing room state
    | Replication.SharedHistoryRefused ->
        state, [ Log(Warning, $"room {room}: ignored a shared history that disagrees with this node's copy (it owns or backs up the room)") ]
    | Replication.StoredBeyondSequenced(confirmed, sequenced) ->
        state, [ Log(Warning, $"replica-stored for {room} confirms seq {confirmed}, beyond the {sequenced} this owner sequenced; ignored") ]

/// Runs one replica rule on a room of this node and carries out what it asks.
let private onReplica (room: RoomName) (rule: Replication.Replica -> Replication.Replica * Replication.ReplicaOutput list) (state: NodeState) : NodeState * Effect list =
    let before = replicaOf room state
    let after, outputs = rule before
    forEach (carryOut room) outputs (withReplica room before after state, [])

/// A room whose log was damaged takes the seqs it lacks from any node's committed copy: the
/// messages only fill the gap (Rooms.fill), they are not shown again (members here saw them
/// before the restart, or get them with the room's history) and are written when the repaired
/// log is rewritten (repairDamaged).
let private fillDamaged (room: RoomName) (messages: RoomMessage list) (state: NodeState) : NodeState =
    if state.Damaged.Contains room then { state with Histories = state.Histories.Add(room, Rooms.fill messages (historyOf room state)) }
    else state

/// Committed messages another node shares as the room's owner (Replication.recvShared).
let private recvShared (room: RoomName) (messages: RoomMessage list) (state: NodeState) : NodeState * Effect list =
    let backsUp = state.Backups.TryFind room |> Option.exists (fun backup -> backup.Backup = self state)
    onReplica room (Replication.recvShared backsUp messages) (fillDamaged room messages state)

/// A leader decides (places rooms, promotes backups, assigns them) only with a majority it has
/// heard from within about an interval (age 0 or 1), not merely one still in its view: a leader
/// cut off by a partition loses its peers from the view one tick at a time, and for a tick or two
/// its view still holds a majority that is already gone. Nor before it has listened since it
/// started or regained a majority (see maybeStartElection): a node back from a partition, or
/// restarted, can win an election others start before it has heard everyone, and would take the
/// nodes it has not heard yet for dead.
let private decidesWithQuorum (state: NodeState) : bool =
    let heard = state.Coordination.Age |> Seq.filter (fun (KeyValue(_, age)) -> age <= 1) |> Seq.length
    let known = state.Peers.Count + 1
    hasQuorum state && state.TicksSinceStart >= listenTicksBeforeElection && (known <= 2 || 2 * (heard + 1) > known)

let private backupTarget (room: RoomName) (state: NodeState) =
    Replication.backupTarget room state.Placements state.Backups state.Coordination

/// The owner's replication step for a room: a backup that has not had the room's state gets
/// it (SyncBackup), and what the backup has stored (everything, when the owner is alone in its
/// view) is committed: written and delivered here and sent to every node (Commit).
let private replicate (room: RoomName) (state: NodeState) : NodeState * Effect list =
    if not (state.Primaries.ContainsKey room) then
        state, []
    else
        let target = backupTarget room state
        let alone = state.Coordination.View.Count = 1
        onReplica room (Replication.syncBackup target room) state
        |> then' (onReplica room (Replication.commit (hasQuorum state) alone target))

/// The owner gives a post the room's next number and sends it to the backup; it is committed
/// when the backup confirms. A retry of a committed message is only sent again to the node that
/// retried; a retry of a pending one waits with it.
let private sequenceAsOwner (post: RoomPost) (placement: Assignment) (state: NodeState) : NodeState * Effect list =
    // The placement names this node: it acts as the owner even before it has taken the room over.
    let before = replicaOf post.Room state
    let before = { before with Primary = Some(before.Primary |> Option.defaultValue Replication.emptyPrimary) }
    match Replication.sequencePost post placement (backupTarget post.Room state) before with
    | _, Replication.AlreadyCommitted message, _ ->
        let state = acknowledgePost message state
        if post.FromNode <> self state then state, toPeer state post.FromNode (RoomSequenced message)
        else state, []
    | _, (Replication.AlreadyPending | Replication.NotOwner), _ -> state, []
    | after, Replication.Sequenced _, outputs ->
        let state = { withReplica post.Room before after state with MessagesSinceTick = state.MessagesSinceTick + 1 }
        forEach (carryOut post.Room) outputs (state, []) |> then' (replicate post.Room)

/// The room's backup assignment changed here: the owner sends its state to a new backup.
let private applyBackup (room: RoomName) (backup: BackupAssignment) (state: NodeState) : NodeState * Effect list =
    let backups = Replication.recvBackupAssignment room backup state.Backups
    if backups = state.Backups then state, []
    else replicate room { state with Backups = backups }

let private isCurrentBackup (backup: BackupAssignment) (room: RoomName) (state: NodeState) =
    Replication.isCurrentBackup (self state) backup room state.Placements state.Backups

/// Spec: RecvSync, on the backup (Replication.recvSync), after the assignment it carries.
let private recvSync (room: RoomName) (backup: BackupAssignment) (committed: RoomMessage list) (pending: RoomMessage list) (state: NodeState) =
    let state, effects = applyBackup room backup state
    let current = isCurrentBackup backup room state
    let state = if current then fillDamaged room committed state else state
    then' (onReplica room (Replication.recvSync current room backup committed pending)) (state, effects)

/// Spec: StoreReplica, on the backup (Replication.storeReplica), after the assignment it carries.
let private recvAppend (backup: BackupAssignment) (message: RoomMessage) (state: NodeState) =
    let state, effects = applyBackup message.Room backup state
    let current = isCurrentBackup backup message.Room state
    then' (onReplica message.Room (Replication.storeReplica current backup message)) (state, effects)

/// Spec: RecvStored, on the owner (Replication.recvStored), then what can commit does.
let private recvStored (room: RoomName) (backup: BackupAssignment) (seq: int64) (state: NodeState) =
    if not (state.Primaries.ContainsKey room) then state, []
    else
        let state, effects = onReplica room (Replication.recvStored backup seq) state
        if effects.IsEmpty then replicate room state else state, effects

/// Spec: TakeOwnership (Replication.takeOwnership); a new owner then commits what it can.
let private takeOwnership (room: RoomName) (owner: NodeId) (state: NodeState) : NodeState * Effect list =
    let owns = owner = self state
    let becomesOwner = owns && not (state.Primaries.ContainsKey room)
    let state, effects = onReplica room (Replication.takeOwnership owns) state
    if becomesOwner then then' (replicate room) (state, effects) else state, effects

/// A post from another node that this node cannot place yet (the owner's assignment has not
/// arrived here, or names a node that has left) waits here like a local one, and goes on when
/// the assignment arrives: the sender sends it only once.
let private hold (post: RoomPost) (state: NodeState) : NodeState =
    let waiting = state.Unconfirmed.TryFind post.Room |> Option.defaultValue []
    if post.FromNode = self state || List.contains post waiting then state
    else { state with Unconfirmed = state.Unconfirmed.Add(post.Room, waiting @ [ post ]) }

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
        [ if after.Participant && after.Epoch > before.Epoch
             && sent |> List.exists (fun m -> m.Message = Election { Candidate = self state; Epoch = after.Epoch }) then
              Log(Info, $"election started for epoch {after.Epoch}: node {self state} is a candidate")
          if after.Leader <> before.Leader || after.Epoch <> before.Epoch then
              match after.Leader with
              | Some leader when leader = self state -> Log(Info, $"election won: node {leader} is the leader for epoch {after.Epoch}")
              | Some leader -> Log(Info, $"leader is node {leader} (epoch {after.Epoch})")
              | None -> ()
          match after.Leader with
          | Some leader when after.Leader <> before.Leader ->
              toEveryLocal state (Notice $"leader is now node {leader} (epoch {after.Epoch})")
          | _ -> () ]
    then' (routeSent sent) (state, viewLogs @ electionLogs)

/// No election without a majority, and none before this node has listened for a while since it
/// started or last regained a majority: a node cut off by a partition would otherwise come back
/// leading a newer epoch than the majority's leader, and decide over it before it has heard
/// everyone (its view grows one heartbeat at a time when the partition heals).
let private maybeStartElection (state: NodeState) : NodeState * Effect list =
    if state.TicksSinceStart >= listenTicksBeforeElection && hasQuorum state && Election.needsElection state.Coordination then
        coordinate Election.startElection state
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

let private needPlacements (rooms: RoomName seq) (state: NodeState) : NodeState * Effect list =
    rooms
    |> Seq.fold
        (fun progress room -> then' (routeSent (Placement.requestRoom room state.Placements state.Coordination)) progress)
        (state, [])

let private joinedReply (room: RoomName) (state: NodeState) : ServerReply =
    Joined(room, state.Placements.TryFind room |> Option.map (fun a -> a.Owner), memberCount room state.Chat)

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
            | None -> Rooms.last config.HistoryOnJoin (historyOf room state)
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

let private disconnect (client: ClientId) (state: NodeState) =
    let stillHere = state.Chat.LocalNicks |> Map.tryFindKey (fun _ c -> c = client)
    let state' = { state with Chat = forget client (self state) state.Chat }
    match stillHere, namedSession client state.Chat with
    | Some _, Some session when (state.Chat.Directory.TryFind session.Nick |> Option.map _.Node) = Some(self state) ->
        state',
        presence state' $"{session.Nick} left" @ [ Log(Info, $"{session.Nick} disconnected (client {client})") ]
        @ toEveryPeer state' (UserLeft(session.Nick, self state))
    | _ -> state', []

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
    state, Multicast(HeartbeatSent(heartbeatOf state)) :: effects

let private shutdown (state: NodeState) =
    { state with Stopped = true },
    Log(Info, $"node {self state} is leaving the cluster") :: toEveryPeer state (LeaveAnnounced(self state)) @ [ Stop ]

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
