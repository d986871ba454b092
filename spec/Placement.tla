------------------------------- MODULE Placement -------------------------------
(***************************************************************************)
(* Room placement by the leader.  The leader puts each room that needs an  *)
(* owner on the least-loaded node of its view and announces the placement  *)
(* to every other node of its view; when an owner leaves the leader's view *)
(* the leader puts its rooms elsewhere.  Every assignment carries the      *)
(* leader's epoch, the room's assignment count (version) and the leader's  *)
(* id; the newest (epoch, version, leader) wins everywhere, so two leaders *)
(* of one epoch cannot leave two nodes with different owners of a room.    *)
(*                                                                         *)
(* F# counterpart: Protocol.FSharp/Placement.fs, one function per action,  *)
(* same name in lowerCamelCase, same parameters and guard:                 *)
(*                                                                         *)
(*   RequestRoom(i, r)     Placement.requestRoom r placements[i] (coord i) *)
(*   AssignRoom(l, m)      Placement.assignRoom (fun _ -> 0) 0L            *)
(*                            m.requester m.room placements[l] (coord l)   *)
(*   RecvAssignment(i, m)  Placement.recvAssignment m.room m.assignment    *)
(*                            placements[i]                                *)
(*   ReassignRooms(l)      Placement.reassignRooms (fun _ -> 0)            *)
(*                            (fun _ -> 0L) placements[l] (coord l)        *)
(*   RoomsOwned, LeastLoaded, NeedsPlacement, Newer: the helpers of the    *)
(*   same names (Newer is Placement.isNewer).                              *)
(*                                                                         *)
(* where coord i is node i's Coordination record (Self = i, View = view[i],*)
(* Epoch = epoch[i], Leader = leader[i]).                                  *)
(*                                                                         *)
(* Abstractions (each one stated again where it is used):                  *)
(* - Client loads are not modelled: every node has 0 clients, so           *)
(*   LeastLoaded is "fewest rooms owned, then lowest id".                  *)
(* - Assignment.LastSeq (the room's last sequence number, data the leader  *)
(*   carries to the new owner) is not modelled: it is 0 in F# terms and    *)
(*   plays no part in any guard.                                           *)
(* - The failure detector and the election are environment actions here:  *)
(*   Crash(n), Suspect(i, n) (accurate: only a stopped node is removed     *)
(*   from a view), Join(n) (a node of Joining starts, and every live node  *)
(*   learns of it at once), and Elect, which makes the highest live id     *)
(*   leader in a new epoch at every live node at once, when the leader has *)
(*   stopped or a higher node has joined; or in the same epoch again when  *)
(*   no live node leads, as the real election can (FormalChat.tla,         *)
(*   MCFormalChatTwoLeaders3: a stopped leader's round finished again by   *)
(*   the survivors).  FormalChat.tla (LCR.tla,                             *)
(*   FailureDetector.tla) specifies the real, message-passing protocols;   *)
(*   this module assumes the outcome they guarantee on a stable ring.      *)
(* - Which rooms a node's clients are in is a constant, Asks: node i may   *)
(*   ask for room r at any time when <<i, r>> \in Asks.  The safety models *)
(*   let every node ask for every room.                                    *)
(* - msgs is a set: equal messages in flight are one message.  A message   *)
(*   to a node that has stopped is dropped by the network at once.         *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets, Sequences

CONSTANTS
    Node,        \* the node ids, a finite set of positive naturals
    RoomOrder,   \* the rooms, as a tuple of strings in the order F# iterates a
                 \* Map<RoomName, _> (ordinal string order): ReassignRooms moves
                 \* rooms one by one in this order
    Asks,        \* the pairs <<i, r>> such that node i may ask for room r (some client
                 \* of i is in r): the environment's choice, Node \X Room for all
    MaxEpoch,    \* model bound: Elect is disabled at this epoch
    MaxCrashes,  \* model bound: at most this many nodes crash
    Joining,     \* the nodes that start later and join the running cluster (Join)
    Lossy        \* TRUE: the network may also lose a message in flight

Room == {RoomOrder[k] : k \in 1..Len(RoomOrder)}

NoLeader == 0

ASSUME /\ Node \subseteq Nat \ {NoLeader} /\ Node # {}
       /\ RoomOrder \in Seq(STRING) /\ Cardinality(Room) = Len(RoomOrder)
       /\ Asks \subseteq Node \X Room
       /\ Joining \subseteq Node /\ Joining # Node
       /\ MaxEpoch \in Nat /\ MaxCrashes \in Nat
       /\ Lossy \in BOOLEAN

VARIABLES
    alive,       \* alive[i]: the environment's truth, never read by node i itself
    view,        \* view[i]: the nodes i believes live, i included (F#: Coordination.View);
                 \* {} while i has not started (a node of Joining before its Join)
    leader,      \* leader[i]: the leader i follows, 0 for none (F#: Coordination.Leader)
    epoch,       \* epoch[i]: i's election epoch (F#: Coordination.Epoch)
    placements,  \* placements[i]: a function from the rooms i knows a placement of to
                 \* their assignment [owner, epoch, version] (F#: NodeState.Placements)
    msgs         \* placement messages in flight: "place" requests and "placed" announcements

vars == <<alive, view, leader, epoch, placements, msgs>>
environmentVars == <<alive, view, leader, epoch>>

Max(S) == CHOOSE x \in S : \A y \in S : y <= x

Live == {i \in Node : alive[i]}
Absent(n) == ~alive[n] /\ view[n] = {}     \* not started yet
Crashed == {n \in Node : ~alive[n] /\ view[n] # {}}

\* F#: Assignment without LastSeq.  leader is the node that made it: two nodes can win one
\* epoch (Elect), and the leader's id breaks the tie between their assignments (Newer).
Assignment == [owner : Node, epoch : Nat, leader : Node, version : Nat \ {0}]

\* F#: PeerMessage.PlacementRequested(room, requester), sent to the leader.
PlaceMessage(to, r, requester) ==
    [type |-> "place", to |-> to, room |-> r, requester |-> requester]

\* F#: PeerMessage.RoomAssigned(room, placement).
PlacedMessage(to, r, a) ==
    [type |-> "placed", to |-> to, room |-> r, assignment |-> a]

Message ==
    [type : {"place"}, to : Node, room : Room, requester : Node]
        \cup [type : {"placed"}, to : Node, room : Room, assignment : Assignment]

TypeOK ==
    /\ alive \in [Node -> BOOLEAN]
    /\ view \in [Node -> SUBSET Node]
    /\ \A i \in Node : view[i] = {} \/ i \in view[i]
    /\ leader \in [Node -> Node \cup {NoLeader}]
    /\ epoch \in [Node -> 0..MaxEpoch]
    /\ \A i \in Node : /\ DOMAIN placements[i] \subseteq Room
                       /\ \A r \in DOMAIN placements[i] : placements[i][r] \in Assignment
    /\ msgs \subseteq Message

Init ==
    /\ alive = [i \in Node |-> i \notin Joining]
    /\ view = [i \in Node |-> IF i \in Joining THEN {} ELSE Node \ Joining]
    /\ leader = [i \in Node |-> NoLeader]
    /\ epoch = [i \in Node |-> 0]
    /\ placements = [i \in Node |-> [r \in {} |-> [owner |-> NoLeader, epoch |-> 0, leader |-> NoLeader, version |-> 0]]]
    /\ msgs = {}

-----------------------------------------------------------------------------
(* Helpers: the F# functions of the same names. *)

\* F#: Placement.roomsOwned.
RoomsOwned(p, n) == Cardinality({r \in DOMAIN p : p[r].owner = n})

\* F#: Placement.leastLoaded with no clients anywhere: the node of view V owning
\* the fewest rooms in p, then the lowest id.
LeastLoaded(p, V) ==
    CHOOSE n \in V : \A o \in V : \/ RoomsOwned(p, n) < RoomsOwned(p, o)
                                  \/ RoomsOwned(p, n) = RoomsOwned(p, o) /\ n <= o

\* F#: Placement.needsPlacement.  Nobody owns r, or its owner has left the view V.
\* (IF, not \/: in an action TLC evaluates every disjunct, and p[r] may not exist.)
NeedsPlacement(r, p, V) == IF r \in DOMAIN p THEN p[r].owner \notin V ELSE TRUE

\* F#: Placement.isNewer.  Assignments are ordered by epoch, then version, then the leader
\* that made them.  Two leaders of one epoch (Elect may reuse an epoch, as the real election
\* can) may each make an assignment of a room with the same version: the higher leader's
\* wins everywhere, so every node ends with the same one.  (The leader after the version,
\* not before it: a later leader of the epoch may have a lower id, and its re-placement of
\* a room the first one placed must still win.)
Newer(a, b) ==
    \/ a.epoch > b.epoch
    \/ a.epoch = b.epoch /\ a.version > b.version
    \/ a.epoch = b.epoch /\ a.version = b.version /\ a.leader > b.leader

\* F#: Map.add.
Place(p, r, a) == [x \in DOMAIN p \cup {r} |-> IF x = r THEN a ELSE p[x]]

IsLeader(i) == leader[i] = i

\* The assignment leader l makes for room r, given its placements p so far.
NewAssignment(l, r, p) ==
    [owner |-> LeastLoaded(p, view[l]),
     epoch |-> epoch[l],
     leader |-> l,
     version |-> IF r \in DOMAIN p THEN p[r].version + 1 ELSE 1]

\* F#: the private announce: r's placement to every node of l's view but l.
Announce(l, r, a) == {PlacedMessage(j, r, a) : j \in view[l] \ {l}}

\* The network: a message to a node that has stopped is lost at once (it could never be
\* received), so msgs holds only messages that may still be delivered (as in LCR.tla).
Deliverable(S) == {m \in S : alive[m.to]}

-----------------------------------------------------------------------------
(* Node actions: one F# function each. *)

\* F#: Placement.requestRoom.  A node that knows a leader asks it to place a room that
\* needs an owner (in F#, a room some local client is in or posts to).  The leader may
\* be the node itself.
RequestRoom(i, r) ==
    /\ alive[i]
    /\ leader[i] # NoLeader
    /\ NeedsPlacement(r, placements[i], view[i])
    /\ msgs' = msgs \cup Deliverable({PlaceMessage(leader[i], r, i)})
    /\ UNCHANGED <<environmentVars, placements>>

\* F#: Placement.assignRoom.  A node receives a request.  Not the leader: it drops it.
\* The leader places a room that needs an owner, on the least-loaded node of its view,
\* takes the placement itself at once and announces it to every other node of its view;
\* a room already on a live owner is only re-announced to the node that asked.
AssignRoom(l, m) ==
    /\ m.type = "place" /\ m.to = l /\ alive[l]
    /\ LET r == m.room
           p == placements[l]
           a == NewAssignment(l, r, p)
       IN  IF IsLeader(l) /\ NeedsPlacement(r, p, view[l])
           THEN /\ placements' = [placements EXCEPT ![l] = Place(p, r, a)]
                /\ msgs' = (msgs \ {m}) \cup Deliverable(Announce(l, r, a))
           ELSE /\ msgs' = (msgs \ {m}) \cup
                              IF IsLeader(l) /\ m.requester # l
                              THEN Deliverable({PlacedMessage(m.requester, r, p[r])})
                              ELSE {}
                /\ UNCHANGED placements
    /\ UNCHANGED environmentVars

\* F#: Placement.recvAssignment.  A newer assignment replaces the one this node has;
\* any other is ignored, so a late message never moves a room back.
RecvAssignment(i, m) ==
    /\ m.type = "placed" /\ m.to = i /\ alive[i]
    /\ msgs' = msgs \ {m}
    /\ placements' =
          IF m.room \notin DOMAIN placements[i] THEN [placements EXCEPT ![i] = Place(@, m.room, m.assignment)]
          ELSE IF Newer(m.assignment, placements[i][m.room])
          THEN [placements EXCEPT ![i] = Place(@, m.room, m.assignment)]
          ELSE placements
    /\ UNCHANGED environmentVars

\* F#: Placement.reassignRooms.  The leader moves every room whose owner has left its view,
\* one by one in RoomOrder, so each move sees the load of the earlier ones, and announces
\* each new placement.
RECURSIVE ReassignFrom(_, _, _)
ReassignFrom(l, p, k) ==
    IF k > Len(RoomOrder) THEN p
    ELSE LET r == RoomOrder[k]
         IN  ReassignFrom(l,
                          IF r \in DOMAIN p /\ NeedsPlacement(r, p, view[l])
                          THEN Place(p, r, NewAssignment(l, r, p))
                          ELSE p,
                          k + 1)

Departed(l) == {r \in DOMAIN placements[l] : NeedsPlacement(r, placements[l], view[l])}

ReassignRooms(l) ==
    /\ alive[l]
    /\ IsLeader(l)
    /\ Departed(l) # {}
    /\ LET p == ReassignFrom(l, placements[l], 1)
       IN  /\ placements' = [placements EXCEPT ![l] = p]
           /\ msgs' = msgs \cup Deliverable(UNION {Announce(l, r, p[r]) : r \in Departed(l)})
    /\ UNCHANGED environmentVars

-----------------------------------------------------------------------------
(* Environment actions: the failure detector, the election and the network,       *)
(* specified for real in FormalChat.tla; no counterpart in Placement.fs.          *)

\* Model bound: at most MaxCrashes nodes stop, and at least one node stays alive.
\* Crash-stop: what was in flight to the node is gone.
Crash(n) ==
    /\ alive[n]
    /\ Cardinality(Crashed) < MaxCrashes
    /\ Cardinality(Live) > 1
    /\ alive' = [alive EXCEPT ![n] = FALSE]
    /\ msgs' = {m \in msgs : m.to # n}
    /\ UNCHANGED <<view, leader, epoch, placements>>

\* The failure detector of node i suspects n.  Accuracy is assumed (FailureDetector.tla
\* proves it for the synchronous model): only a node that has stopped is suspected.
Suspect(i, n) ==
    /\ alive[i] /\ ~alive[n] /\ n \in view[i]
    /\ view' = [view EXCEPT ![i] = @ \ {n}]
    /\ UNCHANGED <<alive, leader, epoch, placements, msgs>>

\* A node of Joining starts and joins the running cluster.  Discovery is one step: every
\* live node adds it to its view, it takes the live nodes as its view and the leader and
\* epoch they follow (heartbeats carry both), and every live node sends it the placements
\* it knows (F#: Node.introduceTo, when a node appears).  A crashed node never rejoins.
Join(n) ==
    /\ Absent(n)
    /\ alive' = [alive EXCEPT ![n] = TRUE]
    /\ view' = [i \in Node |-> IF i = n THEN Live \cup {n}
                               ELSE IF alive[i] THEN view[i] \cup {n} ELSE view[i]]
    /\ leader' = [leader EXCEPT ![n] = leader[Max(Live)]]
    /\ epoch' = [epoch EXCEPT ![n] = epoch[Max(Live)]]
    /\ msgs' = msgs \cup UNION {{PlacedMessage(n, r, placements[i][r]) : r \in DOMAIN placements[i]} : i \in Live}
    /\ UNCHANGED placements

\* The election, as one step: when some live node follows no leader, a stopped one or one
\* below the highest live id (a higher node has joined), the highest live id becomes leader
\* in the next epoch, and every live node adopts it at once.  Or in the current epoch again,
\* when no live node leads (the leader of that epoch has stopped): LCR can finish a stopped
\* leader's round a second time among the survivors, so two nodes win one epoch
\* (MCFormalChatTwoLeaders3, spec/README.md).  Two live leaders of one epoch never occur
\* (FormalChat's UniqueLiveLeaderPerEpoch), hence the guard.  The real LCR round (LCR.tla)
\* takes many steps, during which views and leaders differ between nodes; this module does
\* not model those intermediate states.
Elect ==
    /\ \E i \in Live : leader[i] # Max(Live)
    /\ LET last == Max({epoch[i] : i \in Live})
       IN  \E next \in {last, last + 1} :
              /\ 1 <= next /\ next <= MaxEpoch
              /\ next = last => \A i \in Live : ~IsLeader(i)
              /\ epoch' = [i \in Node |-> IF alive[i] THEN next ELSE epoch[i]]
              /\ leader' = [i \in Node |-> IF alive[i] THEN Max(Live) ELSE leader[i]]
    /\ UNCHANGED <<alive, view, placements, msgs>>

\* Lossy model only: the network drops a message in flight.
LoseMessage(m) ==
    /\ Lossy
    /\ msgs' = msgs \ {m}
    /\ UNCHANGED <<environmentVars, placements>>

\* Each disjunct on a line of its own: TLC names a step of an action whose message
\* parameter ranges over msgs by the line of Next it comes from (see Placement.md).
Next ==
    \/ \E ask \in Asks : RequestRoom(ask[1], ask[2])
    \/ \E l \in Node : \E m \in msgs : AssignRoom(l, m)
    \/ \E i \in Node : \E m \in msgs : RecvAssignment(i, m)
    \/ \E l \in Node : ReassignRooms(l)
    \/ \E n \in Node : Crash(n)
    \/ \E i, n \in Node : Suspect(i, n)
    \/ \E n \in Node : Join(n)
    \/ Elect
    \/ \E m \in msgs : LoseMessage(m)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Properties (spec/Placement.md lists each with a sentence of English). *)

\* No node's assignment for a room ever moves to an older (epoch, version), and a
\* node never forgets a room it knows a placement of.
AssignmentsOnlyGrow ==
    [][\A i \in Node, r \in Room :
          r \in DOMAIN placements[i] =>
              /\ r \in DOMAIN placements'[i]
              /\ ~Newer(placements[i][r], placements'[i][r])]_vars

\* Every assignment anywhere (held by a node or in flight), with its room.
AssignmentsNow ==
    UNION {{<<r, placements[i][r]>> : r \in DOMAIN placements[i]} : i \in Node}
        \cup {<<m.room, m.assignment>> : m \in {x \in msgs : x.type = "placed"}}

\* Two assignments of one room by one leader with the same epoch and version name the same
\* owner: a leader never makes two different assignments with one (epoch, version).
OneOwnerPerVersion ==
    \A x, y \in AssignmentsNow :
        (x[1] = y[1] /\ x[2].epoch = y[2].epoch /\ x[2].leader = y[2].leader
                    /\ x[2].version = y[2].version)
            => x[2].owner = y[2].owner

\* Any two different assignments of one room, anywhere, are ordered by Newer: every node
\* that sees both keeps the same one, so two live nodes never keep different owners of a
\* room for good.  (Without the leader in Newer, two leaders of one epoch break this.)
AssignmentsOrdered ==
    \A x, y \in AssignmentsNow :
        (x[1] = y[1] /\ x[2] # y[2]) => Newer(x[2], y[2]) \/ Newer(y[2], x[2])

\* The rooms whose assignment at node l changes in a step.
Reassigned(l) ==
    {r \in DOMAIN placements'[l] :
        r \notin DOMAIN placements[l] \/ placements'[l][r] # placements[l][r]}

\* When the leader assigns a room (AssignRoom, ReassignRooms), the owner is in its view.
LeaderPlacesOnLiveNodes ==
    [][\A l \in Node :
          ((\E m \in msgs : AssignRoom(l, m)) \/ ReassignRooms(l))
              => \A r \in Reassigned(l) : placements'[l][r].owner \in view[l]]_vars

\* Only the leader makes assignments: a node that takes an assignment made by itself (the
\* assignment's leader) is the leader.  (RecvAssignment never gives a node one of its own:
\* it made them, and holds them or newer ones.)
OnlyTheLeaderAssigns ==
    [][\A i \in Node :
          \A r \in Reassigned(i) : placements'[i][r].leader = i => IsLeader(i)]_vars

\* Room r has one assignment at every node of S, and its owner is live.
PlacedAt(r, S) ==
    \E i \in S :
        /\ r \in DOMAIN placements[i]
        /\ placements[i][r].owner \in Live
        /\ \A j \in S : r \in DOMAIN placements[j] /\ placements[j][r] = placements[i][r]

Placed(r) == PlacedAt(r, Live)
=============================================================================
