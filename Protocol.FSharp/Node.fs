/// One node: the single entry point `step` that the C# shell calls for every event. It routes
/// each event to the sub-protocol that handles it (NodeCoordination, RoomPlacement, RoomReplica,
/// PeerChat, ClientRequests, NickClaims), drains the messages the node sent itself, and runs the tick's
/// duties in order. Nothing here reads a clock or touches a socket: time arrives as Ticked events
/// and randomness (session tokens) with the events that need it.
module FormalChat.Protocol.Node

open FormalChat.Protocol.NodeState
open FormalChat.Protocol.RoomReplica

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
    | ReplicaAppended(_, backup, _)
    | ReplicaStored(_, backup, _) -> Some backup.Epoch
    | NickClaimed claim
    | NickGranted claim
    | NickRefused(claim, _)
    | NickReleased claim -> Some claim.Term.Epoch
    | NicksReported(_, term, _)
    | NicksRequested term -> Some term.Epoch
    | _ -> None

/// Every peer message kind, to the sub-protocol that handles it.
let private handlePlausible (message: PeerMessage) (state: NodeState) : NodeState * Effect list =
    match message with
    | HeartbeatSent heartbeat when heartbeat.From.Id = self state -> state, []
    | HeartbeatSent heartbeat -> NodeCoordination.recvHeartbeat heartbeat state
    | Election election -> NodeCoordination.coordinate (Coordinator.RecvElection election) state
    | LeaderAnnounced leader -> NodeCoordination.coordinate (Coordinator.RecvLeader leader) state
    | LeaveAnnounced node -> NodeCoordination.recvLeave node state
    | PrivateForwarded line -> PeerChat.recvPrivate line state
    | UserJoined(user, previous) -> PeerChat.recvUserJoined user previous state
    | UserLeft(nick, node) -> PeerChat.recvUserLeft nick node state
    | MemberJoined(room, nick) -> PeerChat.recvMemberJoined room nick state
    | MemberLeft(room, nick) -> PeerChat.recvMemberLeft room nick state
    | UsersListed(node, users) -> PeerChat.recvUsersListed node users state
    | UsersRequested node -> state, toPeerAll state node (NodeCoordination.introduction state)
    | PlacementRequested(room, requester) -> RoomPlacement.recvPlacementRequest room requester state
    | RoomAssigned(room, placement) -> RoomPlacement.applyAssignment room placement state
    | RoomPosted post -> RoomPlacement.routePost post state
    | RoomSequenced message -> onReplica message.Room (Replication.recvSequenced message) state
    | BackupAssigned(room, backup) -> applyBackup room backup state
    | ReplicaSynced(room, backup, committed, pending) -> recvSync room backup committed pending state
    | ReplicaAppended(room, backup, messages) -> recvAppend room backup messages state
    | ReplicaStored(room, backup, seq) -> recvStored room backup seq state
    | HistoryRequested(room, after, requester) ->
        state, toPeer state requester (HistoryShared(room, Rooms.lastWithin Rooms.transferBudgetChars (Rooms.since after (historyOf room state))))
    | HistoryShared(room, messages) -> recvShared room messages state
    | RoomsHeld(node, rooms) -> RoomPlacement.recvRoomsHeld node rooms state
    | NickClaimed _ | NickGranted _ | NickRefused _ | NickReleased _ | NicksReported _ | NicksRequested _ ->
        NickClaims.nicks (NickRegistry.Received message) state

let handlePeerMessage (message: PeerMessage) (state: NodeState) : NodeState * Effect list =
    match epochNamed message with
    | Some epoch when epoch - state.Coordination.Epoch > maxEpochLead ->
        state, [ Log(Warning, $"a peer frame names epoch {epoch}, implausibly far ahead of this node's {state.Coordination.Epoch}; ignored") ]
    | _ -> handlePlausible message state

let private drainInbox (state: NodeState) : NodeState * Effect list = Inbox.drain handlePeerMessage state

/// The load this node reports in its heartbeats, counted since the last tick.
let private withLoad (config: ProtocolConfig) (state: NodeState) : NodeState =
    let load =
        { Clients = state.Chat.LocalNicks.Count
          Rooms = Placement.roomsOwned state.Placements (self state)
          MessagesPerSecond = state.MessagesSinceTick * 1000 / max 1 config.HeartbeatIntervalMs }
    { state with
        TicksSinceStart = min (state.TicksSinceStart + 1) listenTicksBeforeElection
        MessagesSinceTick = 0
        Load = load }

/// One heartbeat interval: the failure detector and maybe an election first, then the leader's,
/// the owners' and every node's standing duties, and this node's heartbeat.
let private tick (config: ProtocolConfig) (state: NodeState) =
    let state, effects =
        NodeCoordination.tick config.SuspectAfter (withLoad config state)
        // A node alone on the ring elects itself by messages to itself: leader before it decides.
        |> then' drainInbox
        |> then' RoomPlacement.reassignRooms
        |> then' (ReplicationTick.replicateOwnedRooms config)
        |> then' catchUpAgain
        |> then' LogRepair.repairDamaged
        |> then' (RoomPlacement.resendWaiting config.SuspectAfter)
        |> then' RoomPlacement.retryPlacements
        |> then' (Rebalance.rebalance config)
        |> then' (NickClaims.nicks (NickRegistry.Ticked(NickRegistry.maxTicksWaited config.SuspectAfter)))
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
/// no client requests until some are sequenced: a post that has waited suspectAfter ticks is sent
/// again (resendWaiting), and every waiting one is looked at each tick, so their number is work
/// per tick, and a flood would make it unbounded.
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
    | ClientConnected(client, session) -> ClientRequests.connect config client session state
    | ClientRequested(client, message) -> ClientRequests.request config client message state
    | ClientDisconnected client -> ClientRequests.disconnect client state
    | ShutdownRequested -> shutdown state

/// The one entry point: the next state and the effects to carry out, in order. The messages
/// the node sent itself on the way are handled before it returns.
let step (config: ProtocolConfig) (state: NodeState) (event: Event) : NodeState * Effect list =
    if state.Stopped then state, []
    else
        let handled = handle config state event
        if (fst handled).Inbox.IsEmpty then handled else then' drainInbox handled
