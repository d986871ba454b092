/// A node's whole state, the events that drive it and the effects it asks of the shell.
module FormalChat.Protocol.NodeState

open FormalChat.Protocol.Chat
open FormalChat.Protocol.Rooms

/// A node that has been more than ThresholdPercent above its fair share of clients for K
/// heartbeats redirects the excess, at most MaxRedirectsPerTick at once, to the least-loaded node.
type RebalancePolicy =
    { ThresholdPercent: int
      MaxRedirectsPerTick: int }

module RebalancePolicy =
    let defaults = { ThresholdPercent = 50; MaxRedirectsPerTick = 100 }

type ProtocolConfig =
    { /// K: a peer that misses this many heartbeats in a row is suspected.
      SuspectAfter: int
      HeartbeatIntervalMs: int
      MaxClients: int
      MaxTextLength: int
      /// Messages a client receives when it joins a room.
      HistoryOnJoin: int
      Rebalance: RebalancePolicy option }

/// The protocol's parameters as a node runs them unless told otherwise: the one place their
/// defaults are written (the command line's usage text and parsing read them from here).
module ProtocolConfig =
    let defaults =
        { SuspectAfter = 3
          HeartbeatIntervalMs = 2000
          MaxClients = 10_000
          MaxTextLength = 4000
          HistoryOnJoin = 50
          Rebalance = Some RebalancePolicy.defaults }

type PeerEntry = { Info: NodeInfo; Load: Load }

/// Clients this node redirected to Target that Target's heartbeats may not show yet: a
/// redirected client reconnects there and is counted only once the registrar grants its nickname
/// (NickClaims), which can take longer than K heartbeats. Target counts as holding at least
/// Expected clients until it reports them, for at most TicksLeft more ticks (a client may go
/// elsewhere, or give up).
type RedirectInFlight = { Target: NodeId; Expected: int; TicksLeft: int }

/// What a client that joined a room is shown of its history once this node's copy is current:
/// the messages after the one it saw last (a resume), or the last few (a join).
type HistoryWanted =
    | Since of int64
    | Last of int

type NodeState =
    { Info: NodeInfo
      Coordination: Coordination
      /// Every node ever heard of, with its addresses and its last reported load. The view in
      /// Coordination says which of them are believed live.
      Peers: Map<NodeId, PeerEntry>
      Chat: ChatState
      Placements: Placement.Placements
      /// The recent committed messages of rooms: current where this node has members, owns or
      /// backs up the room (or leads); any other copy may be stale (RoomReplica.catchUp).
      Histories: Map<RoomName, RoomHistory>
      /// The leader's choice of backup for each room (Replication.fs).
      Backups: Replication.Backups
      /// The rooms this node owns: what waits for the backup.
      Primaries: Map<RoomName, Replication.Primary>
      /// The rooms this node backs up: messages stored and not yet seen committed.
      Replicas: Map<RoomName, Uncommitted>
      /// The last sequence number of each room written to this node's log on disk.
      Durable: Map<RoomName, int64>
      /// The newest sequence number of each room shown to its members here. A member sees each
      /// number once and in increasing order, whatever this node's copy goes through meanwhile
      /// (an owner's copy replacing it can take its last number back).
      Shown: Map<RoomName, int64>
      /// Rooms for which this node has asked the owner for messages it missed (one at a time).
      FillsRequested: Set<RoomName>
      /// Clients that joined a room while this node had no member in it, and what history they
      /// want: committed messages go only to nodes with members (Replication.interestedNodes), so
      /// this node's copy may be stale. They are shown nothing of the room until the owner's
      /// answer to this node's request for the history arrives (RoomReplica.catchUp, release).
      CatchingUp: Map<RoomName, Map<ClientId, HistoryWanted>>
      /// What each other node reported it holds of each room (RoomsHeld, in its introduction),
      /// while it stays in this node's view: a leader places a room it has no placement of only
      /// once every node of its view has reported, on one holding the most (RoomPlacement).
      HeldReports: Map<NodeId, Map<RoomName, int64>>
      /// Rooms whose log was damaged in the middle: read back with a gap (Rooms.firstGap). The
      /// node asks its peers for the missing seqs every tick until the gap is filled, then
      /// rewrites the room's log whole (LogRepair.repairDamaged).
      Damaged: Set<RoomName>
      /// Posts not yet seen sequenced: of local clients, and from other nodes that arrived before
      /// this node knew a live owner. Sent again when the room's owner changes.
      Unconfirmed: Map<RoomName, WaitingPosts>
      /// Each room's WaitingPosts.ArrivalCount at the last ticks, newest first, up to
      /// suspectAfter of them: a post that had arrived by the oldest has waited that many ticks
      /// and is sent to the owner again (RoomPlacement.resendWaiting).
      WaitingMarks: Map<RoomName, int64 list>
      /// The id this node gives the next post a client sends without one, negated (Rooms.idKey):
      /// so the room's owner recognises it when it is sent again after an owner change. The
      /// shell starts it from its clock (startNumberingPosts), so a restarted node never repeats
      /// an earlier run's ids; the node is part of the key, so other nodes' ids never collide.
      NextPostId: int64
      /// Heartbeat intervals since start, or since the node last lacked a majority (up to
      /// listenTicksBeforeElection).
      TicksSinceStart: int
      MessagesSinceTick: int
      Load: Load
      /// Consecutive ticks this node has been over its fair share of clients. It acts only after
      /// K of them: by then every peer's heartbeat shows its real load, so a burst of connections
      /// or clients still on their way after a redirect do not look like an imbalance.
      OverloadedTicks: int
      /// The clients of this node's last redirect, until the target's heartbeats show them.
      Redirected: RedirectInFlight option
      /// Messages this node sent itself in this step, oldest first: Node.step handles them
      /// before it returns, so the inbox is empty between steps.
      Inbox: PeerMessage list
      /// Nicknames: this node's claims, and the registry while it leads (NickRegistry.fs).
      Nicks: NickRegistry.State
      Stopped: bool }

type Event =
    | Ticked
    | PeerMessageReceived of PeerMessage
    /// A new client connection, with a fresh random session token drawn by the shell.
    | ClientConnected of ClientId * session: string
    | ClientRequested of ClientId * ClientRequest
    | ClientDisconnected of ClientId
    | ShutdownRequested

type LogLevel =
    | Debug
    | Info
    | Warning

/// What the shell must do after a step. Effects are carried out in list order: a Log follows
/// the change it reports, and a CloseClient follows the last reply to that client.
type Effect =
    | SendToPeer of NodeInfo * PeerMessage
    | Multicast of PeerMessage
    /// One reply to many local clients: the shell encodes it once.
    | SendToClients of Set<ClientId> * ServerReply
    | CloseClient of ClientId * reason: string
    /// Append these messages, in order, to the room's log on disk; effects after it wait until
    /// the write is as durable as --fsync asks (an acknowledgement may depend on it).
    | AppendToLog of RoomName * RoomMessage list
    /// The room's log on disk becomes exactly these messages (a state transfer).
    | RewriteLog of RoomName * RoomMessage list
    | Log of LogLevel * string
    /// The node has said goodbye; the shell may exit.
    | Stop

/// No election before the second tick: a node that has just started first listens for a full
/// interval, so a cluster started together runs one round, not one per node. A node that lacked a
/// majority listens again once it has one back, so it hears everyone before it elects.
let listenTicksBeforeElection = 2

let init (info: NodeInfo) : NodeState =
    { Info = info
      Coordination = Coordination.init info.Id
      Peers = Map.empty
      Chat = Chat.empty
      Placements = Map.empty
      Histories = Map.empty
      Backups = Map.empty
      Primaries = Map.empty
      Replicas = Map.empty
      Durable = Map.empty
      Shown = Map.empty
      FillsRequested = Set.empty
      CatchingUp = Map.empty
      HeldReports = Map.empty
      Damaged = Set.empty
      Unconfirmed = Map.empty
      WaitingMarks = Map.empty
      NextPostId = 1L
      TicksSinceStart = 0
      MessagesSinceTick = 0
      Load = Load.zero
      OverloadedTicks = 0
      Redirected = None
      Inbox = []
      Nicks = NickRegistry.empty
      Stopped = false }

let self (state: NodeState) = state.Info.Id

/// The shell's starting point for the ids this node gives posts sent without one: above every
/// id an earlier run of this node gave (the shell uses its clock in microseconds).
let startNumberingPosts (firstPostId: int64) (state: NodeState) : NodeState =
    if firstPostId < 1L || firstPostId >= (1L <<< 53) then invalidArg (nameof firstPostId) "must be in 1..2^53"
    { state with NextPostId = firstPostId }

/// A node that starts again reads its logs back (oldest first per room): the history of every
/// room it held survives a restart of the whole cluster.
let recover (logs: (RoomName * RoomMessage list) list) (state: NodeState) : NodeState =
    let histories = logs |> List.map (fun (room, messages) -> room, Rooms.ofMessages messages)
    { state with
        Histories = Map.ofList histories
        Durable = histories |> List.map (fun (room, history) -> room, history.LastSeq) |> Map.ofList
        // A log damaged in the middle keeps the intact records after the damage: a gap to fill.
        Damaged = set [ for room, history in histories do if (Rooms.firstGap history).IsSome then room ] }

let historyOf (room: RoomName) (state: NodeState) : RoomHistory =
    match state.Histories.TryGetValue room with
    | true, history -> history
    | _ -> emptyHistory

/// The highest sequence number this node holds of a room, committed or stored as the backup.
let heldOf (room: RoomName) (state: NodeState) : int64 =
    Replication.held (historyOf room state) (state.Replicas.TryFind room |> Option.defaultValue Uncommitted.empty)

/// This node's report to the others (RoomsHeld): what it holds of every room it has.
let roomsHeld (state: NodeState) : (RoomName * int64) list =
    [ for room in Set.union (Set.ofSeq state.Histories.Keys) (Set.ofSeq state.Replicas.Keys) -> room, heldOf room state ]

/// Clients on a node: live for this node, as of the last heartbeat for the others.
let clientsOn (state: NodeState) (node: NodeId) : int =
    if node = self state then state.Chat.LocalNicks.Count
    else state.Peers.TryFind node |> Option.map (fun peer -> peer.Load.Clients) |> Option.defaultValue 0

/// Spec: HasQuorum, with every node this node has heard of counted as a member.
let hasQuorum (state: NodeState) : bool =
    Replication.hasQuorum (state.Peers.Count + 1) state.Coordination

let livePeers (state: NodeState) : NodeInfo list =
    [ for id in state.Coordination.View do
          if id <> self state then
              match state.Peers.TryFind id with
              | Some peer -> peer.Info
              | None -> () ]

let heartbeatOf (state: NodeState) : Heartbeat =
    { From = state.Info
      Epoch = state.Coordination.Epoch
      Leader = state.Coordination.Leader
      Load = state.Load
      Known = [ for KeyValue(_, peer) in state.Peers -> peer.Info ] }

let clusterStatus (state: NodeState) : ClusterStatus =
    let leader = state.Coordination.Leader
    let row id (info: NodeInfo) (load: Load) : NodeStatus =
        { Id = id; ClientEndpoint = info.ClientEndpoint; Load = load; IsLeader = (leader = Some id); IsSelf = (id = self state) }
    let upToDate room =
        if state.Primaries.ContainsKey room then
            let target = Replication.backupTarget room state.Placements state.Backups state.Coordination
            Replication.isUpToDate target state.Primaries[room]
        else
            Replication.hasBackup room state.Placements state.Backups state.Coordination
    { Self = self state
      Leader = leader
      Epoch = state.Coordination.Epoch
      Unreplicated = [ for room in state.Placements.Keys do if not (upToDate room) then room ]
      Nodes =
        [ for id in state.Coordination.View do
              // This node's own counts are live; the rest of its load is as of the last tick.
              if id = self state then
                  row id state.Info { state.Load with Clients = clientsOn state id; Rooms = Placement.roomsOwned state.Placements id }
              else
                  match state.Peers.TryFind id with
                  | Some peer -> row id peer.Info peer.Load
                  | None -> () ] }

/// What must hold of a node's state after every step (TigerBeetle-style: the simulator checks it
/// after each one and stops at the first violation, with the event that broke it): the
/// coordination invariants; no message a node sent itself left unhandled; every room's log
/// reaching as far as its history (what a restart reads back holds what was delivered); and a
/// node acting as a room's owner only while its placement names it.
let invariantViolations (state: NodeState) : string list =
    [ yield! Coordination.invariantViolations state.Coordination
      if not state.Inbox.IsEmpty then $"{state.Inbox.Length} message(s) this node sent itself were left unhandled"
      for KeyValue(room, history) in state.Histories do
          let durable = state.Durable.TryFind room |> Option.defaultValue 0L
          if durable < history.LastSeq then $"room {room}: the log ends at {durable}, the history at {history.LastSeq}"
      for room in state.Primaries.Keys do
          match state.Placements.TryFind room with
          | Some placement when placement.Owner = self state -> ()
          | placement -> $"room {room}: acts as the owner, but the placement names {placement |> Option.map _.Owner}" ]
