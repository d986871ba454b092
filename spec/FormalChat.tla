------------------------------- MODULE FormalChat -------------------------------
(***************************************************************************)
(* The coordination protocol of a FormalChat node: heartbeat failure       *)
(* detection (FailureDetector.tla) composed with LCR election on the ring  *)
(* of the nodes each node believes live (LCR.tla).                         *)
(*                                                                         *)
(* This is the module Protocol.FSharp mirrors: every node action below is  *)
(* the F# function of the same name in lowerCamelCase, with the same       *)
(* parameters and guard, and the conformance tests replay TLC's behaviours *)
(* and state graphs of this module through those functions.               *)
(*                                                                         *)
(*   Tick(i)             FailureDetector.tick K                            *)
(*   RecvHeartbeat(i, j) FailureDetector.recvHeartbeat j epoch[j] leader[j]*)
(*   RecvLeave(i, m)     FailureDetector.recvLeave m.id                    *)
(*   StartElection(i)    Election.startElection                            *)
(*   RecvElection(i, m)  Election.recvElection                             *)
(*   RecvLeader(i, m)    Election.recvLeader                               *)
(*   Crash(i), Leave(i), LoseMessage(m): the environment (C# shell, world) *)
(*                                                                         *)
(* Composition is by conjunction: each action is the failure-detector or   *)
(* election action of the sub-module, plus what it does to the other half *)
(* of the node's state (a view change abandons the running round, a        *)
(* heartbeat can carry a newer leader).                                    *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Node, K, D, Synchronous, MaxCrashes,   \* as in FailureDetector.tla
    MaxEpoch,      \* model bound: StartElection is disabled at this epoch
    StartTogether  \* TRUE: the cluster starts formed (every view = Node);
                   \* FALSE: every node starts alone, as Coordination.init, and
                   \* discovers the others by their heartbeats

ASSUME MaxEpoch \in Nat /\ StartTogether \in BOOLEAN

VARIABLES alive, view, age, epoch, participant, leader, msgs

vars == <<alive, view, age, epoch, participant, leader, msgs>>
electionVars == <<epoch, participant, leader>>

FD == INSTANCE FailureDetector
\* The election message counter belongs to LCR.tla's own Spec only.
Election == INSTANCE LCR WITH electionsSent <- 0

NoLeader == Election!NoLeader
Live == FD!Live
Max(S) == Election!Max(S)
Succ(i) == Election!Succ(i)
LeaderOk(i) == Election!LeaderOk(i)

\* The messages that may ever be in flight.  Next quantifies over these constant sets
\* rather than over msgs (each receive action requires m \in msgs), so that TLC names
\* every step after its action, with the parameters, in traces and state graphs.
MessagesOf(type, to) ==
    [type : {type}, to : to, id : Node, epoch : IF type = "leave" THEN {0} ELSE 1..MaxEpoch]
AnyMessage ==
    UNION {MessagesOf(type, Node) : type \in {"election", "leader", "leave"}}

TypeOK ==
    /\ FD!FDTypeOK
    /\ epoch \in [Node -> 0..MaxEpoch]
    /\ participant \in [Node -> BOOLEAN]
    /\ leader \in [Node -> Node \cup {NoLeader}]
    /\ \A i \in Node : participant[i] => leader[i] = NoLeader
    /\ \A m \in msgs : alive[m.to] /\ m \in AnyMessage

Init ==
    /\ alive = [i \in Node |-> TRUE]
    /\ view = [i \in Node |-> IF StartTogether THEN Node ELSE {i}]
    /\ age = [i \in Node |-> [j \in view[i] \ {i} |-> 0]]
    /\ epoch = [i \in Node |-> 0]
    /\ participant = [i \in Node |-> FALSE]
    /\ leader = [i \in Node |-> NoLeader]
    /\ msgs = {}

-----------------------------------------------------------------------------
(* Node actions: one F# function each. *)

\* A changed view abandons the round in progress, because its ring no longer exists.
Tick(i) ==
    /\ FD!Tick(i)
    /\ participant' = [participant EXCEPT ![i] = @ /\ FD!Suspects(i) = {}]
    /\ UNCHANGED <<epoch, leader>>

\* Heartbeats are not messages in msgs: receiving one reads j's current epoch and leader
\* atomically (see README, "Abstractions").  A heartbeat reporting a leader is news under
\* the rule of RecvLeader (a newer epoch, or this epoch while i knows no leader): that is
\* how a late joiner learns the leader of a round it never saw, and how a node whose
\* round's announcement was lost (sent to a node that had stopped) still learns who won.
Adopts(i, j) ==
    /\ leader[j] # NoLeader
    /\ \/ epoch[j] > epoch[i]
       \/ epoch[j] = epoch[i] /\ leader[i] = NoLeader

RecvHeartbeat(i, j) ==
    /\ FD!RecvHeartbeat(i, j)
    /\ epoch' = [epoch EXCEPT ![i] = IF Adopts(i, j) THEN epoch[j] ELSE @]
    /\ leader' = [leader EXCEPT ![i] = IF Adopts(i, j) THEN leader[j] ELSE @]
    /\ participant' = [participant EXCEPT ![i] =
                          IF Adopts(i, j) THEN FALSE ELSE @ /\ j \in view[i]]

RecvLeave(i, m) ==
    /\ FD!RecvLeave(i, m)
    /\ participant' = [participant EXCEPT ![i] = IF FD!LeaveMatters(i, m) THEN FALSE ELSE @]
    /\ UNCHANGED <<epoch, leader>>

\* MaxEpoch is a bound of the model, not of the protocol (the F# harness applies it too).
StartElection(i) ==
    /\ epoch[i] < MaxEpoch
    /\ Election!StartElection(i)
    /\ UNCHANGED age

RecvElection(i, m) == Election!RecvElection(i, m) /\ UNCHANGED age

RecvLeader(i, m) == Election!RecvLeader(i, m) /\ UNCHANGED age

-----------------------------------------------------------------------------
(* Environment actions: no F# counterpart. *)

Crash(i) == FD!Crash(i) /\ UNCHANGED electionVars
Leave(i) == FD!Leave(i) /\ UNCHANGED electionVars
LoseMessage(m) == FD!LoseMessage(m) /\ UNCHANGED electionVars

Next ==
    \/ \E i \in Node :
          \/ Tick(i)
          \/ \E j \in Node : RecvHeartbeat(i, j)
          \/ StartElection(i)
          \/ \E m \in MessagesOf("election", {i}) : RecvElection(i, m)
          \/ \E m \in MessagesOf("leader", {i}) : RecvLeader(i, m)
          \/ \E m \in MessagesOf("leave", {i}) : RecvLeave(i, m)
          \/ Crash(i)
          \/ Leave(i)
    \/ \E m \in AnyMessage : LoseMessage(m)

\* Weak fairness on every node action, and on the receipt of each message (so that no
\* message in flight is overtaken forever); none on crashes, leaves or losses.
Fairness ==
    \A i \in Node :
        /\ WF_vars(Tick(i))
        /\ \A j \in Node : WF_vars(RecvHeartbeat(i, j))
        /\ WF_vars(StartElection(i))
        /\ \A m \in MessagesOf("election", {i}) : WF_vars(RecvElection(i, m))
        /\ \A m \in MessagesOf("leader", {i}) : WF_vars(RecvLeader(i, m))
        /\ \A m \in MessagesOf("leave", {i}) : WF_vars(RecvLeave(i, m))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
(* Properties (spec/README.md lists each with a sentence of English). *)

\* Leadership safety, strong form: no two nodes are leader in the same epoch.
\* FAILS when views change (README: a stopped leader's round is finished again by the
\* survivors in the same epoch); holds on a stable ring (LCR.tla, UniqueLeader).
UniqueLeaderPerEpoch ==
    \A i, j \in Node :
        (leader[i] = i /\ leader[j] = j /\ epoch[i] = epoch[j]) => i = j

\* The same among the nodes that are still alive.
UniqueLiveLeaderPerEpoch ==
    \A i, j \in Live :
        (leader[i] = i /\ leader[j] = j /\ epoch[i] = epoch[j]) => i = j

\* Leadership safety, epochs: a node's epoch never goes back, and the leader it follows
\* always comes with an epoch at least as new as any it has seen.
EpochMonotone == [][\A i \in Node : epoch'[i] >= epoch[i]]_vars

\* Failure-detector accuracy, as in FailureDetector.tla: a live node is never suspected.
Accuracy ==
    [][\A i, j \in Node :
          (alive'[i] /\ alive'[j] /\ j \in view[i]) => j \in view'[i]]_vars

\* Failure-detector completeness, as in FailureDetector.tla.
Completeness ==
    \A i, j \in Node : ~alive[j] ~> (~alive[i] \/ j \notin view[i])

\* Eventual leadership: once crashes stop, every live node follows the highest live id.
Agreement == \A i \in Live : leader[i] = Max(Live)
EventualLeadership == <>[]Agreement

\* The model bound MaxEpoch cuts a behaviour short when a node needs an election but
\* has used up the epochs; liveness is claimed only for behaviours it does not cut.
BoundBinds ==
    \E i \in Node : alive[i] /\ epoch[i] = MaxEpoch /\ Election!NeedsElection(i)

EventualLeadershipWithinBound == <>[]Agreement \/ <>BoundBinds
=============================================================================
