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
(*   SequencePost(o, id)       Replication.sequencePost                    *)
(*   SyncBackup(o)             Replication.syncBackup                      *)
(*   SendAppends(o)            Replication.sendAppends                     *)
(*   RecvSync(b, o)            Replication.recvSync                        *)
(*   StoreReplica(b, o)        Replication.storeReplica                    *)
(*   RecvStored(o, b)          Replication.recvStored                      *)
(*   Commit(o)                 Replication.commit (delivers and writes     *)
(*                             here, then sends to Interested(o))          *)
(*   RecvSequenced(i, j)       Replication.recvSequenced                   *)
(*   FillGap(i)                Node.askForMissing, HistoryRequested's      *)
(*                             answer and Replication.recvShared           *)
(*   AssignBackup(l)           Replication.assignBackup                    *)
(*   RecvBackupAssignment(i,j) Replication.recvBackupAssignment            *)
(*   PromoteBackup(l)          Replication.promoteBackup (+ the new        *)
(*                             owner's Replication.takeOwnership)          *)
(*   ReassignRooms(l)          Placement.reassignRooms, as Node's          *)
(*                             reassignRooms calls it: after               *)
(*                             promoteBackups found nothing to promote     *)
(*   AssignUnplaced(l)         Placement.assignUnplaced: a room the leader *)
(*                             has no placement of (after a restart), on   *)
(*                             the reports of RoomPlacement.recvRoomsHeld  *)
(*   Operators DeliverSequenced, AdoptHistory, TakeOwnership and           *)
(*   IsCurrentBackup are the Replication functions of the same names.      *)
(*   Interested(o)             Replication.interestedNodes                 *)
(*   Join(n), Leave(n)         environment (Node.join / leave: a node gains *)
(*                             its first member, or loses its last)        *)
(*   Crash(n)                  environment                                 *)
(*   Restart                   environment (every node starts again and    *)
(*                             reads its log back: NodeState.recover)      *)
(*   Partition(n), Heal(n)     environment                                 *)
(*                                                                         *)
(* Abstractions (each stated again where it is used):                      *)
(* - One room.  Client loads are not modelled: a least-loaded choice is   *)
(*   any of the nodes tied on rooms (F# breaks the tie by clients, then    *)
(*   by id; the conformance harness reaches each with a client count).     *)
(* - Perfect failure detection within each side of a partition and an     *)
(*   atomic election: a node cut off sees only itself, the others see the  *)
(*   live nodes not cut off; the leader is the highest of those, and the   *)
(*   epoch goes up by one when it changes.  FormalChat.tla specifies the   *)
(*   real protocols.                                                       *)
(* - The placement is one global value: a leader's placement takes effect *)
(*   at every node at once (Placement.tla specifies its delivery), and the *)
(*   new owner takes the room over in the same step (takeOwnership).       *)
(* - The network is reliable and FIFO per link (TCP).  Crash-stop: what   *)
(*   was in flight to the crashed node is gone; what it had sent stays in  *)
(*   flight and may still arrive, however late.  A partition empties the   *)
(*   links across it, and nothing crosses it until it heals.               *)
(* - A node that sees a gap in the committed messages asks the owner for   *)
(*   the missing ones (HistoryRequested/HistoryShared), again every tick:  *)
(*   the request and its answer are one step, FillGap, taken when the      *)
(*   room's owner is live.                                                 *)
(* - Posts are client message ids from Msg, each sent to the owner any     *)
(*   time the owner does not hold it (a retry is a post of the same id).   *)
(*   A message is [seq, id]; F# fills the other RoomMessage fields with    *)
(*   constants.  Retries of held messages change no modelled state.        *)
(* - Members: members is the set of nodes with members in the room, one   *)
(*   global value the owner reads when it commits (F#: the user directory, *)
(*   Chat.memberNodes; a join reaches the owner before the joining node's  *)
(*   request for the history, on the same FIFO link).  Spec keeps it Node; *)
(*   MembersSpec adds Join and Leave.  The node a post came through (F#:   *)
(*   RoomMessage.FromNode, where the post waits for its acknowledgement)   *)
(*   is not modelled: clients are not.                                     *)
(* - The on-disk log is disk[i], what node i would read back after a      *)
(*   restart.  Spec has no restart; RestartSpec adds one of the whole      *)
(*   cluster (Restart), after which the room has no placement until the    *)
(*   leader places it (AssignUnplaced).  Not modelled: resyncIfStalled    *)
(*   (no message is lost), clients.                                        *)
(***************************************************************************)
EXTENDS Naturals, Integers, FiniteSets, Sequences

CONSTANTS
    Node,        \* the node ids, a finite set of positive naturals
    Msg,         \* the client message ids that may be posted, positive naturals
    MaxCrashes,  \* model bound: at most this many nodes crash
    Start,       \* "backed": the room starts with an up-to-date backup;
                 \* "fresh": the room has just been placed, with no backup yet
    InitialOwner,\* the nodes the room may start on (Node for every choice)
    MaxPartitions,\* model bound: at most this many partitions in a behaviour, each cutting
                 \* one node off (0: none, every live node's view is the live nodes)
    Window       \* the appends an owner keeps in flight to its backup, unconfirmed, at most
                 \* (F#: Replication.appendWindow)

ASSUME /\ Node \subseteq Nat \ {0} /\ Cardinality(Node) >= 2
       /\ Msg \subseteq Nat \ {0}
       /\ MaxCrashes \in Nat
       /\ Start \in {"backed", "fresh"}
       /\ InitialOwner \subseteq Node /\ InitialOwner # {}
       /\ MaxPartitions \in Nat
       /\ Window \in Nat \ {0}

VARIABLES
    alive,       \* alive[n]: the environment's truth
    isolated,    \* the live nodes a partition cuts off from all the others (and they
                 \* from each other): each sees only itself, the rest see the rest
    partitions,  \* how many partitions there have been: a model bound, read by Partition only
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
    disk,        \* disk[i]: node i's log of the room, oldest first: what it would read back
                 \* after a restart (F#: the AppendToLog and RewriteLog effects;
                 \* Replica.Durable is LastOf(disk[i]))
    missing,     \* the nodes that saw a gap in the committed messages and wait for the
                 \* owner to send the missing ones (F#: NodeState.FillsRequested)
    acked,       \* every message some owner has committed (acknowledged), with its
                 \* position: a history variable, never read by an action
    members,     \* the nodes with members in the room (F#: Chat.memberNodes): the environment's
    memberChanges,\* how many joins and leaves there have been: a model bound (MCReplication)
    restarts,    \* how many whole-cluster restarts there have been: a model bound (MCReplication)
    recovered    \* the messages a restart read back from a log that no owner had committed
                 \* (stored by a backup): history from then on, never acknowledged; a history
                 \* variable, never read by an action

vars == <<alive, isolated, partitions, epoch, placement, backups, history, replicas, primary, chan, disk, missing, acked, members, memberChanges, restarts, recovered>>

None == -1      \* F#: Primary.Stored = None

Max(S) == CHOOSE x \in S : \A y \in S : y <= x

Live == {n \in Node : alive[n]}
Crashed == Node \ Live

\* Node i's view (F#: Coordination.View): perfect failure detection within its side of a
\* partition.  An isolated node sees only itself; the others see the live nodes not isolated.
View(i) == IF i \in isolated THEN {i} ELSE Live \ isolated
Connected(i, j) == i \notin isolated /\ j \notin isolated

\* The leader of the nodes that are not cut off (an isolated node leads only itself).
Leader == Max(Live \ isolated)

\* A sequenced message, F# RoomMessage: its sequence number and client message id.
Message == [seq : Nat \ {0}, id : Msg]

\* F# BackupAssignment; NoBackup for a room without one.
Assignment == [backup : Node, owner : Node, epoch : Nat, version : Nat \ {0}]
NoBackup == [backup |-> 0, owner |-> 0, epoch |-> 0, version |-> 0]

\* F# Assignment (the placement).  NoPlacement: after a whole-cluster restart no node knows
\* one (F#: NodeState.Placements starts empty) until the leader places the room (AssignUnplaced).
Placement == [owner : Node, epoch : Nat, version : Nat \ {0}, lastSeq : Nat]
NoPlacement == [owner |-> 0, epoch |-> 0, version |-> 0, lastSeq |-> 0]

\* F# Replication.Primary (PendingAtLastTick is not modelled).  synced is the whole backup
\* assignment the owner sent its state to (NoBackup: none yet), compared whole: two
\* assignments of different epochs can share a version (F# Primary.Synced).  inflight holds,
\* for each append in flight to that backup and not yet confirmed, its last sequence number,
\* oldest first (F# Primary.InFlight): at most Window of them.
\* NoPrimary marks a node that does not act as the owner; its synced is no assignment.
PrimaryState == [pending : Seq(Message), synced : Assignment \cup {NoBackup}, stored : Nat \cup {None}, inflight : Seq(Nat)]
NotOwner == [backup |-> None, owner |-> None, epoch |-> None, version |-> None]
NoPrimary == [pending |-> <<>>, synced |-> NotOwner, stored |-> None, inflight |-> <<>>]
EmptyPrimary == [pending |-> <<>>, synced |-> NoBackup, stored |-> None, inflight |-> <<>>]

\* The peer messages of Messages.fs that this module models.
BackupMsg(a) == [type |-> "backup", assignment |-> a]                    \* BackupAssigned
SyncMsg(a, c, p) == [type |-> "sync", assignment |-> a, committed |-> c, pending |-> p]  \* ReplicaSynced
AppendMsg(a, ms) == [type |-> "append", assignment |-> a, messages |-> ms]  \* ReplicaAppended
StoredMsg(a, s) == [type |-> "stored", assignment |-> a, seq |-> s]      \* ReplicaStored
SequencedMsg(m) == [type |-> "sequenced", message |-> m]                 \* RoomSequenced

PeerMessage ==
    [type : {"backup"}, assignment : Assignment]
        \cup [type : {"sync"}, assignment : Assignment, committed : Seq(Message), pending : Seq(Message)]
        \cup [type : {"append"}, assignment : Assignment, messages : Seq(Message)]
        \cup [type : {"stored"}, assignment : Assignment, seq : Nat]
        \cup [type : {"sequenced"}, message : Message]

TypeOK ==
    /\ alive \in [Node -> BOOLEAN]
    /\ isolated \subseteq Node
    /\ partitions \in Nat
    /\ epoch \in Nat
    /\ placement \in Placement \cup {NoPlacement}
    /\ backups \in [Node -> Assignment \cup {NoBackup}]
    /\ history \in [Node -> Seq(Message)]
    /\ replicas \in [Node -> Seq(Message)]
    /\ disk \in [Node -> Seq(Message)]
    /\ primary \in [Node -> PrimaryState \cup {NoPrimary}]
    /\ chan \in [Node -> [Node -> Seq(PeerMessage)]]
    /\ missing \subseteq Node
    /\ acked \subseteq Message
    /\ members \subseteq Node
    /\ memberChanges \in Nat
    /\ restarts \in Nat
    /\ recovered \subseteq Message

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

\* Node i leads its view (F#: Coordination.Leader, the highest id of the view).
IsLeader(i) == alive[i] /\ i = Max(View(i))

\* F#: Replication.hasQuorum with every node known: node i sees a majority of Node.
HasQuorum(i) == Cardinality(Node) <= 2 \/ 2 * Cardinality(View(i)) > Cardinality(Node)

\* F#: Replication.hasBackup, at node i whose assignment is a.  The backup serves the
\* current owner and is in i's view.
HasBackup(i, a) == /\ a # NoBackup
                   /\ a.owner = placement.owner
                   /\ a.backup # placement.owner
                   /\ a.backup \in View(i)

\* F#: Replication.needsBackup, at leader l.
NeedsBackup(l) == placement.owner \in View(l) /\ Cardinality(View(l)) > 1 /\ ~HasBackup(l, backups[l])

\* F#: Placement.roomsOwned and Replication.roomsBacked, for the one room.
RoomsOwned(n) == IF placement.owner = n THEN 1 ELSE 0
RoomsBacked(a, n) == IF a # NoBackup /\ a.backup = n THEN 1 ELSE 0

\* F#: Replication.leastLoadedBackup: the live nodes other than owner o holding the fewest
\* rooms (owned and backed, in l's knowledge).  F# breaks a tie by clients, then by the
\* lowest id; the spec does not model clients, so any of the tied nodes may be chosen (the
\* lowest id alone once hid a bug: a new owner that was always the old backup).
LeastLoadedBackups(l, o) ==
    LET load(n) == RoomsOwned(n) + RoomsBacked(backups[l], n)
    IN  {n \in View(l) \ {o} : \A k \in View(l) \ {o} : load(n) <= load(k)}

\* F#: Placement.leastLoaded: the live nodes owning the fewest rooms, any of them (as above).
LeastLoaded(l) == {n \in View(l) : \A k \in View(l) : RoomsOwned(n) <= RoomsOwned(k)}

\* F#: Replication.isNewer.
Newer(a, b) == a.epoch > b.epoch \/ (a.epoch = b.epoch /\ a.version > b.version)

\* F#: Replication.recvBackupAssignment.  A newer assignment replaces the one held.
Adopted(current, a) == IF current # NoBackup /\ ~Newer(a, current) THEN current ELSE a

\* F#: Replication.backupTarget, at node o.
BackupTarget(o) == IF placement.owner = o /\ HasBackup(o, backups[o]) THEN backups[o] ELSE NoBackup

\* The network.  Send(c, i, j, m): m joins the link from i to j, unless j has stopped or a
\* partition separates them (such a message could never be received: the TCP link is
\* down).  Receiving takes a link's head.
Send(c, i, j, m) == IF alive[j] /\ Connected(i, j) THEN [c EXCEPT ![i][j] = Append(@, m)] ELSE c
Broadcast(c, i, m) == [x \in Node |-> IF x = i THEN [y \in Node |-> IF y # i /\ alive[y] /\ Connected(i, y) THEN Append(c[i][y], m) ELSE c[i][y]]
                                      ELSE c[x]]
\* m to each node of S other than i that is alive and not cut off from i.
SendToAll(c, i, S, m) == [x \in Node |-> IF x = i THEN [y \in Node |-> IF y \in S /\ y # i /\ alive[y] /\ Connected(i, y) THEN Append(c[i][y], m) ELSE c[i][y]]
                                          ELSE c[x]]
First(i, j) == chan[i][j][1]
Pop(i, j) == [chan EXCEPT ![i][j] = Tail(@)]
Receivable(i, j, type) == alive[j] /\ chan[i][j] # <<>> /\ First(i, j).type = type

\* F#: Replication.persist.  A log is appended the messages newer than its last one.
Persist(d, ms) == d \o SelectSeq(ms, LAMBDA m : m.seq > LastOf(d))

\* A node's replica of the room, F# Replication.Replica: <<history, stored, disk>>.
\* F#: Replication.deliverSequenced: a committed message reaches a node.  A stored copy that
\* differs was never committed and goes, with everything stored after it, and the log is
\* rewritten as the history (a restart must not read that copy back); otherwise the stored
\* copies up to it are done and the message is written.
Superseded(stored, m) == \E k \in DOMAIN stored : stored[k].seq = m.seq /\ stored[k] # m

DeliverSequenced(r, m) ==
    LET h == r[1]
        gone == Superseded(r[2], m)
        stored == IF gone THEN <<>> ELSE After(r[2], m.seq)
    IN  IF m.seq <= LastSeq(h) THEN <<h, stored, r[3]>>
        ELSE IF gone THEN <<Append(h, m), stored, Append(h, m)>>
        ELSE <<Append(h, m), stored, Persist(r[3], <<m>>)>>

RECURSIVE DeliverAll(_, _)
\* A replica after it delivers the messages ms in order.
DeliverAll(r, ms) == IF ms = <<>> THEN r ELSE DeliverAll(DeliverSequenced(r, Head(ms)), Tail(ms))

Replica(i) == <<history[i], replicas[i], disk[i]>>

\* F#: Replication.adoptHistory.  The owner's committed messages extend an agreeing history
\* (the ones it lacked are delivered) or replace a disagreeing one, on disk too.
AdoptHistory(r, committed) ==
    LET h == r[1]
        agrees == \A k \in DOMAIN committed : \A x \in DOMAIN h :
                      h[x].seq = committed[k].seq => h[x] = committed[k]
        ownersLast == IF committed = <<>> THEN LastSeq(h) ELSE LastOf(committed)
    IN  IF agrees /\ LastSeq(h) <= ownersLast
        THEN DeliverAll(r, After(committed, LastSeq(h)))
        ELSE <<committed, r[2], committed>>

\* F#: Replication.takeOwnership at node n, the new owner: what it stored as the backup
\* (after its history) is now pending; it is committed by a later Commit.  The old owner, if
\* it is live (cut off by a partition), stops acting as the owner and forgets what was
\* pending (the posts' nodes send them to the new owner); if anything was, its log is
\* rewritten as its history (what was pending may be on disk: stored as the backup before).
TakeOwnership(n) ==
    LET old == placement.owner
        releases == old # n /\ old \in Node /\ alive[old]
        released == IF releases THEN [primary EXCEPT ![old] = NoPrimary] ELSE primary
    IN  /\ disk' = IF releases /\ primary[old] # NoPrimary /\ primary[old].pending # <<>>
                   THEN [disk EXCEPT ![old] = history[old]] ELSE disk
        /\ IF primary[n] = NoPrimary
           THEN /\ primary' = [released EXCEPT ![n] = [EmptyPrimary EXCEPT !.pending = After(replicas[n], LastSeq(history[n]))]]
                /\ replicas' = [replicas EXCEPT ![n] = <<>>]
           ELSE /\ primary' = released
                /\ UNCHANGED replicas

-----------------------------------------------------------------------------
(* The owner. *)

\* F#: Replication.sequencePost returning Sequenced (Node.sequenceAsOwner).  The next number
\* continues after everything the owner holds and what the placement says the room reached.
\* The message goes to the backup with the next append (SendAppends).
\* (A retry of a committed or pending message changes nothing modelled.)
SequencePost(o, id) ==
    /\ alive[o] /\ placement.owner = o /\ primary[o] # NoPrimary
    /\ id \notin Ids(history[o]) \cup Ids(primary[o].pending)
    /\ LET p == primary[o]
           last == Max({LastSeq(history[o]), placement.lastSeq, LastOf(p.pending)})
           m == [seq |-> last + 1, id |-> id]
       IN  primary' = [primary EXCEPT ![o].pending = Append(@, m)]
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, backups, history, replicas, chan, missing, disk, acked, members, memberChanges, restarts, recovered>>

\* F#: Replication.syncBackup.  A backup the owner has not sent its state to gets the
\* committed history and every pending message; nothing commits until it confirms.
\* "Not sent to" compares the whole assignment: comparing the version only missed a new
\* leader's assignment (epoch 2, version 1) after the old leader's (epoch 1, version 1),
\* which the backup had ignored, and the posts stayed pending for ever (EventuallyDrained).
SyncBackup(o) ==
    /\ alive[o] /\ primary[o] # NoPrimary
    /\ LET t == BackupTarget(o)
       IN  /\ t # NoBackup /\ t # primary[o].synced
           /\ primary' = [primary EXCEPT ![o] = [@ EXCEPT !.synced = t, !.stored = None, !.inflight = <<>>]]
           /\ chan' = Send(chan, o, t.backup, SyncMsg(t, history[o], primary[o].pending))
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, backups, history, replicas, missing, disk, acked, members, memberChanges, restarts, recovered>>

\* F#: Replication.sendAppends.  Once the backup has confirmed the state it was sent, the
\* owner sends it, in one append, every pending message it has not sent yet (a batch: one
\* peer frame, one write and one fsync at the backup for all of them), while fewer than Window
\* appends are in flight unconfirmed.  Under load the messages that arrive while the window is
\* full go together in the next append.  (F# also ends a batch at a size budget, which no
\* model reaches.)
LastSent(p) == IF p.inflight = <<>> THEN p.stored ELSE p.inflight[Len(p.inflight)]

SendAppends(o) ==
    /\ alive[o] /\ primary[o] # NoPrimary
    /\ LET p == primary[o]
           t == BackupTarget(o)
           batch == After(p.pending, LastSent(p))
       IN  /\ t # NoBackup /\ t = p.synced /\ p.stored # None
           /\ Len(p.inflight) < Window
           /\ batch # <<>>
           /\ primary' = [primary EXCEPT ![o].inflight = Append(@, LastOf(batch))]
           /\ chan' = Send(chan, o, t.backup, AppendMsg(t, batch))
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, backups, history, replicas, missing, disk, acked, members, memberChanges, restarts, recovered>>

\* F#: Replication.recvStored.  The backup holds everything up to seq, for the assignment
\* the owner last sent its state to (an older one's confirmation is stale).  One that holds
\* less than the owner has committed never took the state it was sent: the owner sends it
\* again (SyncBackup is enabled once more).  One beyond what o has sequenced is ignored: F#
\* takes it for forged or broken, yet an honest one gets there too, when the backup holds a
\* committed message of the previous owner that has not reached o yet; the next confirmation
\* counts instead.  A confirmation is cumulative: it frees every append in flight up to seq.
RecvStored(o, b) ==
    /\ Receivable(b, o, "stored")
    /\ LET m == First(b, o)
           p == primary[o]
           sequenced == Max({LastSeq(history[o]), LastOf(p.pending)})
       IN  primary' = IF p = NoPrimary \/ m.assignment # p.synced \/ m.seq > sequenced THEN primary
                      ELSE IF m.seq < LastSeq(history[o])
                      THEN [primary EXCEPT ![o] = [@ EXCEPT !.synced = NoBackup, !.stored = None, !.inflight = <<>>]]
                      ELSE [primary EXCEPT ![o] = [@ EXCEPT !.stored = IF m.seq > p.stored THEN m.seq ELSE p.stored,
                                                            !.inflight = SelectSeq(p.inflight, LAMBDA s : s > m.seq)]]
    /\ chan' = Pop(b, o)
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, backups, history, replicas, missing, disk, acked, members, memberChanges, restarts, recovered>>

\* F#: Replication.commit, as Node.replicate uses it: with a quorum, the pending messages
\* the backup has stored; with no backup serving this owner, all of them only when o is
\* alone in its view (Alone(o): the only node it sees, a cluster of one or the survivor of
\* two), and none otherwise (o waits for the leader's backup).  Each committed message is
\* delivered here and sent to the live nodes it can reach of Interested(o).
Alone(o) == View(o) = {o}

CommitUpTo(o) ==
    LET t == BackupTarget(o)
        p == primary[o]
    IN  IF ~HasQuorum(o) THEN 0
        ELSE IF t = NoBackup THEN (IF Alone(o) THEN LastOf(p.pending) ELSE 0)
        ELSE IF p.stored # None /\ t = p.synced THEN p.stored
        ELSE 0

\* F#: Replication.interestedNodes, at owner o: where a committed message goes.  The nodes
\* with members in the room (they show it), the room's backup as o knows it (it must hold
\* every committed message, to be promoted), and the leader o sees (its history is the
\* lastSeq of a new placement).  Any other node may keep a copy that grows stale: it asks
\* for the history when it gains a member (Join).
Interested(o) == (members \cup {backups[o].backup, Max(View(o))}) \ {o}

RECURSIVE SendAllTo(_, _, _, _)
SendAllTo(c, o, S, ms) == IF ms = <<>> THEN c ELSE SendAllTo(SendToAll(c, o, S, SequencedMsg(Head(ms))), o, S, Tail(ms))

Commit(o) ==
    /\ alive[o] /\ primary[o] # NoPrimary
    /\ LET p == primary[o]
           committed == UpTo(p.pending, CommitUpTo(o))
           delivered == DeliverAll(Replica(o), committed)
       IN  /\ committed # <<>>
           /\ primary' = [primary EXCEPT ![o].pending = After(p.pending, CommitUpTo(o))]
           /\ history' = [history EXCEPT ![o] = delivered[1]]
           /\ replicas' = [replicas EXCEPT ![o] = delivered[2]]
           /\ disk' = [disk EXCEPT ![o] = delivered[3]]
           /\ chan' = SendAllTo(chan, o, Interested(o), committed)
           /\ acked' = acked \cup Range(committed)
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, backups, missing, members, memberChanges, restarts, recovered>>

-----------------------------------------------------------------------------
(* The backup, and every node. *)

\* F#: Node.isCurrentBackup.  b stores for the assignment a's owner only while a is b's
\* assignment and that owner still owns the room (a node just promoted does not store for
\* the owner it replaced).
IsCurrentBackup(b, a, assigned) == a.backup = b /\ assigned = a /\ placement.owner = a.owner

\* F#: Replication.recvSync (after Replication.recvBackupAssignment).  The assignment the
\* sync carries is taken if newer.  If b is that backup, its copy of the room becomes the
\* owner's: the committed history (extended, or replaced where b's copy disagrees) and the
\* pending messages, written (the log rewritten if it held a copy the owner does not send
\* again), and b confirms what it holds; it no longer waits for a fill.
\* F#: the dropped copies of Replication.recvSync: b stored a message beyond its history that
\* the owner does not send again; it was never committed, and the log is rewritten without it.
Dropped(r, stored) == \E k \in DOMAIN r[2] : r[2][k].seq > LastSeq(r[1]) /\ r[2][k] \notin Range(stored)

RecvSync(b, o) ==
    /\ Receivable(o, b, "sync")
    /\ LET m == First(o, b)
           a == m.assignment
           assigned == Adopted(backups[b], a)
           r == AdoptHistory(Replica(b), m.committed)
           stored == After(m.pending, LastSeq(r[1]))
       IN  /\ backups' = [backups EXCEPT ![b] = assigned]
           /\ IF IsCurrentBackup(b, a, assigned)
              THEN /\ history' = [history EXCEPT ![b] = r[1]]
                   /\ replicas' = [replicas EXCEPT ![b] = stored]
                   /\ disk' = [disk EXCEPT ![b] = IF Dropped(r, stored) THEN r[1] \o stored ELSE Persist(r[3], stored)]
                   /\ missing' = missing \ {b}
                   /\ chan' = Send(Pop(o, b), b, a.owner, StoredMsg(a, Held(r[1], stored)))
              ELSE /\ chan' = Pop(o, b)
                   /\ UNCHANGED <<history, replicas, disk, missing>>
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, primary, acked, members, memberChanges, restarts, recovered>>

\* F#: Replication.storeReplica (after Replication.recvBackupAssignment).  The backup stores
\* and writes the owner's batch (one write) when it follows directly on what it holds, and
\* confirms what it holds.
StoreReplica(b, o) ==
    /\ Receivable(o, b, "append")
    /\ LET m == First(o, b)
           a == m.assignment
           assigned == Adopted(backups[b], a)
           held == Held(history[b], replicas[b])
       IN  /\ backups' = [backups EXCEPT ![b] = assigned]
           /\ IF IsCurrentBackup(b, a, assigned)
              THEN IF m.messages[1].seq = held + 1
                   THEN /\ replicas' = [replicas EXCEPT ![b] = @ \o m.messages]
                        /\ disk' = [disk EXCEPT ![b] = Persist(@, m.messages)]
                        /\ chan' = Send(Pop(o, b), b, a.owner, StoredMsg(a, LastOf(m.messages)))
                   ELSE /\ chan' = Send(Pop(o, b), b, a.owner, StoredMsg(a, held))
                        /\ UNCHANGED <<replicas, disk>>
              ELSE /\ chan' = Pop(o, b)
                   /\ UNCHANGED <<replicas, disk>>
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, history, primary, missing, acked, members, memberChanges, restarts, recovered>>

\* F#: Node.recvSequenced.  A committed message that follows on what node i holds is
\* delivered (deliverSequenced).  One that skips numbers is held back (dropped: the fill
\* brings it): i asks the owner for the missing ones, unless it asked already.
RecvSequenced(i, j) ==
    /\ Receivable(j, i, "sequenced")
    /\ LET m == First(j, i).message
       IN  IF m.seq <= LastSeq(history[i]) + 1
           THEN LET delivered == DeliverAll(Replica(i), <<m>>)
                IN  /\ history' = [history EXCEPT ![i] = delivered[1]]
                    /\ replicas' = [replicas EXCEPT ![i] = delivered[2]]
                    /\ disk' = [disk EXCEPT ![i] = delivered[3]]
                    /\ UNCHANGED missing
           ELSE /\ missing' = missing \cup {i}
                /\ UNCHANGED <<history, replicas, disk>>
    /\ chan' = Pop(j, i)
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, backups, primary, acked, members, memberChanges, restarts, recovered>>

\* F#: Node.askForMissing, the owner's HistoryRequested answer (Rooms.since) and
\* Node.adoptHistory, as one step: node i, waiting for missing messages, gets the live
\* owner's committed messages after its last one.  F# asks on the gap and again every
\* tick, of whichever node owns the room then; an owner forgets its own request.
FillGap(i) ==
    /\ alive[i] /\ i \in missing
    /\ LET o == placement.owner
       IN  IF o = i
           THEN /\ missing' = missing \ {i}
                /\ UNCHANGED <<history, replicas, disk>>
           ELSE LET fill == After(history[o], LastSeq(history[i]))
                    delivered == DeliverAll(Replica(i), fill)
                IN  /\ o \in View(i)
                    /\ history' = [history EXCEPT ![i] = delivered[1]]
                    /\ replicas' = [replicas EXCEPT ![i] = delivered[2]]
                    /\ disk' = [disk EXCEPT ![i] = delivered[3]]
                    /\ missing' = missing \ {i}
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, backups, primary, chan, acked, members, memberChanges, restarts, recovered>>

-----------------------------------------------------------------------------
(* The leader. *)

\* F#: Replication.assignBackup (Node.assignBackups: only with a quorum).  The leader gives
\* the room's live owner, if it has no live backup serving it, the least-loaded other live
\* node, and tells every other live node.
AssignBackup(l) ==
    /\ IsLeader(l) /\ HasQuorum(l) /\ NeedsBackup(l)
    /\ \E b \in LeastLoadedBackups(l, placement.owner) :
          LET a == [backup |-> b,
                    owner |-> placement.owner,
                    epoch |-> epoch,
                    version |-> IF backups[l] # NoBackup THEN backups[l].version + 1 ELSE 1]
          IN  /\ backups' = [backups EXCEPT ![l] = a]
              /\ chan' = Broadcast(chan, l, BackupMsg(a))
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, history, replicas, primary, missing, disk, acked, members, memberChanges, restarts, recovered>>

\* F#: Node.applyBackup with Replication.recvBackupAssignment.
RecvBackupAssignment(i, j) ==
    /\ Receivable(j, i, "backup")
    /\ backups' = [backups EXCEPT ![i] = Adopted(@, First(j, i).assignment)]
    /\ chan' = Pop(j, i)
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, history, replicas, primary, missing, disk, acked, members, memberChanges, restarts, recovered>>

\* F#: Replication.promoteBackup (Node.reassignRooms: only with a quorum; lastSeq is the
\* leader's history's).  The owner has died and its backup is live: the backup becomes the
\* owner, and takes the room over.
CanPromote(l) ==
    LET a == backups[l]
    IN  a # NoBackup /\ placement.owner \notin View(l) /\ a.owner = placement.owner /\ a.backup \in View(l)

PromoteBackup(l) ==
    /\ IsLeader(l) /\ HasQuorum(l) /\ CanPromote(l)
    /\ LET n == backups[l].backup
       IN  /\ placement' = [owner |-> n, epoch |-> epoch, version |-> placement.version + 1,
                            lastSeq |-> Max({LastSeq(history[l]), placement.lastSeq})]
           /\ TakeOwnership(n)
    /\ UNCHANGED <<alive, isolated, partitions, epoch, backups, history, chan, missing, acked, members, memberChanges, restarts, recovered>>

\* F#: Placement.reassignRooms, as Node.reassignRooms calls it (with a quorum, after
\* promoteBackups, so only when there is no backup to promote; lastSeq is the leader's
\* history's).  The room's owner has died with no live backup: the least-loaded live node
\* becomes the owner.
ReassignRooms(l) ==
    /\ IsLeader(l) /\ HasQuorum(l) /\ placement # NoPlacement
    /\ placement.owner \notin View(l) /\ ~CanPromote(l)
    /\ \E n \in LeastLoaded(l) :
           /\ placement' = [owner |-> n, epoch |-> epoch, version |-> placement.version + 1,
                            lastSeq |-> LastSeq(history[l])]
           /\ TakeOwnership(n)
    /\ UNCHANGED <<alive, isolated, partitions, epoch, backups, history, chan, missing, acked, members, memberChanges, restarts, recovered>>

\* F#: NodeState.heldOf, as node n reports it (RoomsHeld): the highest sequence
\* number n holds of the room, committed or stored.
HeldBy(n) == Held(history[n], replicas[n])

\* F#: Placement.highest.  The nodes of l's view that hold the most of the room.  The reports
\* are one step here: in F# every node reports what it holds of every room in its
\* introduction (rooms-held), and the leader places a room it has no placement of only once
\* every node of its view has reported (RoomPlacement.recvRoomsHeld); nothing changes a room
\* without an owner meanwhile.
Highest(l) == {n \in View(l) : \A k \in View(l) : HeldBy(n) >= HeldBy(k)}

\* F#: Placement.assignUnplaced: a room the leader has no placement of, after a whole-cluster
\* restart (F#: also a brand-new room; every node then reports nothing held).  The room goes to
\* a node holding the most of it, the least-loaded of those (one room: any), and the sequence
\* continues after what that node holds.  Raft's rule that a shorter log never wins: by load
\* alone (LeastLoaded) the owner could be a node that was down while messages committed, and
\* it would number new messages at positions already acknowledged (TLC: AckedDurable,
\* OnePerPosition; the mutation assign-room-by-load).
AssignUnplaced(l) ==
    /\ IsLeader(l) /\ HasQuorum(l) /\ placement = NoPlacement
    /\ \E n \in Highest(l) :
           /\ placement' = [owner |-> n, epoch |-> epoch, version |-> 1, lastSeq |-> HeldBy(n)]
           /\ TakeOwnership(n)
    /\ UNCHANGED <<alive, isolated, partitions, epoch, backups, history, chan, missing, acked, members, memberChanges, restarts, recovered>>

-----------------------------------------------------------------------------
(* The environment. *)

\* Crash-stop, at most MaxCrashes, one node stays alive.  Every live node's failure
\* detector removes the node at once; if it was the leader, the highest live id becomes
\* leader in the next epoch.  What was in flight to it is gone.
Crash(n) ==
    /\ alive[n]
    /\ Cardinality(Crashed) < MaxCrashes
    /\ Cardinality(Live) > 1
    /\ Cardinality(Live \ (isolated \cup {n})) >= 1
    /\ alive' = [alive EXCEPT ![n] = FALSE]
    /\ epoch' = IF n = Leader THEN epoch + 1 ELSE epoch
    /\ chan' = [i \in Node |-> [j \in Node |-> IF j = n THEN <<>> ELSE chan[i][j]]]
    /\ UNCHANGED <<isolated, partitions, placement, backups, history, replicas, primary, missing, disk, acked, members, memberChanges, restarts, recovered>>

\* A partition cuts live node n off from every other node, at most MaxPartitions times in
\* a behaviour (one fault, like one crash: a node healed with messages the others lack,
\* then a second cut, is the two-crash loss again), while at least one live node stays on
\* the other side.  Both sides' failure detectors
\* remove the other side at once; if n led, the rest elect the highest of them in the next
\* epoch.  What was in flight between n and the rest is lost with the TCP links.
Partition(n) ==
    /\ alive[n] /\ n \notin isolated
    /\ partitions < MaxPartitions
    /\ Live \ (isolated \cup {n}) # {}
    /\ isolated' = isolated \cup {n}
    /\ partitions' = partitions + 1
    /\ epoch' = IF n = Leader THEN epoch + 1 ELSE epoch
    /\ chan' = [i \in Node |-> [j \in Node |-> IF i = n \/ j = n THEN <<>> ELSE chan[i][j]]]
    /\ UNCHANGED <<alive, placement, backups, history, replicas, primary, missing, disk, acked, members, memberChanges, restarts, recovered>>

\* The partition around n heals: n and the rest see each other again; if n has the highest
\* id, it is elected leader in the next epoch.
Heal(n) ==
    /\ n \in isolated
    /\ isolated' = isolated \ {n}
    /\ epoch' = IF alive[n] /\ n > Leader THEN epoch + 1 ELSE epoch
    /\ UNCHANGED <<alive, partitions, placement, backups, history, replicas, primary, chan, missing, disk, acked, members, memberChanges, restarts, recovered>>

\* A node gains its first member in the room (F#: Node.join, or a hello naming the room): it
\* asks the owner for the history first (F#: RoomReplica.catchUp; FillGap here), since its copy
\* may have grown stale while no message was sent to it.  The owner needs nothing.
Join(n) ==
    /\ alive[n] /\ n \notin members
    /\ members' = members \cup {n}
    /\ memberChanges' = memberChanges + 1
    /\ missing' = IF n = placement.owner THEN missing ELSE missing \cup {n}
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, backups, history, replicas, primary, chan, disk, acked, restarts, recovered>>

\* A node loses its last member in the room: committed messages stop coming to it (unless it
\* is the backup or the leader), and it keeps its copy, which may grow stale.
Leave(n) ==
    /\ alive[n] /\ n \in members
    /\ members' = members \ {n}
    /\ memberChanges' = memberChanges + 1
    /\ UNCHANGED <<alive, isolated, partitions, epoch, placement, backups, history, replicas, primary, chan, disk, missing, acked, restarts, recovered>>

\* Every node stops and starts again (a power cut, or an upgrade of the whole cluster), while
\* the room has a placement.  A node reads its log back as its history (F#: NodeState.recover)
\* and knows nothing else: no placement, no backup, nothing pending or stored, no link.  The
\* nodes elect the highest id (epoch 1 again: every node starts at epoch 0).  A log may hold
\* a message the node stored as the backup and its owner never committed: read back, it is
\* history (recovered), and a node that owns the room next treats it as committed (the
\* client, never acknowledged, retries it and the owner recognises its id).
Restart ==
    /\ placement # NoPlacement
    /\ alive' = [n \in Node |-> TRUE]
    /\ isolated' = {}
    /\ epoch' = 1
    /\ placement' = NoPlacement
    /\ backups' = [n \in Node |-> NoBackup]
    /\ history' = disk
    /\ replicas' = [n \in Node |-> <<>>]
    /\ primary' = [n \in Node |-> NoPrimary]
    /\ chan' = [i \in Node |-> [j \in Node |-> <<>>]]
    /\ missing' = {}
    /\ restarts' = restarts + 1
    /\ recovered' = recovered \cup (UNION {Range(disk[n]) : n \in Node} \ acked)
    /\ UNCHANGED <<partitions, disk, acked, members, memberChanges>>

-----------------------------------------------------------------------------

\* "backed": owner o of InitialOwner placed in epoch 1, a backup b assigned by leader
\* Max(Node) and known everywhere, and o has had b's confirmation of its (empty) state.
\* (Any b: with clients, the least-loaded node can be any.)
\* "fresh": the room has just been placed on o; no node knows a backup.
Init ==
    /\ alive = [n \in Node |-> TRUE]
    /\ isolated = {}
    /\ partitions = 0
    /\ epoch = 1
    /\ history = [n \in Node |-> <<>>]
    /\ replicas = [n \in Node |-> <<>>]
    /\ disk = [n \in Node |-> <<>>]
    /\ chan = [i \in Node |-> [j \in Node |-> <<>>]]
    /\ missing = {}
    /\ acked = {}
    /\ members = Node
    /\ memberChanges = 0
    /\ restarts = 0
    /\ recovered = {}
    /\ \E o \in InitialOwner :
          /\ placement = [owner |-> o, epoch |-> 1, version |-> 1, lastSeq |-> 0]
          /\ IF Start = "backed"
             THEN \E b \in Node \ {o} :
                     /\ backups = [n \in Node |-> [backup |-> b, owner |-> o, epoch |-> 1, version |-> 1]]
                     /\ primary = [n \in Node |-> IF n = o THEN [EmptyPrimary EXCEPT !.synced = [backup |-> b, owner |-> o, epoch |-> 1, version |-> 1], !.stored = 0] ELSE NoPrimary]
             ELSE /\ backups = [n \in Node |-> NoBackup]
                  /\ primary = [n \in Node |-> IF n = o THEN EmptyPrimary ELSE NoPrimary]

\* Each disjunct on a line of its own; every parameter ranges over a constant, so TLC
\* labels every step with its action and parameters.
Next ==
    \/ \E o \in Node : \E id \in Msg : SequencePost(o, id)
    \/ \E o \in Node : SyncBackup(o)
    \/ \E o \in Node : SendAppends(o)
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
    \/ \E n \in Node : Partition(n)
    \/ \E n \in Node : Heal(n)

Spec == Init /\ [][Next]_vars

\* Members come and go (the environment).  Spec keeps every node a member node, where the
\* committed messages go everywhere; MCReplication bounds memberChanges.
MembersNext ==
    \/ Next
    \/ \E n \in Node : Join(n)
    \/ \E n \in Node : Leave(n)

MembersSpec == Init /\ [][MembersNext]_vars

\* Weak fairness of every node action: a node that can take a step keeps taking it (its
\* event loop runs).  Not of Crash (faults are not obliged to happen) nor of SequencePost
\* (clients are not obliged to post).  Per node and per link, so that one busy node or link
\* cannot starve another.
Fairness ==
    /\ \A o \in Node : WF_vars(SyncBackup(o)) /\ WF_vars(SendAppends(o)) /\ WF_vars(Commit(o)) /\ WF_vars(FillGap(o))
    /\ \A l \in Node : WF_vars(AssignBackup(l)) /\ WF_vars(PromoteBackup(l)) /\ WF_vars(ReassignRooms(l))
    /\ \A i, j \in Node : /\ WF_vars(RecvSync(i, j)) /\ WF_vars(StoreReplica(i, j)) /\ WF_vars(RecvStored(i, j))
                         /\ WF_vars(RecvSequenced(i, j)) /\ WF_vars(RecvBackupAssignment(i, j))

FairSpec == Spec /\ Fairness

-----------------------------------------------------------------------------
(* Properties. *)

\* Everything node i holds of the room, each message at its position: committed, stored as
\* the backup, pending as the owner.
Log(i) == Range(history[i]) \cup Range(replicas[i]) \cup Range(primary[i].pending)

\* The owner's backup is up to date: it serves this owner, is live, and has confirmed the
\* state the owner sent it (F#: Replication.isUpToDate, at the owner, live or not).
IsUpToDate(t, p) == t # NoBackup /\ t = p.synced /\ p.stored # None

UpToDateBackups ==
    LET o == placement.owner
    IN  IF o \in Node /\ primary[o] # NoPrimary /\ IsUpToDate(BackupTarget(o), primary[o])
        THEN {BackupTarget(o).backup} ELSE {}

\* The live replicas of the room: its owner if live, and its up-to-date backup.
LiveReplicas == ({placement.owner} \cap Live) \cup UpToDateBackups

\* Whole-cluster restarts (the environment) besides Spec's actions.  One fault at a time: the
\* restart, with the node that was down before it, is the one; no node crashes after it.  A
\* room placed afresh after a restart is a fresh room: a crash then can lose what was
\* acknowledged before it exactly as MCReplication3FreshLeaderOwns shows for any fresh room
\* owned by the leader (ReassignRooms places by load; spec/README.md).
RestartNext ==
    \/ Next /\ (restarts = 0 \/ UNCHANGED alive)
    \/ Restart
    \/ \E l \in Node : AssignUnplaced(l)

RestartSpec == Init /\ [][RestartNext]_vars

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

\* No history holds a sequence number twice (Record delivers a number once).
NoDupInHistory ==
    \A i \in Node : \A x, y \in DOMAIN history[i] : x # y => history[i][x].seq # history[i][y].seq

\* No history has a hole: its k-th message has number k, so nothing below the highest
\* delivered number is missing (a message that skips numbers waits for the fill).
Contiguous == \A i \in Node : \A k \in DOMAIN history[i] : history[i][k].seq = k

\* A node with members shows no gap: unless it waits for a fill (it saw a gap, or gained its
\* first member and asked for the history), it holds every acknowledged message or is about
\* to: in flight to it, or pending at the owner (a promoted backup's, committed and sent
\* again).  Without a partition: a node cut off misses messages and learns of the gap only
\* from the next one (MCReplication3WitnessGap), with or without routing.
InFlightTo(i, m) == \E j \in Node : SequencedMsg(m) \in Range(chan[j][i])
MembersCaughtUp ==
    partitions = 0 =>
        \A i \in members \cap Live : i \notin missing =>
            \A m \in acked : \/ m \in Range(history[i])
                           \/ InFlightTo(i, m)
                           \/ (placement.owner \in Node /\ m \in Range(primary[placement.owner].pending))

\* A history holds only acknowledged messages: nothing a node delivers was never committed
\* (or, after a restart, read back from a log as history: recovered).
HistoryAcked == \A i \in Node : Range(history[i]) \subseteq acked \cup recovered

\* A log is written in order, each record newer than the one before: a restart reads back
\* every record, and at most one message per position.
LogInOrder == \A i \in Node : \A k \in DOMAIN disk[i] : k > 1 => disk[i][k - 1].seq < disk[i][k].seq

\* Once a node has learned what was committed at a position (its history holds it), its log,
\* what it would read back after a restart, holds exactly that message there.
LogHoldsCommitted == \A i \in Node : Range(history[i]) \subseteq Range(disk[i])

\* A live node that does not own the room keeps in its log only what was committed and what
\* it stores as the backup now: nothing it held pending as an owner, nor a copy it stored and
\* the owner never committed, survives in its log.
NoUncommittedInLog ==
    \A i \in Live : primary[i] = NoPrimary => Range(disk[i]) \subseteq acked \cup recovered \cup Range(replicas[i])

\* An action property: a new placement of the room starts numbering after everything the
\* leader (of the nodes not cut off) has seen committed.
NewPlacementKnowsHistory ==
    [][placement' \notin {placement, NoPlacement} => placement'.lastSeq >= LastSeq(history[Leader])]_vars

\* An action property: a node stores a message as the backup (its replicas gain one) only
\* on receiving it from the room's current owner, under the very assignment it holds after
\* the step, which names it as that owner's backup.
Received(o, b) == chan[o][b] # <<>> /\ chan'[o][b] = Tail(chan[o][b])
StoresOnlyForOwner ==
    [][\A o, b \in Node :
          (Received(o, b) /\ First(o, b).type \in {"sync", "append"} /\ Range(replicas'[b]) \ Range(replicas[b]) # {})
              => /\ First(o, b).assignment = backups'[b]
                 /\ backups'[b].backup = b
                 /\ backups'[b].owner = placement.owner
                 /\ o = placement.owner]_vars

-----------------------------------------------------------------------------
(* Liveness, under FairSpec.  Crashes are bounded (MaxCrashes) and posts are finitely many *)
(* (each id once per owner), so in every behaviour the faults and the posts stop; "eventually *)
(* always" then says what the cluster must settle into.                                      *)

\* The room ends with a live owner and nothing pending there: every post it sequenced is
\* committed (not stuck waiting for a backup that will never confirm).
Drained == LET o == placement.owner
           IN  o \in Node /\ alive[o] /\ primary[o] # NoPrimary /\ primary[o].pending = <<>>
EventuallyDrained == <>[]Drained

\* Every acknowledged message ends up in the history of every live node.
Everywhere == \A m \in acked : \A i \in Live : m \in Range(history[i])
EventuallyEverywhere == <>[]Everywhere
-----------------------------------------------------------------------------
(* Witnesses: deliberately false properties that a model must violate, to show that it  *)
(* reaches the states the properties above are about (ci/tlc-models.fsx expects each   *)
(* violation).                                                                           *)

\* After a failover the new owner commits a message it sequenced itself: acknowledged,
\* newer than what the leader had seen, and in no crashed node's log.
NoCommitAfterFailover ==
    ~(placement.version > 1 /\ \E m \in acked : m.seq > placement.lastSeq /\ \A i \in Crashed : m \notin Log(i))

\* A node fills a gap: it waited for missing messages and the fill brought some.
NoGapFilled == [][\A i \in Node : ~(i \in missing /\ i \notin missing' /\ history'[i] # history[i])]_vars

\* An owner with messages to commit has lost its quorum (a partition cut it off).
NoQuorumLost == \A i \in Live : (primary[i] # NoPrimary /\ primary[i].pending # <<>>) => HasQuorum(i)

\* The leader promotes the backup, which takes over messages it stored and the dead
\* owner never committed.
NoPromote == [][\A l \in Node : ~(PromoteBackup(l) /\ primary'[backups[l].backup].pending # <<>>)]_vars
=============================================================================
