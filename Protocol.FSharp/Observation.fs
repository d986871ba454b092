/// What a node shows operators about itself (the dashboard's /status.json and /metrics): a
/// read-only projection of its state. Nothing in the protocol reads it. Plain arrays and
/// numbers (0 for "no node", -1 for "not known here") so the shell serialises it as is.
module FormalChat.Protocol.Observation

open FormalChat.Protocol.NodeState

type NodeRow =
    { Id: NodeId
      ClientEndpoint: string
      /// In this node's view (believed live).
      InView: bool
      IsLeader: bool
      IsSelf: bool
      /// Heartbeat intervals since this node last heard from it (0 for itself, -1 when out of
      /// the view); suspected at SuspectAfter.
      HeartbeatAge: int
      Clients: int
      Rooms: int
      MessagesPerSecond: int }

type RoomRow =
    { /// Text, as /status.json shows it.
      Room: string
      /// 0 while the room is not placed.
      Owner: NodeId
      /// 0 without a backup.
      Backup: NodeId
      /// The newest sequence number this node holds of the room (where it has no member, and is
      /// neither the owner, the backup nor the leader, it is not sent the room's messages: it may lag).
      LastSeq: int64
      LocalMembers: int
      /// On the owner only: messages it has sequenced that its backup has not confirmed
      /// (-1 on other nodes, who cannot know).
      ReplicationLag: int64 }

type NodeView =
    { Self: NodeId
      /// 0 while an election runs.
      Leader: NodeId
      Epoch: Epoch
      Electing: bool
      HasQuorum: bool
      SuspectAfter: int
      HeartbeatIntervalMs: int
      Nodes: NodeRow array
      Rooms: RoomRow array }

/// The owner's view of how far its backup is behind: everything it sequenced (committed or
/// pending) minus what the backup confirmed.
let replicationLag (state: NodeState) (room: RoomName) : int64 =
    match state.Primaries.TryFind room with
    | None -> -1L
    | Some primary ->
        let sequenced =
            if primary.Pending.IsEmpty then (historyOf room state).LastSeq else primary.Pending.LastSeq
        let confirmed = primary.Stored |> Option.defaultValue 0L
        max 0L (sequenced - confirmed)

let ofState (config: ProtocolConfig) (state: NodeState) : NodeView =
    let coordination = state.Coordination
    let leader = coordination.Leader |> Option.defaultValue 0
    let row (id: NodeId) (endpoint: Endpoint) (load: Load) : NodeRow =
        { Id = id
          ClientEndpoint = $"{endpoint.Host}:{endpoint.Port}"
          InView = coordination.View.Contains id
          IsLeader = (id = leader)
          IsSelf = (id = self state)
          HeartbeatAge =
            if id = self state then 0
            else coordination.Age.TryFind id |> Option.defaultValue -1
          Clients = load.Clients
          Rooms = load.Rooms
          MessagesPerSecond = load.MessagesPerSecond }
    let nodes =
        [| yield row (self state) state.Info.ClientEndpoint state.Load
           for KeyValue(id, peer) in state.Peers do
               if id <> self state then yield row id peer.Info.ClientEndpoint peer.Load |]
        |> Array.sortBy (fun node -> node.Id)
    let rooms =
        Set.union (state.Placements |> Map.keys |> Set.ofSeq) (state.Histories |> Map.keys |> Set.ofSeq)
        |> Seq.map (fun room ->
            { Room = room.Value
              Owner = state.Placements.TryFind room |> Option.map (fun placement -> placement.Owner) |> Option.defaultValue 0
              Backup = state.Backups.TryFind room |> Option.map (fun backup -> backup.Backup) |> Option.defaultValue 0
              LastSeq = (historyOf room state).LastSeq
              LocalMembers = (Chat.localMembers room state.Chat).Count
              ReplicationLag = replicationLag state room })
        |> Array.ofSeq
    { Self = self state
      Leader = leader
      Epoch = coordination.Epoch
      Electing = coordination.Participant
      HasQuorum = hasQuorum state
      SuspectAfter = config.SuspectAfter
      HeartbeatIntervalMs = config.HeartbeatIntervalMs
      Nodes = nodes
      Rooms = rooms }
