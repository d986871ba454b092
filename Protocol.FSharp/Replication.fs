/// Primary–backup replication of each room (spec/Replication.tla, docs/REPLICATION.md). The
/// leader gives every owned room a backup on another live node; the owner commits a message, and
/// only then sends it to anyone, once that backup has stored it. When the owner leaves the view
/// the leader promotes the backup, which already holds every committed message.
module FormalChat.Protocol.Replication

type Backups = Map<RoomName, BackupAssignment>

/// The owner's side of one room.
type Primary =
    { /// Sequenced here and not yet committed, oldest first.
      Pending: RoomMessage list
      /// The backup assignment the owner has sent its state to; None for none. The whole
      /// assignment, not its version: a new leader's assignment can repeat the version of the
      /// old leader's in a newer epoch, and comparing versions only then never sent the
      /// backup the state again (spec: SyncBackup; the posts stayed pending until
      /// resyncIfStalled, K ticks later).
      Synced: BackupAssignment option
      /// The highest sequence number that backup has confirmed; None until it confirmed the sync.
      Stored: int64 option
      /// The oldest pending message at the last tick: unchanged for K ticks means the backup
      /// missed something (a broken link), and the owner sends its state again. Some 0 when
      /// nothing was pending but the backup had not confirmed the state it was sent.
      PendingAtLastTick: int64 option
      /// Ticks in a row the oldest pending message has been the same one.
      StalledTicks: int }

let emptyPrimary =
    { Pending = []
      Synced = None
      Stored = None
      PendingAtLastTick = None
      StalledTicks = 0 }

let private isLeader (state: Coordination) = state.Leader = Some state.Self

/// Spec: HasQuorum(i). The node sees a majority of the nodes it knows (`known` counts itself),
/// or the cluster has at most two nodes. Without it a node commits nothing and, as leader,
/// decides nothing: a node cut off by a partition cannot give a room a second history.
/// (Two nodes cannot tell a crash from a partition; there the survivor keeps serving.)
let hasQuorum (known: int) (state: Coordination) : bool =
    known <= 2 || 2 * state.View.Count > known

let private announce (state: Coordination) (message: PeerMessage) : Sent list =
    [ for node in state.View do
          if node <> state.Self then { To = node; Message = message } ]

let private ownerOf (room: RoomName) (placements: Placement.Placements) =
    placements.TryFind room |> Option.map (fun placement -> placement.Owner)

/// Spec: RoomsBacked(b, n).
let roomsBacked (backups: Backups) (node: NodeId) : int =
    backups |> Seq.sumBy (fun (KeyValue(_, backup)) -> if backup.Backup = node then 1 else 0)

/// Spec: HasBackup(r). The room's backup serves its current owner and is live.
let hasBackup (room: RoomName) (placements: Placement.Placements) (backups: Backups) (state: Coordination) : bool =
    match ownerOf room placements, backups.TryFind room with
    | Some owner, Some backup -> backup.Owner = owner && backup.Backup <> owner && state.View.Contains backup.Backup
    | _ -> false

/// A live owner with another live node to copy to, and no backup serving it.
let needsBackup (room: RoomName) (placements: Placement.Placements) (backups: Backups) (state: Coordination) : bool =
    match ownerOf room placements with
    | Some owner -> state.View.Contains owner && state.View.Count > 1 && not (hasBackup room placements backups state)
    | None -> false

/// Spec: LeastLoadedBackup(l, o). The live node other than the owner holding the fewest rooms
/// (owned and backed), then with the fewest clients, then the lowest id.
let leastLoadedBackup (clients: NodeId -> int) (placements: Placement.Placements) (backups: Backups) (owner: NodeId) (state: Coordination) : NodeId =
    state.View
    |> Seq.filter (fun node -> node <> owner)
    |> Seq.minBy (fun node -> Placement.roomsOwned placements node + roomsBacked backups node, clients node, node)

/// Spec: Newer(a, b), for backup assignments: the order of placements (AssignmentOrder), since
/// two leaders of one epoch can each assign a room's backup as well.
let isNewer (assignment: BackupAssignment) (than: BackupAssignment) : bool =
    AssignmentOrder.isNewer (assignment.Epoch, assignment.Version, assignment.Leader) (than.Epoch, than.Version, than.Leader)

/// Spec: AssignBackup(l, r). The leader gives a room that needs one a backup and tells every node.
let assignBackup (clients: NodeId -> int) (room: RoomName) (placements: Placement.Placements) (backups: Backups) (state: Coordination) : Backups * Sent list =
    if not (isLeader state) || not (needsBackup room placements backups state) then
        backups, []
    else
        let owner = placements[room].Owner
        let version = backups.TryFind room |> Option.map (fun current -> current.Version + 1) |> Option.defaultValue 1
        let backup =
            { Backup = leastLoadedBackup clients placements backups owner state
              Owner = owner
              Epoch = state.Epoch
              Leader = state.Self
              Version = version }
        backups.Add(room, backup), announce state (BackupAssigned(room, backup))

/// Every room that needs a backup gets one, one after the other, so the counts see each choice.
let assignBackups (clients: NodeId -> int) (placements: Placement.Placements) (backups: Backups) (state: Coordination) : Backups * Sent list =
    placements
    |> Map.keys
    |> Seq.fold
        (fun (backups, sent) room ->
            let backups, more = assignBackup clients room placements backups state
            backups, sent @ more)
        (backups, [])

/// Spec: RecvBackupAssignment(i, m). A newer assignment replaces the one this node has.
let recvBackupAssignment (room: RoomName) (backup: BackupAssignment) (backups: Backups) : Backups =
    match backups.TryFind room with
    | Some current when not (isNewer backup current) -> backups
    | _ -> backups.Add(room, backup)

/// Spec: PromoteBackup(l, r). The owner has left the view and its backup is live: the leader
/// makes the backup the owner, with a newer placement, and tells every node. `lastSeq` is the
/// room's last sequence number the leader knows of.
let promoteBackup (lastSeq: int64) (room: RoomName) (placements: Placement.Placements) (backups: Backups) (state: Coordination) : Placement.Placements * Sent list =
    match placements.TryFind room, backups.TryFind room with
    | Some placement, Some backup when
        isLeader state
        && not (state.View.Contains placement.Owner)
        && backup.Owner = placement.Owner
        && state.View.Contains backup.Backup
        ->
        let promoted =
            { Owner = backup.Backup
              Epoch = state.Epoch
              Leader = state.Self
              Version = placement.Version + 1
              LastSeq = max lastSeq placement.LastSeq }
        placements.Add(room, promoted), announce state (RoomAssigned(room, promoted))
    | _ -> placements, []

let promoteBackups (lastSeq: RoomName -> int64) (placements: Placement.Placements) (backups: Backups) (state: Coordination) : Placement.Placements * Sent list =
    placements
    |> Map.keys
    |> Seq.fold
        (fun (placements, sent) room ->
            let placements, more = promoteBackup (lastSeq room) room placements backups state
            placements, sent @ more)
        (placements, [])

// ---------------------------------------------------------------------------------------------
// The owner.

/// The backup this node, as the room's owner, replicates to: assigned for it, and live.
let backupTarget (room: RoomName) (placements: Placement.Placements) (backups: Backups) (state: Coordination) : BackupAssignment option =
    if ownerOf room placements = Some state.Self && hasBackup room placements backups state then backups.TryFind room
    else None

/// What the owner makes of a post.
type Sequencing =
    /// A new message, with the next sequence number: stored here, not yet committed.
    | Sequenced of RoomMessage
    /// A retry of a committed message.
    | AlreadyCommitted of RoomMessage
    /// A retry of a message still waiting for the backup: it is committed once, later.
    | AlreadyPending

let private samePost (post: RoomPost) (message: RoomMessage) =
    post.ClientMessageId <> 0L && message.ClientMessageId = post.ClientMessageId && message.From = post.From

/// Spec: SequencePost(o, m). The next number continues after everything this node holds:
/// committed, pending, and what the placement says the previous owner reached.
let sequencePost (post: RoomPost) (placement: Assignment) (history: Rooms.RoomHistory) (primary: Primary) : Primary * Sequencing =
    match Rooms.alreadySequenced post history, List.exists (samePost post) primary.Pending with
    | Some message, _ -> primary, AlreadyCommitted message
    | None, true -> primary, AlreadyPending
    | None, false ->
        let lastPending = primary.Pending |> List.tryLast |> Option.map _.Seq |> Option.defaultValue 0L
        let message = Rooms.sequence post { placement with LastSeq = max placement.LastSeq lastPending } history
        { primary with Pending = primary.Pending @ [ message ] }, Sequenced message

/// Spec: SyncBackup(o, r). A backup the owner has not sent its state to gets the room's
/// committed history and every pending message; until it confirms, nothing commits.
let syncBackup (target: BackupAssignment option) (room: RoomName) (history: Rooms.RoomHistory) (primary: Primary) : Primary * Sent list =
    match target with
    | Some backup when primary.Synced <> Some backup ->
        { primary with Synced = Some backup; Stored = None; PendingAtLastTick = None; StalledTicks = 0 },
        [ { To = backup.Backup; Message = ReplicaSynced(room, backup, Rooms.lastWithin Rooms.transferBudgetChars (Rooms.last Rooms.historyCapacity history), primary.Pending) } ]
    | _ -> primary, []

/// Spec: RecvStored(o, n). The backup confirms it holds everything up to `seq`, for the
/// assignment `backup`; a confirmation for any other than the one last synced is stale.
let recvStored (backup: BackupAssignment) (seq: int64) (primary: Primary) : Primary =
    if primary.Synced <> Some backup then primary
    else { primary with Stored = Some(max seq (primary.Stored |> Option.defaultValue 0L)) }

/// Spec: Commit(o). With a quorum: the pending messages the backup has stored; without a backup
/// to wait for, all of them only when the owner is `alone` in its view (a cluster of one, or the
/// survivor of two). With other nodes live it waits for the leader's backup: committing alone
/// then would leave an acknowledged message on one node (a brand-new room before its backup
/// assignment arrives, or a room whose backup just died), and one crash would lose it.
let commit (quorum: bool) (alone: bool) (target: BackupAssignment option) (primary: Primary) : RoomMessage list * Primary =
    let stored =
        match target, primary.Stored with
        | _ when not quorum -> 0L
        | None, _ when alone -> System.Int64.MaxValue
        | None, _ -> 0L
        | Some backup, Some seq when primary.Synced = Some backup -> seq
        | Some _, _ -> 0L
    let committed, pending = primary.Pending |> List.partition (fun message -> message.Seq <= stored)
    committed, { primary with Pending = pending }

/// A backup that has not moved the oldest pending message on for `afterTicks` ticks is sent the
/// state again (a message to it was lost with a broken link), and so is one that has not
/// confirmed the state it was sent for that long, even with nothing pending (the transfer was
/// lost, or it reached the backup before the news that the owner owns the room, and the backup
/// ignored it): otherwise a quiet room would stay without an up-to-date backup. The node waits K
/// ticks, as long as it gives a silent peer: under load a busy backup confirms later than one
/// tick, and sending it the whole room again then only makes it later.
let resyncIfStalled (afterTicks: int) (primary: Primary) : Primary =
    let oldest =
        match primary.Pending with
        | first :: _ -> Some first.Seq
        | [] when primary.Synced.IsSome && primary.Stored.IsNone -> Some 0L
        | [] -> None
    if oldest.IsSome && oldest = primary.PendingAtLastTick then
        if primary.StalledTicks + 1 >= afterTicks then { primary with Synced = None; PendingAtLastTick = None; StalledTicks = 0 }
        else { primary with StalledTicks = primary.StalledTicks + 1 }
    else
        { primary with PendingAtLastTick = oldest; StalledTicks = 0 }

/// Whether the owner's backup has confirmed the state it was sent.
let isUpToDate (target: BackupAssignment option) (primary: Primary) : bool =
    match target with
    | Some backup -> primary.Synced = Some backup && primary.Stored.IsSome
    | None -> false

// ---------------------------------------------------------------------------------------------
// The backup.

/// Spec: StoreReplica(b, m). The backup stores the owner's next message when it follows
/// directly on what it holds (`held`, committed or not); otherwise it keeps what it has and its
/// reply shows the owner that it fell behind.
let storeReplica (message: RoomMessage) (held: int64) (stored: RoomMessage list) : RoomMessage list option =
    if message.Seq = held + 1L then Some(stored @ [ message ]) else None

/// The highest sequence number a node holds of a room: committed, or stored as a backup.
let held (history: Rooms.RoomHistory) (stored: RoomMessage list) : int64 =
    stored |> List.tryLast |> Option.map _.Seq |> Option.defaultValue 0L |> max history.LastSeq
