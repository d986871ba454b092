-------------------------------- MODULE FailureDetector --------------------------------
(***************************************************************************)
(* Heartbeat failure detection on a discrete clock, alone.                 *)
(*                                                                         *)
(* One Tick(i) is one heartbeat interval of node i: every live node sends  *)
(* a heartbeat per interval, so a peer whose age reaches K has missed K    *)
(* heartbeats and is suspected, i.e. removed from view[i] (and so from the *)
(* ring).  F# counterpart: Protocol.FSharp/FailureDetector.fs.             *)
(*                                                                         *)
(* Heartbeats are not in msgs: delivering one is modelled as an atomic     *)
(* read of the sender's current state (here only its liveness; in          *)
(* FormalChat.tla also its epoch and leader).  Timing is a parameter:      *)
(*   Synchronous = TRUE : a live peer's heartbeat always arrives within D  *)
(*                        intervals (D < K), and no message is lost;       *)
(*   Synchronous = FALSE: unbounded delay, heartbeats and messages may be  *)
(*                        lost (LoseMessage).                              *)
(* The only messages here are the "leave" announcements of a graceful      *)
(* shutdown; FormalChat.tla adds the election messages to the same set.    *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Node,         \* the node ids, a finite set of naturals
    K,            \* a peer is suspected after K missed heartbeats
    D,            \* synchronous model: a live peer's heartbeat arrives within D intervals
    Synchronous,  \* TRUE: bounded delay, no loss; FALSE: unbounded delay, loss
    MaxCrashes    \* model bound: at most this many nodes crash or leave

ASSUME /\ Node \subseteq Nat /\ Node # {}
       /\ K \in Nat \ {0} /\ D \in Nat /\ D < K
       /\ Synchronous \in BOOLEAN
       /\ MaxCrashes \in Nat

VARIABLES
    alive,  \* alive[i]: the environment's truth, never read by node i itself
    view,   \* view[i]: the nodes i believes live, i included (F#: Coordination.View)
    age,    \* age[i][j]: intervals since i last heard j, for j in view[i] \ {i} (F#: Age)
    msgs    \* ring messages in flight (a set: equal messages are one message)

fdVars == <<alive, view, age, msgs>>

\* One shape for every ring message, so that msgs is a set of records of one kind.
Message == [type : {"election", "leader", "leave"}, to : Node, id : Node, epoch : Nat]

LeaveMessage(from, to) == [type |-> "leave", to |-> to, id |-> from, epoch |-> 0]

Peers(i) == view[i] \ {i}
Live == {i \in Node : alive[i]}

FDTypeOK ==
    /\ alive \in [Node -> BOOLEAN]
    /\ \A i \in Node : /\ view[i] \subseteq Node
                       /\ i \in view[i]
                       /\ age[i] \in [Peers(i) -> 0..K]
    /\ msgs \subseteq Message

FDInit ==
    /\ alive = [i \in Node |-> TRUE]
    /\ view = [i \in Node |-> {i}]
    /\ age = [i \in Node |-> [j \in {} |-> 0]]
    /\ msgs = {}

-----------------------------------------------------------------------------
(* Node actions. *)

\* The synchronous model's timing assumption, as a guard on the clock: i's next
\* interval cannot end while a live peer's heartbeat is more than D intervals late.
HeartbeatsOnTime(i) == \A j \in Peers(i) : alive[j] => age[i][j] < D

\* F#: FailureDetector.tick.  Ages every peer; suspects those that reach K.
\* (FormalChat.Tick also abandons a running election round when one is suspected.)
Suspects(i) == {j \in Peers(i) : age[i][j] + 1 >= K}

Tick(i) ==
    /\ alive[i]
    /\ Synchronous => HeartbeatsOnTime(i)
    /\ view' = [view EXCEPT ![i] = @ \ Suspects(i)]
    /\ age' = [age EXCEPT ![i] = [j \in Peers(i) \ Suspects(i) |-> age[i][j] + 1]]
    /\ UNCHANGED <<alive, msgs>>

\* F#: FailureDetector.recvHeartbeat.  A heartbeat of j proves j is alive: j joins the
\* view if it was unknown, and its age restarts at 0.
RecvHeartbeat(i, j) ==
    /\ alive[i] /\ alive[j] /\ i # j
    /\ view' = [view EXCEPT ![i] = @ \cup {j}]
    /\ age' = [age EXCEPT ![i] = [p \in Peers(i) \cup {j} |-> IF p = j THEN 0 ELSE age[i][p]]]
    /\ UNCHANGED <<alive, msgs>>

\* F#: FailureDetector.recvLeave.  A peer that left on purpose is removed at once.
LeaveMatters(i, m) == m.id # i /\ m.id \in view[i]

RecvLeave(i, m) ==
    /\ m \in msgs /\ m.type = "leave" /\ m.to = i /\ alive[i]
    /\ msgs' = msgs \ {m}
    /\ view' = [view EXCEPT ![i] = IF LeaveMatters(i, m) THEN @ \ {m.id} ELSE @]
    /\ age' = [age EXCEPT ![i] = IF LeaveMatters(i, m)
                                   THEN [p \in Peers(i) \ {m.id} |-> age[i][p]]
                                   ELSE @]
    /\ UNCHANGED alive

-----------------------------------------------------------------------------
(* Environment actions: the C# shell and the world, no F# counterpart. *)

\* Model bound: at most MaxCrashes nodes stop, and at least one node stays alive.
CanStop(i) ==
    /\ alive[i]
    /\ Cardinality(Node \ Live) < MaxCrashes
    /\ Cardinality(Live) > 1

\* Crash-stop: the node stops and what was in flight to it is gone.
Crash(i) ==
    /\ CanStop(i)
    /\ alive' = [alive EXCEPT ![i] = FALSE]
    /\ msgs' = {m \in msgs : m.to # i}
    /\ UNCHANGED <<view, age>>

\* Graceful shutdown: the node stops after telling every peer it knows (the network
\* drops at once what is sent to a stopped node, as in LCR.tla).
Leave(i) ==
    /\ CanStop(i)
    /\ alive' = [alive EXCEPT ![i] = FALSE]
    /\ msgs' = {m \in msgs : m.to # i} \cup {LeaveMessage(i, j) : j \in {p \in Peers(i) : alive[p]}}
    /\ UNCHANGED <<view, age>>

\* Lossy model only: the network drops a ring message.
LoseMessage(m) ==
    /\ ~Synchronous
    /\ m \in msgs
    /\ msgs' = msgs \ {m}
    /\ UNCHANGED <<alive, view, age>>

FDNext ==
    \/ \E i \in Node : \/ Tick(i)
                       \/ \E j \in Node : RecvHeartbeat(i, j)
                       \/ \E m \in msgs : RecvLeave(i, m)
                       \/ Crash(i)
                       \/ Leave(i)
    \/ \E m \in msgs : LoseMessage(m)

FDFairness ==
    \A i \in Node : /\ WF_fdVars(Tick(i))
                    /\ \A j \in Node : WF_fdVars(RecvHeartbeat(i, j))
                    /\ WF_fdVars(\E m \in msgs : RecvLeave(i, m))

FDSpec == FDInit /\ [][FDNext]_fdVars /\ FDFairness

-----------------------------------------------------------------------------
(* Properties. *)

\* Accuracy: a live node is never suspected, i.e. once i has heard of a live j,
\* j stays in view[i] as long as both are alive.  Holds in the synchronous model only.
Accuracy ==
    [][\A i, j \in Node :
          (alive'[i] /\ alive'[j] /\ j \in view[i]) => j \in view'[i]]_fdVars

\* Completeness: a node that has stopped is eventually out of every live node's view.
Completeness ==
    \A i, j \in Node : ~alive[j] ~> (~alive[i] \/ j \notin view[i])

\* Discovery: in the synchronous model, live nodes eventually know each other.
EventuallyKnown ==
    \A i, j \in Node : <>[](alive[i] /\ alive[j] => j \in view[i])
=============================================================================
