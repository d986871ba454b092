/// The invariants ReplicationSimulation.fs checks after every step, and the convergence the
/// fault budget waits for. What clients saw (acknowledged and shown messages) is the ground
/// truth, kept in a Ledger; the nodes' states are checked against it.
///
/// (1) At most one leader per epoch among live nodes that agree on the view.
/// (2) Every acknowledged message is held, at its seq and with identical content, by every live
///     replica of its room: the current owner (history or Primary.Pending) and, when the owner
///     reports it up to date, its backup (history or Replicas); while the room has no working
///     owner (it died, or the promoted backup has not heard yet), the last backup an owner
///     reported up to date.
/// (3) Per room every client shows messages in strictly increasing seq, and any two clients
///     (and every acknowledgement) agree on the message at a seq.
/// (4) No client shows the same message (sender + client message id) twice, and no post becomes
///     two different messages anywhere.
module FormalChat.Protocol.Tests.SimChecks

open System
open System.Collections.Generic
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.Tests.SimNetwork

exception InvariantBroken of string

let broken (reason: string) : 'T = raise (InvariantBroken reason)

let describeMessage (m: RoomMessage) = $"{m.Room}#{m.Seq} {m.From}/{m.ClientMessageId} \"{m.Text}\" via {m.FromNode}"

/// What clients have seen.
type Ledger =
    { /// Per room, every acknowledged message by seq.
      Acked: SortedDictionary<RoomName, SortedDictionary<int64, RoomMessage>>
      /// Per room, the message some client showed or had acknowledged at each seq.
      Seen: Dictionary<RoomName, Dictionary<int64, RoomMessage>>
      /// (sender, client message id) -> the message that post became, as first seen.
      Posts: Dictionary<Rooms.PostKey, RoomMessage>
      /// Bumped on each acknowledgement in a room: part of the replica check's cache key.
      AckVersion: Dictionary<RoomName, int>
      /// The replica check's cache: (node, room) -> what it last verified there.
      Verified: Dictionary<struct (NodeId * RoomName), struct (Rooms.RoomHistory * Uncommitted * Uncommitted * int)>
      /// Per room, the last (owner, backup) an owner reported up to date.
      LastUpToDate: Dictionary<RoomName, struct (NodeId * NodeId)> }

let newLedger () : Ledger =
    { Acked = SortedDictionary()
      Seen = Dictionary()
      Posts = Dictionary()
      AckVersion = Dictionary()
      Verified = Dictionary()
      LastUpToDate = Dictionary() }

/// A client showed or had acknowledged this message: (3) and (4) across clients.
let seen (ledger: Ledger) (who: string) (m: RoomMessage) : unit =
    let bySeq =
        match ledger.Seen.TryGetValue m.Room with
        | true, bySeq -> bySeq
        | _ ->
            let bySeq = Dictionary()
            ledger.Seen[m.Room] <- bySeq
            bySeq
    match bySeq.TryGetValue m.Seq with
    | true, other when other <> m ->
        broken $"(3) per-room order: {who} got {describeMessage m}, but seq {m.Seq} of {m.Room} was already seen as {describeMessage other}"
    | true, _ -> ()
    | _ -> bySeq[m.Seq] <- m
    if m.ClientMessageId <> 0L then
        let key = Rooms.idKey m.From m.FromNode m.ClientMessageId
        match ledger.Posts.TryGetValue key with
        | true, other when other <> m ->
            broken $"(4) duplicate: the post {m.From}/{m.ClientMessageId} became two messages, {describeMessage other} and {describeMessage m} (seen by {who})"
        | true, _ -> ()
        | _ -> ledger.Posts[key] <- m

let acknowledged (ledger: Ledger) (who: string) (m: RoomMessage) : unit =
    seen ledger who m
    let bySeq =
        match ledger.Acked.TryGetValue m.Room with
        | true, bySeq -> bySeq
        | _ ->
            let bySeq = SortedDictionary()
            ledger.Acked[m.Room] <- bySeq
            bySeq
    bySeq[m.Seq] <- m
    ledger.AckVersion[m.Room] <- (match ledger.AckVersion.TryGetValue m.Room with | true, v -> v + 1 | _ -> 1)

// ---------------------------------------------------------------------------------------------
// (1) Leaders.

let checkLeaders (net: Net) : unit =
    let leaders = [ for n in net.Nodes do if n.Up && n.State.Coordination.Leader = Some n.Id then n.State.Coordination ]
    match leaders with
    | []
    | [ _ ] -> ()
    | _ ->
        for a in leaders do
            for b in leaders do
                if a.Self < b.Self && a.Epoch = b.Epoch && a.View = b.View then
                    broken $"(1) two leaders in epoch {a.Epoch} with the same view {Set.toList a.View}: nodes {a.Self} and {b.Self}"

// ---------------------------------------------------------------------------------------------
// (2) Replicas.

let private ownerOf (n: SimNode) (room: RoomName) = n.State.Placements.TryFind room

/// The newest placement of a room among the live nodes.
let newestPlacement (net: Net) (room: RoomName) : Assignment option =
    let mutable newest: Assignment option = None
    for n in net.Nodes do
        if n.Up then
            match ownerOf n room, newest with
            | Some a, Some b when Placement.isNewer a b -> newest <- Some a
            | Some a, None -> newest <- Some a
            | _ -> ()
    newest

/// The live node that works as the room's owner: it has the newest placement, names itself
/// in it, and has taken the room over.
let workingOwner (net: Net) (room: RoomName) : SimNode option =
    match newestPlacement net room with
    | Some placement ->
        let n = node net placement.Owner
        if n.Up && ownerOf n room = Some placement && n.State.Primaries.ContainsKey room then Some n else None
    | None -> None

/// The backup the owner replicates to, when the owner reports it up to date.
let upToDateBackup (owner: SimNode) (room: RoomName) : NodeId option =
    let s = owner.State
    match s.Primaries.TryFind room with
    | Some primary ->
        let target = Replication.backupTarget room s.Placements s.Backups s.Coordination
        if Replication.isUpToDate target primary then target |> Option.map _.Backup else None
    | None -> None

let private holdsAll (ledger: Ledger) (role: string) (n: SimNode) (room: RoomName) (acked: SortedDictionary<int64, RoomMessage>) : unit =
    let s = n.State
    let history = historyOf room s
    let pending = match s.Primaries.TryFind room with | Some p -> p.Pending | None -> Uncommitted.empty
    let replicas = s.Replicas.TryFind room |> Option.defaultValue Uncommitted.empty
    let version = ledger.AckVersion[room]
    let key = struct (n.Id, room)
    let current = struct (history, pending, replicas, version)
    let unchanged =
        match ledger.Verified.TryGetValue key with
        | true, struct (h, p, r, v) -> Object.ReferenceEquals(h, history) && Object.ReferenceEquals(p, pending) && Object.ReferenceEquals(r, replicas) && v = version
        | _ -> false
    if not unchanged then
        let inHistory = Dictionary<int64, RoomMessage>()
        for m in history.Recent do inHistory[m.Seq] <- m
        // Older messages than the history keeps fell out of memory; the disk still has them.
        let oldestKept =
            if history.Recent.Length < Rooms.historyCapacity then 0L
            else (List.last history.Recent).Seq
        for KeyValue(seq, m) in acked do
            let found =
                match inHistory.TryGetValue seq with
                | true, held -> Some held
                | _ ->
                    match Uncommitted.tryFind seq pending with
                    | Some held -> Some held
                    | None -> Uncommitted.tryFind seq replicas
            match found with
            | Some held when held = m -> ()
            | Some held ->
                broken $"(2) replicas: node {n.Id} ({role} of {room}) holds {describeMessage held} where {describeMessage m} was acknowledged"
            | None when seq < oldestKept -> ()
            | None ->
                broken $"(2) replicas: node {n.Id} ({role} of {room}) lacks the acknowledged {describeMessage m} (history to {history.LastSeq}, pending {pending |> Seq.map _.Seq |> List.ofSeq}, replicas {replicas |> Seq.map _.Seq |> List.ofSeq})"
        ledger.Verified[key] <- current

let checkReplicas (net: Net) (ledger: Ledger) : unit =
    for KeyValue(room, acked) in ledger.Acked do
        match workingOwner net room with
        | Some owner ->
            holdsAll ledger "owner" owner room acked
            match upToDateBackup owner room with
            | Some backup ->
                ledger.LastUpToDate[room] <- struct (owner.Id, backup)
                let b = node net backup
                if b.Up then holdsAll ledger "up-to-date backup" b room acked
            | None -> ()
        | None ->
            match ledger.LastUpToDate.TryGetValue room with
            | true, struct (owner, backup) ->
                let b = node net backup
                if b.Up then holdsAll ledger $"last up-to-date backup, of owner {owner}," b room acked
            | _ -> ()

/// Records the up-to-date backups of rooms that have no acknowledged message yet, so the
/// fallback of (2) knows them from the start.
let noteBackups (net: Net) (ledger: Ledger) : unit =
    for n in net.Nodes do
        if n.Up then
            for KeyValue(room, _) in n.State.Primaries do
                if not (ledger.Acked.ContainsKey room) then
                    match workingOwner net room with
                    | Some owner when owner.Id = n.Id ->
                        match upToDateBackup owner room with
                        | Some backup -> ledger.LastUpToDate[room] <- struct (owner.Id, backup)
                        | None -> ()
                    | _ -> ()

// ---------------------------------------------------------------------------------------------
// Convergence: the fault budget's "repaired and settled".

/// Every node is up and reachable, all agree on the view (all of them), the epoch and the
/// leader, hold the leader's placements and backups, and every placed room's owner has taken
/// it and reports its backup up to date (or the cluster has one node). Empty when converged,
/// else why not.
let notConverged (net: Net) : string option =
    let nodes = List.ofArray net.Nodes
    let everyone = nodes |> List.map _.Id |> Set.ofList
    match List.tryFind (fun (n: SimNode) -> not n.Up) nodes with
    | Some n -> Some $"node {n.Id} is down"
    | None when net.Isolated.IsSome -> Some "a node is isolated"
    | None ->
    let first = nodes.Head.State
    let disagree =
        nodes
        |> List.tryFind (fun n ->
            let c = n.State.Coordination
            c.View <> everyone || c.Leader <> first.Coordination.Leader || c.Epoch <> first.Coordination.Epoch || c.Participant)
    match disagree, first.Coordination.Leader with
    | Some n, _ -> Some $"node {n.Id} has view {Set.toList n.State.Coordination.View}, epoch {n.State.Coordination.Epoch}, leader {n.State.Coordination.Leader}"
    | None, None -> Some "no leader"
    | None, Some leaderId ->
    let leader = (node net leaderId).State
    match nodes |> List.tryFind (fun n -> n.State.Placements <> leader.Placements || n.State.Backups <> leader.Backups) with
    | Some n -> Some $"node {n.Id} does not hold the leader's placements and backups"
    | None ->
    leader.Placements
    |> Map.toSeq
    |> Seq.tryPick (fun (room, placement) ->
        let owner = node net placement.Owner
        if not (owner.State.Primaries.ContainsKey room) then Some $"owner {owner.Id} has not taken {room} over"
        elif nodes.Length > 1 && (upToDateBackup owner room).IsNone then Some $"owner {owner.Id} of {room} has no up-to-date backup"
        else None)
