------------------------------ MODULE Replication ------------------------------
(***************************************************************************)
(* Primary-backup replication of one room (docs/REPLICATION.md).  The      *)
(* room's owner gives each post the next sequence number, stores it as     *)
(* pending and sends it to the room's backup; it commits (acknowledges) a  *)
(* message once the backup has confirmed it, or at once when the room has  *)
(* no backup serving this owner and the owner is the only live node.  The  *)
(* leader chooses the backup, promotes it when the owner dies, and places  *)
(* the room afresh when the owner dies with no live backup.                *)
(*                                                                         *)
(* F# counterparts (Protocol.FSharp/Replication.fs unless said otherwise;  *)
(* spec/README.md, section Replication, has the table with parameters):    *)
(*                                                                         *)
(*   SequencePost(o, id)       Replication.sequencePost (+ Node's append)  *)
(*   SyncBackup(o)             Replication.syncBackup                      *)
(*   RecvSync(b, o)            Node.recvSync: Rooms.adopt, Replication.held*)
(*   StoreReplica(b, o)        Replication.storeReplica (Node.recvAppend)  *)
(*   RecvStored(o, b)          Replication.recvStored                      *)
(*   Commit(o)                 Replication.commit (+ Node.replicate's      *)
(*                             delivery here and broadcast)                *)
(*   RecvSequenced(i, j)       Node.recvSequenced / deliverSequenced       *)
(*   FillGap(i)                Node.askForMissing, HistoryRequested's      *)
(*                             answer and Node.adoptHistory                *)
(*   AssignBackup(l)           Replication.assignBackup                    *)
(*   RecvBackupAssignment(i,j) Replication.recvBackupAssignment            *)
(*   PromoteBackup(l)          Replication.promoteBackup (+ Node's         *)
(*                             takeOwnership at the new owner)             *)
(*   ReassignRooms(l)          Placement.reassignRooms, as Node's          *)
(*                             reassignRooms calls it: after               *)
(*                             promoteBackups found nothing to promote     *)
(*   Crash(n)                  environment                                 *)
(*                                                                         *)
(* Abstractions (each stated again where it is used):                      *)
(* - One room.  Loads are 0 clients everywhere; with one room the least-   *)
(*   loaded choices come down to "lowest id" among the candidates.         *)
(* - Perfect failure detection and an atomic election: every live node's  *)
(*   view is the set of live nodes, the leader is the highest live id, and *)
(*   the epoch goes up by one when the leader crashes.  FormalChat.tla     *)
(*   specifies the real protocols.                                         *)
(* - The placement is one global value: a leader's placement takes effect *)
(*   at every node at once (Placement.tla specifies its delivery), and the *)
(*   new owner takes the room over in the same step (Node.takeOwnership).  *)
(* - The network is reliable and FIFO per link (TCP).  Crash-stop: what   *)
(*   was in flight to the crashed node is gone; what it had sent stays in  *)
(*   flight and may still arrive, however late.                            *)
(* - A node that sees a gap in the committed messages asks the owner for   *)
(*   the missing ones (HistoryRequested/HistoryShared), again every tick:  *)
(*   the request and its answer are one step, FillGap, taken when the      *)
(*   room's owner is live.                                                 *)
(* - Posts are client message ids from Msg, each sent to the owner any     *)
(*   time the owner does not hold it (a retry is a post of the same id).   *)
(*   A message is [seq, id]; F# fills the other RoomMessage fields with    *)
(*   constants.  Retries of held messages change no modelled state.        *)
(* - Not modelled: the on-disk log (every node writes what it holds; no    *)
(*   node restarts here), resyncIfStalled (no message is lost), clients.   *)
(***************************************************************************)
EXTENDS Naturals, Integers, FiniteSets, Sequences

CONSTANTS
    Node,        \* the node ids, a finite set of positive naturals
    Msg,         \* the client message ids that may be posted, positive naturals
    MaxCrashes,  \* model bound: at most this many nodes crash
    Start,       \* "backed": the room starts with an up-to-date backup;
                 \* "fresh": the room has just been placed, with no backup yet
    InitialOwner \* the nodes the room may start on (Node for every choice)

ASSUME /\ Node \subseteq Nat \ {0} /\ Cardinality(Node) >= 2
       /\ Msg \subseteq Nat \ {0}
       /\ MaxCrashes \in Nat
       /\ Start \in {"backed", "fresh"}
       /\ InitialOwner \subseteq Node /\ InitialOwner # {}

VARIABLES
    alive,       \* alive[n]: the environment's truth (and every live node's view)
    epoch,       \* the election epoch of every live node (F#: Coordination.Epoch)
    placement,   \* the room's assignment [owner, epoch, version, lastSeq] (F#: Assignment)
    backups,     \* backups[i]: node i's backup assignment of the room, or NoBackup
                 \* (F#: NodeState.Backups)
    history,     \* history[i]: the committed messages i holds, oldest first
                 \* (F#: RoomHistory, Recent reversed)
    replicas,    \* replicas[i]: the messages i stored as the backup, not yet seen
                 \* committed (F#: NodeState.Replicas)
    primary,     \* primary[i]: the owner's side, [pending, synced, stored], or
                 \* NoPrimary (F#: NodeState.Primaries, Replication.Primary)
    chan,        \* chan[i][j]: the messages in flight from i to j, oldest first
    missing,     \* the nodes that saw a gap in the committed messages and wait for the
                 \* owner to send the missing ones (F#: NodeState.FillsRequested)
    acked        \* every message some owner has committed (acknowledged), with its
                 \* position: a history variable, never read by an action

vars == <<alive, epoch, placement, backups, history, replicas, primary, chan, missing, acked>>

None == -1      \* F#: Primary.Stored = None

Max(S) == CHOOSE x \in S : \A y \in S : y <= x

Live == {n \in Node : alive[n]}
Crashed == Node \ Live
Leader == Max(Live)

\* A sequenced message, F# RoomMessage: its sequence number and client message id.
Message == [seq : Nat \ {0}, id : Msg]

\* F# BackupAssignment; NoBackup for a room without one.
Assignment == [backup : Node, owner : Node, epoch : Nat, version : Nat \ {0}]
NoBackup == [backup |-> 0, owner |-> 0, epoch |-> 0, version |-> 0]

\* F# Assignment (the placement).
Placement == [owner : Node, epoch : Nat, version : Nat \ {0}, lastSeq : Nat]

\* F# Replication.Primary (PendingAtLastTick is not modelled).
PrimaryState == [pending : Seq(Message), synced : Nat, stored : Nat \cup {None}]
NoPrimary == [pending |-> <<>>, synced |-> None, stored |-> None]
EmptyPrimary == [pending |-> <<>>, synced |-> 0, stored |-> None]

\* The peer messages of Messages.fs that this module models.
BackupMsg(a) == [type |-> "backup", assignment |-> a]                    \* BackupAssigned
SyncMsg(a, c, p) == [type |-> "sync", assignment |-> a, committed |-> c, pending |-> p]  \* ReplicaSynced
AppendMsg(a, m) == [type |-> "append", assignment |-> a, message |-> m]  \* ReplicaAppended
StoredMsg(v, s) == [type |-> "stored", version |-> v, seq |-> s]          \* ReplicaStored
SequencedMsg(m) == [type |-> "sequenced", message |-> m]                 \* RoomSequenced

PeerMessage ==
    [type : {"backup"}, assignment : Assignment]
        \cup [type : {"sync"}, assignment : Assignment, committed : Seq(Message), pending : Seq(Message)]
        \cup [type : {"append"}, assignment : Assignment, message : Message]
        \cup [type : {"stored"}, version : Nat \ {0}, seq : Nat]
        \cup [type : {"sequenced"}, message : Message]

TypeOK ==
    /\ alive \in [Node -> BOOLEAN]
    /\ epoch \in Nat
    /\ placement \in Placement
    /\ backups \in [Node -> Assignment \cup {NoBackup}]
    /\ history \in [Node -> Seq(Message)]
    /\ replicas \in [Node -> Seq(Message)]
    /\ primary \in [Node -> PrimaryState \cup {NoPrimary}]
    /\ chan \in [Node -> [Node -> Seq(PeerMessage)]]
    /\ missing \subseteq Node
    /\ acked \subseteq Message

-----------------------------------------------------------------------------
(* Helpers. *)

Range(s) == {s[k] : k \in DOMAIN s}
Ids(s) == {s[k].id : k \in DOMAIN s}
LastOf(s) == IF s = <<>> THEN 0 ELSE s[Len(s)].seq

\* F#: RoomHistory.LastSeq.
LastSeq(h) == LastOf(h)

\* F#: Rooms.record.  A message newer than the history is added; any other is not.
Record(h, m) == IF m.seq > LastSeq(h) THEN Append(h, m) ELSE h

\* F#: Replication.held.  The highest sequence number a node holds, committed or stored.
Held(h, stored) == IF LastOf(stored) > LastSeq(h) THEN LastOf(stored) ELSE LastSeq(h)

After(s, n) == SelectSeq(s, LAMBDA m : m.seq > n)
UpTo(s, n) == SelectSeq(s, LAMBDA m : m.seq <= n)

IsLeader(i) == alive[i] /\ i = Leader

\* F#: Replication.hasQuorum with every node known: a majority of Node is live.
HasQuorum == Cardinality(Node) <= 2 \/ 2 * Cardinality(Live) > Cardinality(Node)

\* F#: Replication.hasBackup, at a node whose assignment is a.  The backup serves the
\* current owner and is live.
HasBackup(a) == /\ a # NoBackup
                /\ a.owner = placement.owner
                /\ a.backup # placement.owner
                /\ alive[a.backup]

\* F#: Replication.needsBackup, at leader l.
NeedsBackup(l) == alive[placement.owner] /\ Cardinality(Live) > 1 /\ ~HasBackup(backups[l])

\* F#: Placement.roomsOwned and Replication.roomsBacked, for the one room.
RoomsOwned(n) == IF placement.owner = n THEN 1 ELSE 0
RoomsBacked(a, n) == IF a # NoBackup /\ a.backup = n THEN 1 ELSE 0

\* F#: Replication.leastLoadedBackup with no clients: the live node other than owner o
\* holding the fewest rooms (owned and backed, in l's knowledge), then the lowest id.
LeastLoadedBackup(l, o) ==
    LET load(n) == RoomsOwned(n) + RoomsBacked(backups[l], n)
    IN  CHOOSE n \in Live \ {o} :
            \A k \in Live \ {o} : load(n) < load(k) \/ (load(n) = load(k) /\ n <= k)

\* F#: Placement.leastLoaded with no clients.
LeastLoaded ==
    CHOOSE n \in Live : \A k \in Live : RoomsOwned(n) < RoomsOwned(k) \/ (RoomsOwned(n) = RoomsOwned(k) /\ n <= k)

\* F#: Replication.isNewer.
Newer(a, b) == a.epoch > b.epoch \/ (a.epoch = b.epoch /\ a.version > b.version)

\* F#: Replication.recvBackupAssignment.  A newer assignment replaces the one held.
Adopted(current, a) == IF current # NoBackup /\ ~Newer(a, current) THEN current ELSE a

\* F#: Replication.backupTarget, at node o.
BackupTarget(o) == IF placement.owner = o /\ HasBackup(backups[o]) THEN backups[o] ELSE NoBackup

\* The network.  Send(c, i, j, m): m joins the link from i to j, unless j has stopped (a
\* message to a stopped node could never be received).  Receiving takes a link's head.
Send(c, i, j, m) == IF alive[j] THEN [c EXCEPT ![i][j] = Append(@, m)] ELSE c
Broadcast(c, i, m) == [x \in Node |-> IF x = i THEN [y \in Node |-> IF y # i /\ alive[y] THEN Append(c[i][y], m) ELSE c[i][y]]
                                      ELSE c[x]]
First(i, j) == chan[i][j][1]
Pop(i, j) == [chan EXCEPT ![i][j] = Tail(@)]
Receivable(i, j, type) == alive[j] /\ chan[i][j] # <<>> /\ First(i, j).type = type

\* F#: Node.deliverSequenced, for the modelled state: a committed message reaches node i.
\* A stored copy that differs was never committed and goes, with everything stored after
\* it; the stored copies up to it are done.
DeliveredReplicas(stored, m) ==
    IF \E k \in DOMAIN stored : stored[k].seq = m.seq /\ stored[k] # m THEN <<>> ELSE After(stored, m.seq)

RECURSIVE DeliverAll(_, _, _)
\* <<history, replicas>> of a node after it delivers the messages ms in order.
DeliverAll(h, stored, ms) ==
    IF ms = <<>> THEN <<h, stored>>
    ELSE DeliverAll(Record(h, Head(ms)), DeliveredReplicas(stored, Head(ms)), Tail(ms))

\* F#: Node.takeOwnership at node n, the new owner: what it stored as the backup (after
\* its history) is now pending; it is committed by a later Commit.
TakeOwnership(n) ==
    IF primary[n] = NoPrimary
    THEN /\ primary' = [primary EXCEPT ![n] = [EmptyPrimary EXCEPT !.pending = After(replicas[n], LastSeq(history[n]))]]
         /\ replicas' = [replicas EXCEPT ![n] = <<>>]
    ELSE UNCHANGED <<primary, replicas>>

-----------------------------------------------------------------------------
(* The owner. *)

\* F#: Replication.sequencePost returning Sequenced (Node.sequenceAsOwner).  The next number
\* continues after everything the owner holds and what the placement says the room reached.
\* The message goes to the backup at once if the backup has been sent the owner's state.
\* (A retry of a committed or pending message changes nothing modelled.)
SequencePost(o, id) ==
    /\ alive[o] /\ placement.owner = o /\ primary[o] # NoPrimary
    /\ id \notin Ids(history[o]) \cup Ids(primary[o].pending)
    /\ LET p == primary[o]
           last == Max({LastSeq(history[o]), placement.lastSeq, LastOf(p.pending)})
           m == [seq |-> last + 1, id |-> id]
           t == BackupTarget(o)
       IN  /\ primary' = [primary EXCEPT ![o].pending = Append(@, m)]
           /\ chan' = IF t # NoBackup /\ t.version = p.synced THEN Send(chan, o, t.backup, AppendMsg(t, m)) ELSE chan
    /\ UNCHANGED <<alive, epoch, placement, backups, history, replicas, missing, acked>>

\* F#: Replication.syncBackup.  A backup the owner has not sent its state to gets the
\* committed history and every pending message; nothing commits until it confirms.
SyncBackup(o) ==
    /\ alive[o] /\ primary[o] # NoPrimary
    /\ LET t == BackupTarget(o)
       IN  /\ t # NoBackup /\ t.version # primary[o].synced
           /\ primary' = [primary EXCEPT ![o] = [@ EXCEPT !.synced = t.version, !.stored = None]]
           /\ chan' = Send(chan, o, t.backup, SyncMsg(t, history[o], primary[o].pending))
    /\ UNCHANGED <<alive, epoch, placement, backups, history, replicas, missing, acked>>

\* F#: Node.recvStored with Replication.recvStored.  The backup holds everything up to seq.
RecvStored(o, b) ==
    /\ Receivable(b, o, "stored")
    /\ LET m == First(b, o)
           p == primary[o]
       IN  primary' = IF p = NoPrimary \/ m.version # p.synced THEN primary
                      ELSE [primary EXCEPT ![o].stored = IF m.seq > p.stored THEN m.seq ELSE p.stored]
    /\ chan' = Pop(b, o)
    /\ UNCHANGED <<alive, epoch, placement, backups, history, replicas, missing, acked>>

\* F#: Replication.commit, as Node.replicate uses it: with a quorum, the pending messages
\* the backup has stored; with no backup serving this owner, all of them only when o is
\* alone in its view (Alone(o): the only live node, a cluster of one or the survivor of
\* two), and none otherwise (o waits for the leader's backup).  Each committed message is
\* delivered here and sent to every other live node.
Alone(o) == Live = {o}

CommitUpTo(o) ==
    LET t == BackupTarget(o)
        p == primary[o]
    IN  IF ~HasQuorum THEN 0
        ELSE IF t = NoBackup THEN (IF Alone(o) THEN LastOf(p.pending) ELSE 0)
        ELSE IF p.stored # None /\ t.version = p.synced THEN p.stored
        ELSE 0

RECURSIVE BroadcastAll(_, _, _)
BroadcastAll(c, o, ms) == IF ms = <<>> THEN c ELSE BroadcastAll(Broadcast(c, o, SequencedMsg(Head(ms))), o, Tail(ms))

Commit(o) ==
    /\ alive[o] /\ primary[o] # NoPrimary
    /\ LET p == primary[o]
           committed == UpTo(p.pending, CommitUpTo(o))
           delivered == DeliverAll(history[o], replicas[o], committed)
       IN  /\ committed # <<>>
           /\ primary' = [primary EXCEPT ![o].pending = After(p.pending, CommitUpTo(o))]
           /\ history' = [history EXCEPT ![o] = delivered[1]]
           /\ replicas' = [replicas EXCEPT ![o] = delivered[2]]
           /\ chan' = BroadcastAll(chan, o, committed)
           /\ acked' = acked \cup Range(committed)
    /\ UNCHANGED <<alive, epoch, placement, backups, missing>>

-----------------------------------------------------------------------------
(* The backup, and every node. *)

\* F#: Node.isCurrentBackup.  b stores for the assignment a's owner only while a is b's
\* assignment and that owner still owns the room (a node just promoted does not store for
\* the owner it replaced).
IsCurrentBackup(b, a, assigned) == a.backup = b /\ assigned = a /\ placement.owner = a.owner

\* F#: Node.recvSync (Replication.recvBackupAssignment, Rooms.adopt, Replication.held).
\* The assignment the sync carries is taken if newer.  If b is that backup, its copy of the
\* room becomes the owner's: the committed history (extended, or replaced where b's copy
\* disagrees) and the pending messages, and b confirms what it holds.
Adopt(h, committed) ==
    LET agrees == \A k \in DOMAIN committed : \A x \in DOMAIN h :
                      h[x].seq = committed[k].seq => h[x] = committed[k]
        ownersLast == IF committed = <<>> THEN LastSeq(h) ELSE LastOf(committed)
    IN  IF agrees /\ LastSeq(h) <= ownersLast
        THEN h \o After(committed, LastSeq(h))
        ELSE committed

RecvSync(b, o) ==
    /\ Receivable(o, b, "sync")
    /\ LET m == First(o, b)
           a == m.assignment
           assigned == Adopted(backups[b], a)
           h == Adopt(history[b], m.committed)
           stored == After(m.pending, LastSeq(h))
       IN  /\ backups' = [backups EXCEPT ![b] = assigned]
           /\ IF IsCurrentBackup(b, a, assigned)
              THEN /\ history' = [history EXCEPT ![b] = h]
                   /\ replicas' = [replicas EXCEPT ![b] = stored]
                   /\ chan' = Send(Pop(o, b), b, a.owner, StoredMsg(a.version, Held(h, stored)))
              ELSE /\ chan' = Pop(o, b)
                   /\ UNCHANGED <<history, replicas>>
    /\ UNCHANGED <<alive, epoch, placement, primary, missing, acked>>

\* F#: Node.recvAppend with Replication.storeReplica.  The backup stores the owner's next
\* message when it follows directly on what it holds, and confirms what it holds.
StoreReplica(b, o) ==
    /\ Receivable(o, b, "append")
    /\ LET m == First(o, b)
           a == m.assignment
           assigned == Adopted(backups[b], a)
           held == Held(history[b], replicas[b])
       IN  /\ backups' = [backups EXCEPT ![b] = assigned]
           /\ IF IsCurrentBackup(b, a, assigned)
              THEN IF m.message.seq = held + 1
                   THEN /\ replicas' = [replicas EXCEPT ![b] = Append(@, m.message)]
                        /\ chan' = Send(Pop(o, b), b, a.owner, StoredMsg(a.version, m.message.seq))
                   ELSE /\ chan' = Send(Pop(o, b), b, a.owner, StoredMsg(a.version, held))
                        /\ UNCHANGED replicas
              ELSE /\ chan' = Pop(o, b)
                   /\ UNCHANGED replicas
    /\ UNCHANGED <<alive, epoch, placement, history, primary, missing, acked>>

\* F#: Node.recvSequenced.  A committed message that follows on what node i holds is
\* delivered (deliverSequenced).  One that skips numbers is held back (dropped: the fill
\* brings it): i asks the owner for the missing ones, unless it asked already.
RecvSequenced(i, j) ==
    /\ Receivable(j, i, "sequenced")
    /\ LET m == First(j, i).message
       IN  IF m.seq <= LastSeq(history[i]) + 1
           THEN LET delivered == DeliverAll(history[i], replicas[i], <<m>>)
                IN  /\ history' = [history EXCEPT ![i] = delivered[1]]
                    /\ replicas' = [replicas EXCEPT ![i] = delivered[2]]
                    /\ UNCHANGED missing
           ELSE /\ missing' = missing \cup {i}
                /\ UNCHANGED <<history, replicas>>
    /\ chan' = Pop(j, i)
    /\ UNCHANGED <<alive, epoch, placement, backups, primary, acked>>

\* F#: Node.askForMissing, the owner's HistoryRequested answer (Rooms.since) and
\* Node.adoptHistory, as one step: node i, waiting for missing messages, gets the live
\* owner's committed messages after its last one.  F# asks on the gap and again every
\* tick, of whichever node owns the room then; an owner forgets its own request.
FillGap(i) ==
    /\ alive[i] /\ i \in missing
    /\ LET o == placement.owner
       IN  IF o = i
           THEN /\ missing' = missing \ {i}
                /\ UNCHANGED <<history, replicas>>
           ELSE LET fill == After(history[o], LastSeq(history[i]))
                    delivered == DeliverAll(history[i], replicas[i], fill)
                IN  /\ alive[o]
                    /\ history' = [history EXCEPT ![i] = delivered[1]]
                    /\ replicas' = [replicas EXCEPT ![i] = delivered[2]]
                    /\ missing' = missing \ {i}
    /\ UNCHANGED <<alive, epoch, placement, backups, primary, chan, acked>>

-----------------------------------------------------------------------------
(* The leader. *)

\* F#: Replication.assignBackup (Node.assignBackups: only with a quorum).  The leader gives
\* the room's live owner, if it has no live backup serving it, the least-loaded other live
\* node, and tells every other live node.
AssignBackup(l) ==
    /\ IsLeader(l) /\ HasQuorum /\ NeedsBackup(l)
    /\ LET a == [backup |-> LeastLoadedBackup(l, placement.owner),
                 owner |-> placement.owner,
                 epoch |-> epoch,
                 version |-> IF backups[l] # NoBackup THEN backups[l].version + 1 ELSE 1]
       IN  /\ backups' = [backups EXCEPT ![l] = a]
           /\ chan' = Broadcast(chan, l, BackupMsg(a))
    /\ UNCHANGED <<alive, epoch, placement, history, replicas, primary, missing, acked>>

\* F#: Node.applyBackup with Replication.recvBackupAssignment.
RecvBackupAssignment(i, j) ==
    /\ Receivable(j, i, "backup")
    /\ backups' = [backups EXCEPT ![i] = Adopted(@, First(j, i).assignment)]
    /\ chan' = Pop(j, i)
    /\ UNCHANGED <<alive, epoch, placement, history, replicas, primary, missing, acked>>

\* F#: Replication.promoteBackup (Node.reassignRooms: only with a quorum; lastSeq is the
\* leader's history's).  The owner has died and its backup is live: the backup becomes the
\* owner, and takes the room over.
CanPromote(l) ==
    LET a == backups[l]
    IN  a # NoBackup /\ ~alive[placement.owner] /\ a.owner = placement.owner /\ alive[a.backup]

PromoteBackup(l) ==
    /\ IsLeader(l) /\ HasQuorum /\ CanPromote(l)
    /\ LET n == backups[l].backup
       IN  /\ placement' = [owner |-> n, epoch |-> epoch, version |-> placement.version + 1,
                            lastSeq |-> Max({LastSeq(history[l]), placement.lastSeq})]
           /\ TakeOwnership(n)
    /\ UNCHANGED <<alive, epoch, backups, history, chan, missing, acked>>

\* F#: Placement.reassignRooms, as Node.reassignRooms calls it (with a quorum, after
\* promoteBackups, so only when there is no backup to promote; lastSeq is the leader's
\* history's).  The room's owner has died with no live backup: the least-loaded live node
\* becomes the owner.
ReassignRooms(l) ==
    /\ IsLeader(l) /\ HasQuorum /\ ~alive[placement.owner] /\ ~CanPromote(l)
    /\ LET n == LeastLoaded
       IN  /\ placement' = [owner |-> n, epoch |-> epoch, version |-> placement.version + 1,
                            lastSeq |-> LastSeq(history[l])]
           /\ TakeOwnership(n)
    /\ UNCHANGED <<alive, epoch, backups, history, chan, missing, acked>>

-----------------------------------------------------------------------------
(* The environment. *)

\* Crash-stop, at most MaxCrashes, one node stays alive.  Every live node's failure
\* detector removes the node at once; if it was the leader, the highest live id becomes
\* leader in the next epoch.  What was in flight to it is gone.
Crash(n) ==
    /\ alive[n]
    /\ Cardinality(Crashed) < MaxCrashes
    /\ Cardinality(Live) > 1
    /\ alive' = [alive EXCEPT ![n] = FALSE]
    /\ epoch' = IF n = Leader THEN epoch + 1 ELSE epoch
    /\ chan' = [i \in Node |-> [j \in Node |-> IF j = n THEN <<>> ELSE chan[i][j]]]
    /\ UNCHANGED <<placement, backups, history, replicas, primary, missing, acked>>

-----------------------------------------------------------------------------

\* "backed": owner o of InitialOwner placed in epoch 1, a backup b assigned by leader
\* Max(Node) and known everywhere, and o has had b's confirmation of its (empty) state.
\* (Any b: with clients, the least-loaded node can be any.)
\* "fresh": the room has just been placed on o; no node knows a backup.
Init ==
    /\ alive = [n \in Node |-> TRUE]
    /\ epoch = 1
    /\ history = [n \in Node |-> <<>>]
    /\ replicas = [n \in Node |-> <<>>]
    /\ chan = [i \in Node |-> [j \in Node |-> <<>>]]
    /\ missing = {}
    /\ acked = {}
    /\ \E o \in InitialOwner :
          /\ placement = [owner |-> o, epoch |-> 1, version |-> 1, lastSeq |-> 0]
          /\ IF Start = "backed"
             THEN \E b \in Node \ {o} :
                     /\ backups = [n \in Node |-> [backup |-> b, owner |-> o, epoch |-> 1, version |-> 1]]
                     /\ primary = [n \in Node |-> IF n = o THEN [EmptyPrimary EXCEPT !.synced = 1, !.stored = 0] ELSE NoPrimary]
             ELSE /\ backups = [n \in Node |-> NoBackup]
                  /\ primary = [n \in Node |-> IF n = o THEN EmptyPrimary ELSE NoPrimary]

\* Each disjunct on a line of its own; every parameter ranges over a constant, so TLC
\* labels every step with its action and parameters.
Next ==
    \/ \E o \in Node : \E id \in Msg : SequencePost(o, id)
    \/ \E o \in Node : SyncBackup(o)
    \/ \E b, o \in Node : RecvSync(b, o)
    \/ \E b, o \in Node : StoreReplica(b, o)
    \/ \E o, b \in Node : RecvStored(o, b)
    \/ \E o \in Node : Commit(o)
    \/ \E i, j \in Node : RecvSequenced(i, j)
    \/ \E i \in Node : FillGap(i)
    \/ \E l \in Node : AssignBackup(l)
    \/ \E i, j \in Node : RecvBackupAssignment(i, j)
    \/ \E l \in Node : PromoteBackup(l)
    \/ \E l \in Node : ReassignRooms(l)
    \/ \E n \in Node : Crash(n)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Properties. *)

\* Everything node i holds of the room, each message at its position: committed, stored as
\* the backup, pending as the owner.
Log(i) == Range(history[i]) \cup Range(replicas[i]) \cup Range(primary[i].pending)

\* The owner's backup is up to date: it serves this owner, is live, and has confirmed the
\* state the owner sent it (F#: Replication.isUpToDate, at the owner, live or not).
IsUpToDate(t, p) == t # NoBackup /\ t.version = p.synced /\ p.stored # None

UpToDateBackups ==
    LET o == placement.owner
        t == BackupTarget(o)
    IN  IF primary[o] # NoPrimary /\ IsUpToDate(t, primary[o]) THEN {t.backup} ELSE {}

\* The live replicas of the room: its owner if live, and its up-to-date backup.
LiveReplicas == ({placement.owner} \cap Live) \cup UpToDateBackups

\* The promise, in two parts.  Every acknowledged message is in the log of every live
\* replica at the same position ...
AckedOnReplicas == \A m \in acked : \A i \in LiveReplicas : m \in Log(i)

\* ... and some live node still holds it there.
AckedHeld == \A m \in acked : \E i \in Live : m \in Log(i)

AckedDurable == AckedOnReplicas /\ AckedHeld

\* At most one live node acts as the owner, and it is the placement's owner.
OneOwner == \A i \in Live : primary[i] # NoPrimary => i = placement.owner

\* No node's assignment names the owner as its own backup.
BackupNotOwner == \A i \in Node : backups[i] # NoBackup => backups[i].backup # backups[i].owner

\* Every backup assignment anywhere, held or in flight.
AssignmentsOfLinks ==
    UNION {{chan[i][j][k] : k \in DOMAIN chan[i][j]} : i, j \in Node}
AllAssignments ==
    ({backups[i] : i \in Node} \cup {x.assignment : x \in {y \in AssignmentsOfLinks : y.type \in {"backup", "sync", "append"}}})
        \ {NoBackup}

\* At most one backup per assignment version: two assignments with the same epoch and
\* version are the same assignment.
OneBackupPerVersion ==
    \A x, y \in AllAssignments : (x.epoch = y.epoch /\ x.version = y.version) => x = y

\* No two messages of the room were acknowledged at one position.
OnePerPosition == \A x, y \in acked : x.seq = y.seq => x = y
=============================================================================
