/// Primary–backup replication of each room (spec/Replication.tla, docs/REPLICATION.md). The
/// leader gives every owned room a backup on another live node; the owner commits a message, and
/// only then sends it to anyone, once that backup has stored it. When the owner leaves the view
/// the leader promotes the backup, which already holds every committed message.
module FormalChat.Protocol.Replication

type Backups = Map<RoomName, BackupAssignment>

/// The owner's side of one room.
/// What the owner was waiting on its backup for at the last tick: the same thing for K ticks
/// means the backup missed something (a broken link), and the owner sends its state again.
type Awaiting =
    | Idle
    /// The oldest pending message, to be confirmed stored.
    | OldestPending of seq: int64
    /// Nothing is pending, but the backup has not confirmed the state it was sent.
    | SyncConfirmation

type Primary =
    { /// Sequenced here and not yet committed.
      Pending: Uncommitted
      /// The backup assignment the owner has sent its state to; None for none. The whole
      /// assignment, not its version: a new leader's assignment can repeat the version of the
      /// old leader's in a newer epoch, and comparing versions only then never sent the
      /// backup the state again (spec: SyncBackup; the posts stayed pending until
      /// resyncIfStalled, K ticks later).
      Synced: BackupAssignment option
      /// The highest sequence number that backup has confirmed; None until it confirmed the sync.
      Stored: int64 option
      /// The last sequence number of each append in flight to that backup and not yet
      /// confirmed, oldest first: at most the window (sendAppends).
      InFlight: int64 list
      /// What the owner waited on at the last tick.
      AwaitingAtLastTick: Awaiting
      /// Ticks in a row the owner has waited on the same thing.
      StalledTicks: int }

let emptyPrimary =
    { Pending = Uncommitted.empty
      Synced = None
      Stored = None
      InFlight = []
      AwaitingAtLastTick = Idle
      StalledTicks = 0 }

/// Spec: HasQuorum(i). The node sees a majority of the nodes it knows (`known` counts itself),
/// or the cluster has at most two nodes. Without it a node commits nothing and, as leader,
/// decides nothing: a node cut off by a partition cannot give a room a second history.
/// (Two nodes cannot tell a crash from a partition; there the survivor keeps serving.)
let hasQuorum (known: int) (state: Coordination) : bool =
    known <= 2 || 2 * state.View.Count > known

let private ownerOf (room: RoomName) (placements: Placement.Placements) =
    placements.TryFind room |> Option.map (fun placement -> placement.Owner)

/// Spec: RoomsBacked(b, n).
let roomsBacked (backups: Backups) (node: NodeId) : int =
    backups |> Seq.sumBy (fun (KeyValue(_, backup)) -> if backup.Backup = node then 1 else 0)

/// Spec: HasBackup(r). The room's backup serves its current owner and is live.
let hasBackup (room: RoomName) (placements: Placement.Placements) (backups: Backups) (state: Coordination) : bool =
    match placements.TryGetValue room with
    | true, placement ->
        match backups.TryGetValue room with
        | true, backup -> backup.Owner = placement.Owner && backup.Backup <> placement.Owner && state.View.Contains backup.Backup
        | _ -> false
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
    if not (Coordination.isLeader state) || not (needsBackup room placements backups state) then
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
        backups.Add(room, backup), Coordination.announce state (BackupAssigned(room, backup))

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
        Coordination.isLeader state
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
        placements.Add(room, promoted), Coordination.announce state (RoomAssigned(room, promoted))
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
// One node's replica of one room, and the rules every node follows for it: the owner's, the
// backup's and every node's. Each rule is a spec action (or the operator of one) and returns
// the replica and what the node must do, in order: its writes go before its sends (NodeHost
// makes a turn's writes durable before any send leaves).

/// What one node holds of one room (spec: history[i], replicas[i], primary[i], disk[i], and
/// i \in missing).
type Replica =
    { /// The committed messages this node holds.
      History: Rooms.RoomHistory
      /// Stored as the room's backup and not yet seen committed.
      Stored: Uncommitted
      /// The owner's side, while this node owns the room.
      Primary: Primary option
      /// The last sequence number written to this node's log: what a restart reads back ends
      /// there (spec: LastOf(disk[i])).
      Durable: int64
      /// This node has asked the owner for committed messages it missed (one request at a time).
      AwaitingFill: bool }

let emptyReplica =
    { History = Rooms.emptyHistory; Stored = Uncommitted.empty; Primary = None; Durable = 0L; AwaitingFill = false }

/// What a replica rule asks of the node, in order.
type ReplicaOutput =
    /// Append these messages to the room's log.
    | LogAppended of RoomMessage list
    /// The room's log becomes exactly these messages: this node held something the owner never
    /// committed, and a log read back after a restart must not hold it.
    | LogReplaced of RoomMessage list
    /// A committed message this node did not hold: its members are shown it, and the post it
    /// answers is acknowledged.
    | Delivered of RoomMessage
    /// A committed message this node held already: the post it answers is acknowledged.
    | AlreadyDelivered of RoomMessage
    | SentTo of Sent
    /// A committed message, to every live node of interestedNodes (as RoomSequenced).
    | SentToInterested of RoomMessage
    /// Committed messages missed: ask the room's owner for those after the last one held.
    | FillRequested
    /// A shared history that disagrees with this node's copy, ignored: this node owns or backs
    /// up the room, and its copy holds what was acknowledged since.
    | SharedHistoryRefused
    /// A confirmation beyond what this owner sequenced (forged or broken), ignored.
    | StoredBeyondSequenced of confirmed: int64 * sequenced: int64

/// Spec: Persist(d, ms). Writes what the node holds and has not written yet.
let private persist (messages: RoomMessage list) (replica: Replica) : Replica * ReplicaOutput list =
    let fresh (message: RoomMessage) = message.Seq > replica.Durable
    // A batch is usually all new: the same list, with no copy.
    match (if List.forall fresh messages then messages else List.filter fresh messages) with
    | [] -> replica, []
    | fresh -> { replica with Durable = (List.last fresh).Seq }, [ LogAppended fresh ]

/// The log becomes the history and then `stored`: what the node wrote and was never committed
/// goes.
let private rewriteWith (history: Rooms.RoomHistory) (stored: RoomMessage list) (replica: Replica) : Replica * ReplicaOutput list =
    let messages = Rooms.last Rooms.historyCapacity history @ stored
    let last = messages |> List.tryLast |> Option.map _.Seq |> Option.defaultValue 0L
    { replica with History = history; Durable = last }, [ LogReplaced messages ]

let private rewrite (history: Rooms.RoomHistory) (replica: Replica) = rewriteWith history [] replica

/// `next` for each item in turn, with the outputs in order.
let private forEach (next: 'T -> Replica -> Replica * ReplicaOutput list) (items: 'T list) (replica: Replica) =
    let mutable replica = replica
    let outputs = ResizeArray<ReplicaOutput list>()
    for item in items do
        let after, more = next item replica
        replica <- after
        outputs.Add more
    replica, List.concat outputs

/// The highest sequence number a node holds of a room: committed, or stored as a backup.
let held (history: Rooms.RoomHistory) (stored: Uncommitted) : int64 =
    max stored.LastSeq history.LastSeq

/// Spec: DeliverSequenced(h, stored, d, m). A committed message reaches this node: kept in the
/// history and the log, and no longer only a backup's copy. A stored copy that differs was
/// never committed (its owner died first): it goes, with everything stored after it, and the
/// log is rewritten so that a restart cannot read it back.
let deliverSequenced (message: RoomMessage) (replica: Replica) : Replica * ReplicaOutput list =
    let superseded =
        match Uncommitted.tryFind message.Seq replica.Stored with
        | Some stored -> not (LanguagePrimitives.PhysicalEquality stored message) && stored <> message
        | None -> false
    let stored = if superseded then Uncommitted.empty else Uncommitted.after message.Seq replica.Stored
    // The stored copies and the history change in one copy of the replica (a backup's, per message).
    match Rooms.tryRecord message replica.History with
    | ValueNone -> (if LanguagePrimitives.PhysicalEquality stored replica.Stored then replica else { replica with Stored = stored }), [ AlreadyDelivered message ]
    | ValueSome history when superseded ->
        let replica, written = rewrite history { replica with Stored = stored }
        replica, written @ [ Delivered message ]
    // persist [ message ], without a list to filter.
    | ValueSome history when message.Seq > replica.Durable ->
        { replica with Stored = stored; History = history; Durable = message.Seq }, [ LogAppended [ message ]; Delivered message ]
    | ValueSome history -> { replica with Stored = stored; History = history }, [ Delivered message ]

/// Spec: Adopt(h, stored, d, committed). Committed messages from the owner: the ones this node
/// lacked are delivered in order, unless this node's copy disagrees; then the owner's replaces it.
/// Either way it no longer waits for a fill.
let adoptHistory (committed: RoomMessage list) (replica: Replica) : Replica * ReplicaOutput list =
    let replica = { replica with AwaitingFill = false }
    match Rooms.adopt committed replica.History with
    | Rooms.Extends fresh -> forEach deliverSequenced fresh replica
    | Rooms.Replaces history -> rewrite history replica

/// Committed messages another node shares as the room's owner (a reply to HistoryRequested, or
/// its introduction). A node that owns or backs up the room never lets them replace its copy:
/// the sender may be an owner that lost the room while it was cut off, and this node's copy
/// holds what was acknowledged since. Spec: FillGap (a fill only extends).
let recvShared (backsUp: bool) (committed: RoomMessage list) (replica: Replica) : Replica * ReplicaOutput list =
    let replica = { replica with AwaitingFill = false }
    match Rooms.adopt committed replica.History with
    | Rooms.Replaces _ when backsUp || replica.Primary.IsSome -> replica, [ SharedHistoryRefused ]
    | _ -> adoptHistory committed replica

/// Spec: RecvSequenced(i, j). A committed message from the owner. One that skips numbers means
/// this node missed some (a broken link, or an owner that died while sending): it is held back
/// (the fill brings it again, in order) and the owner is asked for the missing ones, once.
let recvSequenced (message: RoomMessage) (replica: Replica) : Replica * ReplicaOutput list =
    if message.Seq <= replica.History.LastSeq + 1L then deliverSequenced message replica
    elif replica.AwaitingFill then replica, []
    else { replica with AwaitingFill = true }, [ FillRequested ]

/// Spec: TakeOwnership(n). A node that has just become the room's owner makes what it stored
/// as the backup pending (the next Commit commits it); a node that stops owning the room forgets
/// what was pending (the senders' nodes send those posts to the new owner), and its log, which
/// may hold them (stored as the backup before it was promoted), is rewritten without them.
let takeOwnership (owns: bool) (replica: Replica) : Replica * ReplicaOutput list =
    match replica.Primary with
    | None when owns ->
        let pending = Uncommitted.after replica.History.LastSeq replica.Stored
        { replica with Primary = Some { emptyPrimary with Pending = pending }; Stored = Uncommitted.empty }, []
    | Some primary when not owns ->
        let replica = { replica with Primary = None }
        if primary.Pending.IsEmpty then replica, [] else rewrite replica.History replica
    | _ -> replica, []

// ---------------------------------------------------------------------------------------------
// The owner.

/// The backup this node, as the room's owner, replicates to: assigned for it, and live.
/// This node owns the room (ownerOf room = Some self) and hasBackup, with one lookup in each map
/// (the owner asks this per post).
let backupTarget (room: RoomName) (placements: Placement.Placements) (backups: Backups) (state: Coordination) : BackupAssignment option =
    match placements.TryGetValue room with
    | true, placement when placement.Owner = state.Self ->
        match backups.TryGetValue room with
        | true, backup when backup.Owner = placement.Owner && backup.Backup <> placement.Owner && state.View.Contains backup.Backup -> Some backup
        | _ -> None
    | _ -> None

/// What the owner makes of a post.
type Sequencing =
    /// A new message, with the next sequence number: pending here, not yet committed.
    | Sequenced of RoomMessage
    /// A retry of a committed message.
    | AlreadyCommitted of RoomMessage
    /// A retry of a message still waiting for the backup: it is committed once, later.
    | AlreadyPending
    /// This node does not act as the room's owner.
    | NotOwner

/// Spec: SequencePost(o, m). A retry (the same sender and client message id) is found by that
/// key among the committed and the pending messages. The next number continues after
/// everything this node holds:
/// committed, pending, and what the placement says the previous owner reached. Not written to
/// the log now but when it commits (deliverSequenced): a log read back after a crash must not
/// hold, as history, a message this owner never committed. It goes to the backup with the next
/// append (sendAppends).
let sequencePost (post: RoomPost) (placement: Assignment) (replica: Replica) : Replica * Sequencing * ReplicaOutput list =
    match replica.Primary with
    | None -> replica, NotOwner, []
    | Some primary ->
    let history = Rooms.indexed replica.History
    let pending = Uncommitted.indexed primary.Pending
    match Rooms.alreadySequenced post history, (Uncommitted.tryFindPost post pending).IsSome with
    | Some message, _ -> replica, AlreadyCommitted message, []
    | None, true -> replica, AlreadyPending, []
    | None, false ->
        let message = Rooms.sequenceAfter post (max history.LastSeq (max placement.LastSeq primary.Pending.LastSeq))
        let primary = { primary with Pending = Uncommitted.add message pending }
        { replica with History = history; Primary = Some primary }, Sequenced message, []

/// primary.Synced = Some backup, with no option built to compare (the owner asks this per post).
let private isSyncedTo (backup: BackupAssignment) (primary: Primary) : bool =
    match primary.Synced with
    | Some synced -> LanguagePrimitives.PhysicalEquality synced backup || synced = backup
    | None -> false

/// Spec: SyncBackup(o). A backup the owner has not sent its state to gets the room's
/// committed history and every pending message; until it confirms, nothing commits.
let syncBackup (target: BackupAssignment option) (room: RoomName) (replica: Replica) : Replica * ReplicaOutput list =
    match target, replica.Primary with
    | Some backup, Some primary when not (isSyncedTo backup primary) ->
        let committed = Rooms.lastWithin Rooms.transferBudgetChars (Rooms.last Rooms.historyCapacity replica.History)
        { replica with Primary = Some { primary with Synced = Some backup; Stored = None; InFlight = []; AwaitingAtLastTick = Idle; StalledTicks = 0 } },
        [ SentTo { To = backup.Backup; Message = ReplicaSynced(room, backup, committed, primary.Pending.Messages) } ]
    | _ -> replica, []

/// Appends an owner keeps in flight to its backup, unconfirmed, at most (spec: Window). Under a
/// flood the posts that arrive while the window is full go together in the next append, so a
/// backup's confirmation frees room for a whole batch: one peer frame, one write and one fsync
/// at the backup for many messages (group commit).
let appendWindow = 4

/// Spec: SendAppends(o). Once the backup has confirmed the state it was sent, the pending
/// messages not sent to it yet go in one append, while fewer than `window` appends are in
/// flight. A batch ends at Rooms.transferBudgetChars of text, so a frame stays far below the
/// peer frame limit (the spec's models never reach it).
let sendAppends (window: int) (target: BackupAssignment option) (room: RoomName) (replica: Replica) : Replica * ReplicaOutput list =
    match target, replica.Primary with
    | Some backup, Some({ Stored = Some stored } as primary) when isSyncedTo backup primary && primary.InFlight.Length < window ->
        let lastSent = primary.InFlight |> List.tryLast |> Option.defaultValue stored
        match Uncommitted.takeAfter lastSent Rooms.transferBudgetChars primary.Pending with
        | [] -> replica, []
        | batch ->
            let primary = { primary with InFlight = primary.InFlight @ [ (List.last batch).Seq ] }
            { replica with Primary = Some primary }, [ SentTo { To = backup.Backup; Message = ReplicaAppended(room, backup, batch) } ]
    | _ -> replica, []

/// Spec: RecvStored(o, b). The backup confirms it holds everything up to `seq`, for the
/// assignment `backup`; a confirmation for any other than the one last synced is stale. It is
/// cumulative: every append in flight up to `seq` is done, and the window has room again. A
/// backup that confirms less than this owner has committed never took the state it was sent
/// (the transfer was lost, or reached it before the news that this node owns the room, and it
/// ignored it): it is not up to date, and is sent the state again. A backup's copy is exactly
/// what the owner sent it, so an honest confirmation never goes past what the owner sequenced;
/// one that does is forged or broken, and taking it would commit what no backup holds.
let recvStored (backup: BackupAssignment) (seq: int64) (replica: Replica) : Replica * ReplicaOutput list =
    match replica.Primary with
    | None -> replica, []
    | Some primary ->
        let sequenced = max primary.Pending.LastSeq replica.History.LastSeq
        if seq > sequenced then replica, [ StoredBeyondSequenced(seq, sequenced) ]
        elif not (isSyncedTo backup primary) then replica, []
        elif seq < replica.History.LastSeq then { replica with Primary = Some { primary with Synced = None; Stored = None; InFlight = [] } }, []
        else
            let stored = max seq (primary.Stored |> Option.defaultValue 0L)
            { replica with Primary = Some { primary with Stored = Some stored; InFlight = primary.InFlight |> List.filter (fun last -> last > seq) } }, []

/// How far the owner may commit (spec: CommitUpTo(o)).
type private CommitLimit =
    | Nothing
    | Everything
    | UpTo of int64

/// Spec: Commit(o). With a quorum: the pending messages the backup has stored; without a backup
/// to wait for, all of them only when the owner is `alone` in its view (a cluster of one, or the
/// survivor of two). With other nodes live it waits for the leader's backup: committing alone
/// then would leave an acknowledged message on one node (a brand-new room before its backup
/// assignment arrives, or a room whose backup just died), and one crash would lose it. Each
/// committed message is delivered (and written) here, then sent to the interested nodes.
let commit (quorum: bool) (alone: bool) (target: BackupAssignment option) (replica: Replica) : Replica * ReplicaOutput list =
    match replica.Primary with
    | None -> replica, []
    | Some primary ->
        let limit =
            match target, primary.Stored with
            | _ when not quorum -> Nothing
            | None, _ when alone -> Everything
            | None, _ -> Nothing
            | Some backup, Some seq when isSyncedTo backup primary -> UpTo seq
            | Some _, _ -> Nothing
        let committed, pending =
            match limit with
            | Nothing -> [], primary.Pending
            | Everything -> Uncommitted.upTo primary.Pending.LastSeq primary.Pending
            | UpTo seq -> Uncommitted.upTo seq primary.Pending
        match committed with
        | [] -> replica, []
        // What deliverSequenced does to each, in one copy of the replica and one write (group
        // commit): all of them are new here and nothing is stored as a backup, as on an owner.
        // The write goes before the sends, as a turn's writes do anyway.
        | first :: _ when replica.Stored.IsEmpty && first.Seq > replica.History.LastSeq && first.Seq > replica.Durable ->
            let history = committed |> List.fold (fun history message -> (Rooms.tryRecord message history).Value) replica.History
            let outputs = List.foldBack (fun message outputs -> Delivered message :: SentToInterested message :: outputs) committed []
            { replica with History = history; Durable = history.LastSeq; Primary = Some { primary with Pending = pending } },
            LogAppended committed :: outputs
        | [ message ] ->
            let replica, delivered = deliverSequenced message { replica with Primary = Some { primary with Pending = pending } }
            replica, delivered @ [ SentToInterested message ]
        | _ ->
        let mutable replica = { replica with Primary = Some { primary with Pending = pending } }
        // Newest first.
        let mutable outputs = []
        for message in committed do
            let after, delivered = deliverSequenced message replica
            replica <- after
            for output in delivered do outputs <- output :: outputs
            outputs <- SentToInterested message :: outputs
        replica, List.rev outputs

/// Spec: Interested(o), for one node: whether the owner sends it a committed message (see
/// interestedNodes). The owner tests each node of its view with it, with no set per message.
let isInterested (owner: NodeId) (isMemberNode: NodeId -> bool) (backup: BackupAssignment option) (coordination: Coordination) (node: NodeId) : bool =
    let isBackup = match backup with Some assignment -> assignment.Backup = node | None -> false
    let isLeader = match coordination.Leader with Some leader -> leader = node | None -> false
    node <> owner && coordination.View.Contains node && (isMemberNode node || isBackup || isLeader)

/// Spec: Interested(o). Where the owner sends a committed message: the nodes with members in the
/// room (they show it), the room's backup as the owner knows it (it must hold every committed
/// message, to be promoted), and the leader (its history gives a new placement's lastSeq); of
/// those, the ones in the owner's view, not the owner. Any other node's copy may grow stale: it
/// catches up when it gains a member (RoomReplica.catchUp). The caller counts the node a post came
/// through among the member nodes (its post waits there for this message, the acknowledgement,
/// even after the sender left the room); the spec, which has no clients, does not.
let interestedNodes (owner: NodeId) (memberNodes: Set<NodeId>) (backup: BackupAssignment option) (coordination: Coordination) : Set<NodeId> =
    let backupNodes = backup |> Option.map (fun assignment -> assignment.Backup) |> Option.toList
    let leaders = coordination.Leader |> Option.toList
    Set.union memberNodes (Set.ofList (backupNodes @ leaders))
    |> Set.filter (isInterested owner memberNodes.Contains backup coordination)

/// A backup that has not moved the oldest pending message on for `afterTicks` ticks is sent the
/// state again (a message to it was lost with a broken link), and so is one that has not
/// confirmed the state it was sent for that long, even with nothing pending (the transfer was
/// lost, or it reached the backup before the news that the owner owns the room, and the backup
/// ignored it): otherwise a quiet room would stay without an up-to-date backup. The node waits K
/// ticks, as long as it gives a silent peer: under load a busy backup confirms later than one
/// tick, and sending it the whole room again then only makes it later.
let resyncIfStalled (afterTicks: int) (primary: Primary) : Primary =
    let awaiting =
        match Uncommitted.tryFirst primary.Pending with
        | Some first -> OldestPending first.Seq
        | None when primary.Synced.IsSome && primary.Stored.IsNone -> SyncConfirmation
        | None -> Idle
    if awaiting <> Idle && awaiting = primary.AwaitingAtLastTick then
        if primary.StalledTicks + 1 >= afterTicks then { primary with Synced = None; AwaitingAtLastTick = Idle; StalledTicks = 0 }
        else { primary with StalledTicks = primary.StalledTicks + 1 }
    else
        { primary with AwaitingAtLastTick = awaiting; StalledTicks = 0 }

/// Whether the owner's backup has confirmed the state it was sent.
let isUpToDate (target: BackupAssignment option) (primary: Primary) : bool =
    match target with
    | Some backup -> isSyncedTo backup primary && primary.Stored.IsSome
    | None -> false

// ---------------------------------------------------------------------------------------------
// The backup.

/// Spec: IsCurrentBackup(b, a, assigned). This node stores for that owner only while it is the
/// room's backup for it and the owner still owns the room here: a node just promoted must not
/// store for the owner it replaced.
let isCurrentBackup (self: NodeId) (backup: BackupAssignment) (room: RoomName) (placements: Placement.Placements) (backups: Backups) : bool =
    backup.Backup = self && backups.TryFind room = Some backup && ownerOf room placements = Some backup.Owner

let private confirmStored (room: RoomName) (backup: BackupAssignment) (replica: Replica) : ReplicaOutput =
    SentTo { To = backup.Owner; Message = ReplicaStored(room, backup, held replica.History replica.Stored) }

/// Spec: RecvSync(b, o), for the backup `current` says this node is. Its copy of the room
/// becomes the owner's: the committed history (what it lacked is delivered, a disagreeing copy
/// replaced) and the pending messages, written before it confirms what it holds. A copy it
/// stored earlier that the owner does not send again was never committed (its owner died
/// first, and this owner never had it): the log is rewritten without it, or a restart would
/// read it back as history (TLC found this with NoUncommittedInLog).
let recvSync (current: bool) (room: RoomName) (backup: BackupAssignment) (committed: RoomMessage list) (pending: RoomMessage list) (replica: Replica) : Replica * ReplicaOutput list =
    if not current then replica, []
    else
        let replica, adopted = adoptHistory committed replica
        let pending = pending |> List.filter (fun message -> message.Seq > replica.History.LastSeq)
        let sent = Uncommitted.ofList pending
        let dropped = replica.Stored |> Seq.exists (fun stored -> stored.Seq > replica.History.LastSeq && not (Uncommitted.contains stored sent))
        let replica, written =
            if dropped then rewriteWith replica.History pending { replica with Stored = sent }
            else persist pending { replica with Stored = sent }
        replica, adopted @ written @ [ confirmStored room backup replica ]

/// The messages that follow one another from the first on, each one number after the last and
/// of the first one's room: a frame naming another room further on (forged or broken) stores
/// nothing of it in this room's copy.
let private consecutive (messages: RoomMessage list) : RoomMessage list =
    match messages with
    | [] -> []
    | first :: _ ->
        let follows index (message: RoomMessage) = message.Room = first.Room && message.Seq = first.Seq + int64 index
        let rec allFollow index (rest: RoomMessage list) =
            match rest with
            | [] -> true
            | message :: more -> follows index message && allFollow (index + 1) more
        // An owner's batch is consecutive: the same list, with no copy.
        if allFollow 0 messages then messages else
        messages |> List.mapi (fun index message -> index, message) |> List.takeWhile (fun (index, message) -> follows index message) |> List.map snd

/// Spec: StoreReplica(b, o), for the backup `current` says this node is. The backup stores
/// (and writes, in one write) the owner's batch when it follows directly on what it holds,
/// committed or not; otherwise it keeps what it has. Either way it confirms what it holds, so
/// an owner whose append did not follow on learns that this backup fell behind. (An owner's
/// batch is consecutive; of one that is not, only the consecutive start is stored.)
let storeReplica (current: bool) (room: RoomName) (backup: BackupAssignment) (messages: RoomMessage list) (replica: Replica) : Replica * ReplicaOutput list =
    match consecutive messages with
    | _ when not current -> replica, []
    | first :: _ as batch when first.Room = room && first.Seq = held replica.History replica.Stored + 1L ->
        let stored = Uncommitted.addAll batch replica.Stored
        let replica, written = persist batch { replica with Stored = stored }
        replica, written @ [ confirmStored room backup replica ]
    | _ -> replica, [ confirmStored room backup replica ]
