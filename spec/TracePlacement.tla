----------------------------- MODULE TracePlacement -----------------------------
(***************************************************************************)
(* Trace validation of real runs against Placement.tla (spec/README.md,    *)
(* "Trace validation"; TraceReplication.tla does the same for              *)
(* Replication.tla).  The nodes log, after each step that touched          *)
(* placement (--trace-file PATH writes PATH.placement), their placements,  *)
(* the view, leader and epoch their placement actions read, the client     *)
(* loads and backups those read too, and the placement messages the step   *)
(* received and sent, as Placement.tla's records.  They do not log which   *)
(* actions the step took: TLC lets the logged node take up to              *)
(* MaxActionsPerLine of its own actions (NodeActions: Placement.tla's, by  *)
(* their names, and the environment's for that node) and then requires    *)
(* its variables to be the logged ones (Matched).  Accepted when TLC's     *)
(* search reaches the end of the trace: TLC reports TraceMatchedAll        *)
(* violated.                                                               *)
(*                                                                         *)
(* TraceLog (module TraceData) is the merged trace (tests/Cluster.Tests/   *)
(* TraceValidation): a header [nodes, rooms] (the rooms in ordinal order,  *)
(* as F# iterates a Map), then one record per line in an order that       *)
(* respects causality, and a [node, crash] record where the test killed a  *)
(* node.                                                                   *)
(*                                                                         *)
(* The environment, which Placement.tla models as whole-cluster steps      *)
(* (Suspect, Elect, Join), is here the logged node's own: real nodes learn *)
(* of a crash or an election one by one, and their epochs grow by more     *)
(* than one per election.  So the node's view, leader and epoch simply     *)
(* become the logged ones (Adopt; an epoch never goes back), and           *)
(* FormalChat.tla's trace validation checks how they came about.  What is  *)
(* checked here is what the node's placement actions did with them.        *)
(*                                                                         *)
(* What real nodes do that Placement.tla leaves out, or to other modules:  *)
(*  - LeastLoaded breaks ties by the clients on each node (F#:             *)
(*    Placement.leastLoaded), which Placement.tla takes to be 0:           *)
(*    TracePlacement.cfg replaces it by TraceLeastLoaded, with the loads   *)
(*    the line logged;                                                     *)
(*  - a room whose owner left is first given to its live backup            *)
(*    (Replication.tla's PromoteBackup, F#: Replication.promoteBackup),    *)
(*    and a node that appears is sent the placements this one knows        *)
(*    (F#: NodeCoordination.introduction; Placement.tla's Join does it for *)
(*    every node at once): TracePromoteBackup and TraceIntroduce, written  *)
(*    with Placement.tla's own operators;                                  *)
(*  - a leader without a quorum ignores a request (RoomReplica.            *)
(*    decidesWithQuorum): to the spec, a lost message (LoseMessage).       *)
(***************************************************************************)
EXTENDS Placement, TLC, TraceData

Header == TraceLog[1]
Steps == SubSeq(TraceLog, 2, Len(TraceLog))

Range(s) == {s[k] : k \in DOMAIN s}

\* The constants of Placement come from the header (TracePlacement.cfg overrides them).
TraceNode == Range(Header.nodes)
TraceRoomOrder == Header.rooms
TraceAsks == TraceNode \X Range(Header.rooms)
TraceMaxCrashes == Cardinality(TraceNode)

\* More than one step of a node takes: the leader's own request for each of the rooms and
\* its placement, or a promotion, a new placement and a new view in one tick.
MaxActionsPerLine == 8

VARIABLES
    l,          \* the index in Steps of the next line to match
    taken,      \* the actions the logged node has taken towards line l
    backupsOf   \* backupsOf[i]: node i's backups as of its last line (a promotion reads them)

traceVars == <<vars, l, taken, backupsOf>>

TraceInit ==
    /\ Init
    /\ l = 1
    /\ taken = 0
    /\ backupsOf = [i \in Node |-> <<>>]

Line == Steps[l]

IsCrash == "crash" \in DOMAIN Line

\* F#: Placement.leastLoaded: fewest rooms owned, then fewest clients (as the line's node
\* knew them), then the lowest id.
ClientsOf(n) == IF \E e \in Range(Line.clients) : e[1] = n
                THEN (CHOOSE e \in Range(Line.clients) : e[1] = n)[2] ELSE 0
LoadOf(p, n) == <<RoomsOwned(p, n), ClientsOf(n), n>>
Below(a, b) == \/ a[1] < b[1]
               \/ a[1] = b[1] /\ a[2] < b[2]
               \/ a[1] = b[1] /\ a[2] = b[2] /\ a[3] <= b[3]
TraceLeastLoaded(p, V) == CHOOSE n \in V : \A o \in V : Below(LoadOf(p, n), LoadOf(p, o))

LoggedReceived == Range(Line.received)
LoggedSent == Range(Line.sent)

\* The environment of node i: its view, leader and epoch become the logged ones.
Adopt(i) ==
    /\ <<view[i], leader[i], epoch[i]>> # <<Range(Line.view), Line.leader, Line.epoch>>
    /\ epoch[i] <= Line.epoch
    /\ view' = [view EXCEPT ![i] = Range(Line.view)]
    /\ leader' = [leader EXCEPT ![i] = Line.leader]
    /\ epoch' = [epoch EXCEPT ![i] = Line.epoch]
    /\ UNCHANGED <<alive, placements, msgs>>

\* F#: NodeCoordination.introduction: the placements node i knows, to node n (Join's messages).
TraceIntroduce(i, n) ==
    /\ alive[i] /\ n # i
    /\ \E r \in DOMAIN placements[i] : PlacedMessage(n, r, placements[i][r]) \in LoggedSent
    /\ msgs' = msgs \cup Deliverable({PlacedMessage(n, r, placements[i][r]) : r \in DOMAIN placements[i]})
    /\ UNCHANGED <<environmentVars, placements>>

\* F#: Replication.promoteBackup (Replication.tla's PromoteBackup): the leader gives a room
\* whose owner has left its view to the room's backup for that owner, if the backup is in it.
BackupFor(i, r, owner) == {b \in Range(backupsOf[i]) : b.room = r /\ b.owner = owner}

TracePromoteBackup(ld, r) ==
    /\ alive[ld] /\ IsLeader(ld)
    /\ r \in DOMAIN placements[ld]
    /\ NeedsPlacement(r, placements[ld], view[ld])
    /\ \E b \in BackupFor(ld, r, placements[ld][r].owner) :
          /\ b.backup \in view[ld]
          /\ LET a == [NewAssignment(ld, r, placements[ld]) EXCEPT !.owner = b.backup]
             IN  /\ placements' = [placements EXCEPT ![ld] = Place(@, r, a)]
                 /\ msgs' = msgs \cup Deliverable(Announce(ld, r, a))
    /\ UNCHANGED environmentVars

\* The messages node i may take in this line: one the line logged as received, or the
\* leader's request to itself (received in the same step, so never logged).
Receivable(i) ==
    {m \in msgs : m \in LoggedReceived \/ (m.type = "place" /\ m.to = i /\ m.requester = i)}

\* Node i's own actions, by their names in Placement.tla.  A request is one the line sent, or
\* the leader's to itself.  A message the node took and ignored for a guard Placement.tla does
\* not have (the leader decides only with a quorum, RoomReplica.decidesWithQuorum) is, to the
\* spec, a message the network lost (LoseMessage: TracePlacement.cfg makes the model lossy).
NodeActions(i) ==
    \/ \E r \in Room : /\ PlaceMessage(leader[i], r, i) \in LoggedSent \/ leader[i] = i
                       /\ RequestRoom(i, r)
    \/ \E m \in Receivable(i) : AssignRoom(i, m)
    \/ \E m \in Receivable(i) : RecvAssignment(i, m)
    \/ \E m \in Receivable(i) : LoseMessage(m)
    \/ ReassignRooms(i)
    \/ \E r \in Room : TracePromoteBackup(i, r)
    \/ \E n \in Node : TraceIntroduce(i, n)
    \/ Adopt(i)

\* The logged node's variables are the spec's, and what it logged as sent is in flight
\* (unless addressed to a stopped node: the network drops those).
AssignmentOf(e) == [owner |-> e.owner, epoch |-> e.epoch, leader |-> e.leader, version |-> e.version]

LoggedState(i) ==
    /\ DOMAIN placements[i] = {e.room : e \in Range(Line.placements)}
    /\ \A e \in Range(Line.placements) : placements[i][e.room] = AssignmentOf(e)
    /\ view[i] = Range(Line.view)
    /\ leader[i] = Line.leader
    /\ epoch[i] = Line.epoch
    /\ \A m \in LoggedSent : alive[m.to] => m \in msgs
    \* A message the line received is gone (taken, or never in flight), and so is the leader's
    \* request to itself (the node receives its own messages in the same step).
    /\ \A m \in LoggedReceived : m \notin msgs
    /\ \A m \in msgs : ~(m.type = "place" /\ m.to = i /\ m.requester = i)

Acting ==
    /\ l <= Len(Steps)
    /\ ~IsCrash
    /\ taken < MaxActionsPerLine
    /\ NodeActions(Line.node)
    /\ vars' # vars    \* a step that changes nothing only multiplies the states
    /\ taken' = taken + 1
    /\ UNCHANGED <<l, backupsOf>>

\* Prints each line it matches: on a rejection the tests name the line after the last printed.
Matched ==
    /\ l <= Len(Steps)
    /\ IF IsCrash
       THEN /\ Crash(Line.node)
            /\ UNCHANGED backupsOf
       ELSE /\ LoggedState(Line.node)
            /\ backupsOf' = [backupsOf EXCEPT ![Line.node] = Line.backups]
            /\ UNCHANGED vars
    /\ l' = l + 1
    /\ taken' = 0
    /\ PrintT(<<"matched line", l>>)

TraceNext == Acting \/ Matched

TraceSpec == TraceInit /\ [][TraceNext]_traceVars

\* Violated exactly when some behaviour matched every line: TLC's report of that violation is
\* the acceptance the tests read (TlcRunner.cs), as for TraceReplication.
TraceMatchedAll == l <= Len(Steps)
=============================================================================
