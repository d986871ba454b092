/// The coordination sub-protocol on a node: runs Coordinator.step on the node's Coordination,
/// reacts to its events (a node that appears is introduced to, users of a lost node are
/// forgotten, leader news is logged and told to the clients here) and routes what it sends.
module FormalChat.Protocol.NodeCoordination

open FormalChat.Protocol.Chat
open FormalChat.Protocol.Coordinator
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.RoomReplica
open FormalChat.Protocol.ClientReplies

/// What a node that has just appeared needs to know from this one: who is online here, and
/// where every room is placed.
/// The owner shares its rooms' history only once it has had a majority for a while (see
/// maybeStartElection): a node back from a partition may still believe it owns a room the
/// leader has moved meanwhile, and its history then lacks what was acknowledged since.
let introduction (state: NodeState) : PeerMessage list =
    let sharesHistory = state.TicksSinceStart >= listenTicksBeforeElection && hasQuorum state
    UsersListed(self state, [ for user in localUsers state.Chat -> knownUser (self state) user ])
    :: [ for KeyValue(room, placement) in state.Placements do
             yield RoomAssigned(room, placement)
             if placement.Owner = self state && sharesHistory then
                 yield HistoryShared(room, Rooms.lastWithin Rooms.transferBudgetChars (Rooms.last Rooms.historyCapacity (historyOf room state)))
         for KeyValue(room, backup) in state.Backups do
             yield BackupAssigned(room, backup)
         // Last, after the placements: a leader that has every report knows the placed rooms.
         yield RoomsHeld(self state, roomsHeld state) ]

/// Nodes that joined or left the view are logged; users of departed nodes are forgotten, and a
/// node that just appeared is told who is online here and where the rooms are.
let private onViewChanged (gained: Set<NodeId>) (lost: Set<NodeId>) (state: NodeState) : NodeState * Effect list =
    let view = state.Coordination.View
    let chat, goneUsers = forgetNodesOutside view state.Chat
    // A node back in the view reports again (its introduction): it may have restarted meanwhile.
    let state = { state with Chat = chat; HeldReports = state.HeldReports |> Map.filter (fun node _ -> not (lost.Contains node)) }
    state,
    [ for id in gained do
          Log(Info, $"node {id} joined the view {Set.toList view}")
          yield! toPeerAll state id (introduction state @ [ UsersRequested(self state) ])
      for id in lost do
          Log(Warning, $"node {id} left the view {Set.toList view}")
      for user in goneUsers do
          yield! presence state $"{user.Nick} left (node {user.Node} is gone)" ]

let private onLeaderChanged (leader: NodeId) (epoch: Epoch) (previous: NodeId option) (state: NodeState) : Effect list =
    [ if leader = self state then Log(Info, $"election won: node {leader} is the leader for epoch {epoch}")
      else Log(Info, $"leader is node {leader} (epoch {epoch})")
      if previous <> Some leader then toEveryLocal state (Notice $"leader is now node {leader} (epoch {epoch})") ]

let private react (event: CoordinationEvent) (state: NodeState) : NodeState * Effect list =
    match event with
    | ViewChanged(gained, lost) -> onViewChanged gained lost state
    | LeaderChanged(leader, epoch, previous) ->
        // The new leader is the nickname registrar: this node reports to it and claims again.
        NickClaims.nicks (NickRegistry.LeaderFollowed { Epoch = epoch; Leader = leader }) state
        |> fun (state, effects) -> state, onLeaderChanged leader epoch previous state @ effects
    | ElectionStarted epoch -> state, [ Log(Info, $"election started for epoch {epoch}: node {self state} is a candidate") ]
    | LeaveReceived node -> state, [ Log(Info, $"node {node} announced it is leaving") ]
    // The view change that follows names the suspected node ("left the view").
    | SuspicionRaised _ -> state, []

/// One coordination action on this node: the new Coordination, the reactions to its events in
/// order, then its messages (those to this node wait in the inbox).
let coordinate (action: CoordinationAction) (state: NodeState) : NodeState * Effect list =
    let after, sent, events = Coordinator.step action state.Coordination
    forEach react events ({ state with Coordination = after }, []) |> then' (Inbox.route sent)

/// No election without a majority, and none before this node has listened for a while since it
/// started or last regained a majority: a node cut off by a partition would otherwise come back
/// leading a newer epoch than the majority's leader, and decide over it before it has heard
/// everyone (its view grows one heartbeat at a time when the partition heals).
let maybeStartElection (state: NodeState) : NodeState * Effect list =
    if state.TicksSinceStart >= listenTicksBeforeElection && hasQuorum state then coordinate StartElection state
    else state, []

/// The sender's addresses and load, and the nodes it introduces that this node has not met.
let private rememberPeers (heartbeat: Heartbeat) (state: NodeState) : Map<NodeId, PeerEntry> =
    let introduced =
        heartbeat.Known |> List.filter (fun info -> info.Id <> self state && not (state.Peers.ContainsKey info.Id))
    let peers =
        introduced
        |> List.fold (fun (peers: Map<NodeId, PeerEntry>) (info: NodeInfo) -> peers.Add(info.Id, { Info = info; Load = Load.zero })) state.Peers
    peers.Add(heartbeat.From.Id, { Info = heartbeat.From; Load = heartbeat.Load })

/// Spec: RecvHeartbeat, then StartElection if its guard now holds.
let recvHeartbeat (heartbeat: Heartbeat) (state: NodeState) : NodeState * Effect list =
    let state = { state with Peers = rememberPeers heartbeat state }
    coordinate (RecvHeartbeat(heartbeat.From.Id, heartbeat.Epoch, heartbeat.Leader)) state
    |> then' maybeStartElection

/// Spec: RecvLeave, then StartElection if its guard now holds. A leave of a node not in view is
/// only logged.
let recvLeave (node: NodeId) (state: NodeState) : NodeState * Effect list =
    if node <> self state && not (state.Coordination.View.Contains node) then
        state, [ Log(Info, $"node {node} announced it is leaving, but it is not in this node's view; ignored") ]
    else
        coordinate (RecvLeave node) state |> then' maybeStartElection

/// Spec: Tick, and the quorum it leaves: a node without a majority listens again once it has one.
let tick (suspectAfter: int) (state: NodeState) : NodeState * Effect list =
    coordinate (Tick suspectAfter) state
    |> then' (fun state -> (if hasQuorum state then state else { state with TicksSinceStart = 0 }), [])
    |> then' maybeStartElection
