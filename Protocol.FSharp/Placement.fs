/// Room placement by the leader (spec/Placement.tla): the leader puts each new room on the
/// least-loaded live node and tells every node; when an owner leaves the view the leader puts
/// its rooms elsewhere. Every assignment carries the leader's epoch, the room's assignment
/// count and the leader's id; the newest (epoch, version, leader) wins everywhere.
module FormalChat.Protocol.Placement

type Placements = Map<RoomName, Assignment>

/// Spec: RoomsOwned(p, n).
let roomsOwned (placements: Placements) (node: NodeId) : int =
    placements |> Seq.sumBy (fun (KeyValue(_, placement)) -> if placement.Owner = node then 1 else 0)

/// The rooms a node owns, then its clients (from heartbeats), then its id: the lowest is least
/// loaded, so every replica of the rule picks the same node.
let private load (clients: NodeId -> int) (placements: Placements) (node: NodeId) =
    roomsOwned placements node, clients node, node

/// Spec: LeastLoaded(l). The live node owning the fewest rooms, then with the fewest clients
/// (from heartbeats), then the lowest id, so every replica of this rule picks the same node.
let leastLoaded (clients: NodeId -> int) (placements: Placements) (state: Coordination) : NodeId =
    state.View |> Seq.minBy (load clients placements)

/// A room needs a placement when nobody owns it, or its owner has left this node's view.
let needsPlacement (room: RoomName) (placements: Placements) (state: Coordination) : bool =
    match placements.TryFind room with
    | Some placement -> not (state.View.Contains placement.Owner)
    | None -> true

/// Spec: RequestRoom(i, r). Asks the leader to place a room; nothing to do without a leader
/// (the request is repeated on a later tick).
let requestRoom (room: RoomName) (placements: Placements) (state: Coordination) : Sent list =
    match state.Leader with
    | Some leader when needsPlacement room placements state -> [ { To = leader; Message = PlacementRequested(room, state.Self) } ]
    | _ -> []

let private announce (state: Coordination) (room: RoomName) (placement: Assignment) : Sent list =
    Coordination.announce state (RoomAssigned(room, placement))

/// Spec: AssignRoom(l, r). The leader places a room that needs it and announces the placement
/// to every node in its view; a room already placed on a live node is only re-announced to
/// the node that asked. `lastSeq` is the room's last sequence number the leader has seen, so a
/// new owner continues the sequence.
let assignRoom (clients: NodeId -> int) (lastSeq: int64) (requester: NodeId) (room: RoomName) (placements: Placements) (state: Coordination) : Placements * Sent list =
    if not (Coordination.isLeader state) then
        placements, []
    elif needsPlacement room placements state then
        let version = placements.TryFind room |> Option.map (fun current -> current.Version + 1) |> Option.defaultValue 1
        let placement =
            { Owner = leastLoaded clients placements state
              Epoch = state.Epoch
              Leader = state.Self
              Version = version
              LastSeq = lastSeq }
        placements.Add(room, placement), announce state room placement
    elif requester <> state.Self then
        placements, [ { To = requester; Message = RoomAssigned(room, placements[room]) } ]
    else
        placements, []

/// Spec (Replication.tla): Highest(l). The nodes of the view that hold the most of a room, as
/// they reported it (`held`).
let highest (held: NodeId -> int64) (state: Coordination) : NodeId list =
    let most = state.View |> Seq.map held |> Seq.max
    state.View |> Seq.filter (fun node -> held node = most) |> List.ofSeq

/// Spec (Replication.tla): AssignRoom(l). The leader places a room it has no placement of (a new
/// room, or any room after a whole-cluster restart) on the least-loaded of the nodes that hold
/// the most of it, and the sequence continues after what that node holds. `held` is what each
/// node of the view reported (RoomsHeld). Raft's rule that a shorter log never wins: by load
/// alone the owner could be a node that was down while messages committed, which would number
/// new messages at positions already acknowledged.
let assignUnplaced (clients: NodeId -> int) (held: NodeId -> int64) (room: RoomName) (placements: Placements) (state: Coordination) : Placements * Sent list =
    if not (Coordination.isLeader state) || placements.ContainsKey room then
        placements, []
    else
        let owner = highest held state |> List.minBy (load clients placements)
        let placement = { Owner = owner; Epoch = state.Epoch; Leader = state.Self; Version = 1; LastSeq = held owner }
        placements.Add(room, placement), announce state room placement

/// Spec: Newer(a, b). Assignments are ordered by epoch, then version, then leader, so that
/// of two leaders of one epoch the same assignment wins at every node.
let isNewer (assignment: Assignment) (than: Assignment) : bool =
    AssignmentOrder.isNewer (assignment.Epoch, assignment.Version, assignment.Leader) (than.Epoch, than.Version, than.Leader)

/// Spec: RecvAssignment(i, m). A newer assignment replaces the one this node has; any other
/// is ignored, so a late message never moves a room back.
let recvAssignment (room: RoomName) (placement: Assignment) (placements: Placements) : Placements =
    match placements.TryFind room with
    | Some current when not (isNewer placement current) -> placements
    | _ -> placements.Add(room, placement)

/// Spec: ReassignRooms(l). The leader moves every room whose owner has left its view, one by
/// one, so the load counts see each earlier move.
let reassignRooms (clients: NodeId -> int) (lastSeq: RoomName -> int64) (placements: Placements) (state: Coordination) : Placements * Sent list =
    if not (Coordination.isLeader state) then
        placements, []
    else
        placements
        |> Map.filter (fun room _ -> needsPlacement room placements state)
        |> Map.keys
        |> Seq.fold
            (fun (placements, sent) room ->
                let placed, more = assignRoom clients (lastSeq room) state.Self room placements state
                placed, sent @ more)
            (placements, [])
