/// Room placement on a node: the leader's decisions of Placement.fs (owners) and Replication.fs
/// (backups) announced and applied here, and the posts that wait for a room's owner sent on to it.
module FormalChat.Protocol.RoomPlacement

open FormalChat.Protocol.Chat
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.RoomReplica

/// A post goes to its room's owner; without a live owner this node asks the leader for one
/// and the post waits in Unconfirmed until the placement arrives.
let routePost (post: RoomPost) (state: NodeState) : NodeState * Effect list =
    match state.Placements.TryFind post.Room with
    | Some placement when placement.Owner = self state -> sequenceAsOwner post placement state
    | Some placement when state.Coordination.View.Contains placement.Owner ->
        state, toPeer state placement.Owner (RoomPosted post)
    | _ -> Inbox.route (Placement.requestRoom post.Room state.Placements state.Coordination) (hold post state)

/// Spec: RecvAssignment on this node. When a room changes owner, the posts still waiting for
/// it go to the new owner, and its members are told.
let applyAssignment (room: RoomName) (placement: Assignment) (state: NodeState) : NodeState * Effect list =
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
        let waiting = state.Unconfirmed.TryFind room |> Option.defaultValue WaitingPosts.empty
        forEach routePost waiting.Posts (then' (takeOwnership room owner) (state, told))
        |> then' (askNewOwner room)

/// The leader's decisions (placements, backups): announced first, then applied here, so a post
/// this node forwards to a new owner reaches it after the news that it owns the room.
let private applyDecisions<'T when 'T: equality>
    (current: Map<RoomName, 'T>)
    (apply: RoomName -> 'T -> NodeState -> NodeState * Effect list)
    (decided: Map<RoomName, 'T>, sent: Sent list)
    (state: NodeState)
    : NodeState * Effect list =
    let changed = decided |> Map.filter (fun room decision -> current.TryFind room <> Some decision)
    changed |> Map.fold (fun progress room decision -> then' (apply room decision) progress) (Inbox.route sent state)

/// The leader's copy of each room it places on another node, to the new owner ahead of the
/// placement (the same link, so it arrives first): committed messages go only to the nodes
/// interested in a room (Replication.interestedNodes), the leader among them, and a new owner
/// that was not (a room placed afresh, or again after a full restart) would otherwise continue
/// the sequence after lastSeq without the history before it. A promoted backup holds it already.
let private handOverHistory (decided: Placement.Placements) (state: NodeState) : Effect list =
    [ for KeyValue(room, placement) in decided do
          let history = historyOf room state
          let isBackup = state.Backups.TryFind room |> Option.exists (fun backup -> backup.Backup = placement.Owner)
          let changed = state.Placements.TryFind room <> Some placement
          // A new owner that reported holding as much never has its copy replaced by a shorter one.
          let reported = state.HeldReports.TryFind placement.Owner |> Option.bind (Map.tryFind room) |> Option.defaultValue 0L
          if changed && placement.Owner <> self state && not isBackup && history.LastSeq > reported then
              yield! toPeer state placement.Owner (HistoryShared(room, Rooms.lastWithin Rooms.transferBudgetChars (Rooms.last Rooms.historyCapacity history))) ]

let private applyPlacements (decided: Placement.Placements * Sent list) (state: NodeState) =
    let handedOver = handOverHistory (fst decided) state
    let state, effects = applyDecisions state.Placements applyAssignment decided state
    state, handedOver @ effects

/// The leader's standing duty: every room with a live owner and no live backup gets one.
let private assignBackups (state: NodeState) : NodeState * Effect list =
    if not (decidesWithQuorum state) then state, [] else
    let decided = Replication.assignBackups (clientsOn state) state.Placements state.Backups state.Coordination
    applyDecisions state.Backups applyBackup decided state

/// A node's report of what it holds of each room (its introduction's RoomsHeld), kept while it
/// stays in this node's view (NodeCoordination forgets the reports of nodes that leave).
let recvRoomsHeld (node: NodeId) (rooms: (RoomName * int64) list) (state: NodeState) : NodeState * Effect list =
    if node = self state then state, []
    else { state with HeldReports = state.HeldReports.Add(node, Map.ofList rooms) }, []

/// Spec (Replication.tla): Highest(l), which AssignUnplaced(l) reads. What each node of the view
/// holds of the room (this node's own copy for itself), once every one of them has reported;
/// None until then. In a running cluster every node has reported in its introduction, so a new
/// room waits for nothing; after a whole-cluster restart a room waits until all have.
let private heldInView (room: RoomName) (state: NodeState) : (NodeId -> int64) option =
    let reported node = node = self state || state.HeldReports.ContainsKey node
    if not (Seq.forall reported state.Coordination.View) then None
    else Some(fun node -> if node = self state then heldOf room state else state.HeldReports[node].TryFind room |> Option.defaultValue 0L)

/// Spec: AssignRoom on the leader, for a node that asked. A room the leader has no placement of
/// goes to a node holding the most of it, once every node of the view has reported (the
/// requester asks again every tick until then). A room whose owner has left gets its backup
/// promoted first, as on the leader's tick: a fresh placement would start the room again
/// without what only the backup holds.
let recvPlacementRequest (room: RoomName) (requester: NodeId) (state: NodeState) : NodeState * Effect list =
    if not (decidesWithQuorum state) then state, []
    elif not (state.Placements.ContainsKey room) then
        match heldInView room state with
        | None ->
            // A report lost with a link would hold the room back for good: the silent nodes are asked
            // for their introduction again, as often as the room is asked for.
            let silent = state.Coordination.View |> Set.filter (fun node -> node <> self state && not (state.HeldReports.ContainsKey node))
            state,
            Log(Debug, $"room {room}: placed once nodes {Set.toList silent} have reported what they hold of it")
            :: [ for node in silent do yield! toPeer state node (UsersRequested(self state)) ]
        | Some held ->
            applyPlacements (Placement.assignUnplaced (clientsOn state) held room state.Placements state.Coordination) state
            |> then' assignBackups
    else
        let lastSeq = (historyOf room state).LastSeq
        applyPlacements (Replication.promoteBackup lastSeq room state.Placements state.Backups state.Coordination) state
        |> then' (fun state -> applyPlacements (Placement.assignRoom (clientsOn state) lastSeq requester room state.Placements state.Coordination) state)
        |> then' assignBackups

/// The leader's standing duties when owners leave: a room's backup is promoted where it has a
/// live one, the other rooms are placed afresh, and every room gets a live backup.
let reassignRooms (state: NodeState) : NodeState * Effect list =
    let lastSeq room = (historyOf room state).LastSeq
    if not (decidesWithQuorum state) then state, [] else
    applyPlacements (Replication.promoteBackups lastSeq state.Placements state.Backups state.Coordination) state
    |> then' (fun state -> applyPlacements (Placement.reassignRooms (clientsOn state) lastSeq state.Placements state.Coordination) state)
    |> then' assignBackups

/// Asks the leader to place each of these rooms that needs it (Spec: RequestRoom).
let needPlacements (rooms: RoomName seq) (state: NodeState) : NodeState * Effect list =
    rooms
    |> Seq.fold
        (fun progress room -> then' (Inbox.route (Placement.requestRoom room state.Placements state.Coordination)) progress)
        (state, [])

/// Rooms this node needs placed (members here, or posts waiting) and still has no live owner for.
let retryPlacements (state: NodeState) : NodeState * Effect list =
    let wanted = Set.union (state.Chat.LocalMembers |> Map.keys |> Set.ofSeq) (state.Unconfirmed |> Map.filter (fun _ posts -> not posts.IsEmpty) |> Map.keys |> Set.ofSeq)
    needPlacements (wanted |> Set.filter (fun room -> Placement.needsPlacement room state.Placements state.Coordination)) state

/// A waiting post goes to its room's owner again once it has waited `suspectAfter` ticks, and
/// then not again for as long: a post can be lost on a broken link, or reach a node that did not
/// yet know the room had moved. Posts the owner answers sooner are never sent again: under a
/// flood a thousand posts wait at any time, and sending them all every tick multiplied the
/// owner's work. The spec lets a post be sent any time the owner does not hold it; an owner
/// change sends them at once (applyAssignment). The owner recognises a retry
/// (Replication.sequencePost), so a post is sequenced once however often it is sent.
let resendWaiting (suspectAfter: int) (state: NodeState) : NodeState * Effect list =
    let watched =
        [ for KeyValue(room, waiting) in state.Unconfirmed do
              if not waiting.IsEmpty then
                  let marks = waiting.ArrivalCount :: (state.WaitingMarks.TryFind room |> Option.defaultValue []) |> List.truncate suspectAfter
                  let overdue = if marks.Length < suspectAfter then [] else WaitingPosts.arrivedBy (List.last marks) waiting
                  // Sent again now: not again before another suspectAfter ticks.
                  yield room, (if overdue.IsEmpty then marks else [ waiting.ArrivalCount ]), overdue ]
    let marks = Map [ for room, marks, _ in watched -> room, marks ]
    forEach routePost [ for _, _, overdue in watched do yield! overdue ] ({ state with WaitingMarks = marks }, [])
