-------------------------------- MODULE LCR --------------------------------
(***************************************************************************)
(* LeLann-Chang-Roberts leader election with epochs, on the ring that each *)
(* node's view defines.  F# counterpart: Protocol.FSharp/Election.fs.      *)
(*                                                                         *)
(* Candidates travel clockwise (to the next higher id, wrapping); a node   *)
(* forwards a higher candidate, replaces a lower one with itself once per  *)
(* round, and wins when its own id comes back; the winner's announcement   *)
(* then travels once around the ring.  Every message carries the round's  *)
(* epoch, so messages of older rounds are ignored.                         *)
(*                                                                         *)
(* The actions here are the election half of FormalChat.tla, which adds    *)
(* liveness guards and the failure detector.  This module's own Spec runs  *)
(* them on a stable ring (every view = Node, nobody fails) and counts the  *)
(* election messages, for the n(n+1)/2 message bound.                      *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANT Node

VARIABLES
    alive,        \* alive[i]: i has not stopped (nobody stops in this module's Spec)
    view,         \* view[i]: the ring as i knows it (constant in this module's Spec)
    epoch,        \* epoch[i]: the newest round i took part in or heard of (F#: Epoch)
    participant,  \* participant[i]: i sent or forwarded a candidate this round
    leader,       \* leader[i]: the leader i follows, 0 for none (F#: Leader = None)
    msgs,         \* ring messages in flight
    electionsSent \* this module's Spec only: election messages sent so far

NoLeader == 0

ASSUME Node \subseteq Nat \ {NoLeader} /\ Node # {}

Max(S) == CHOOSE x \in S : \A y \in S : y <= x
Min(S) == CHOOSE x \in S : \A y \in S : x <= y

\* F#: Ring.successor.  The next higher id in i's view, wrapping to the lowest.
Succ(i) ==
    LET higher == {j \in view[i] : j > i}
    IN IF higher # {} THEN Min(higher) ELSE Min(view[i])

ElectionMessage(to, candidate, e) ==
    [type |-> "election", to |-> to, id |-> candidate, epoch |-> e]
LeaderMessage(to, l, e) ==
    [type |-> "leader", to |-> to, id |-> l, epoch |-> e]

\* The network: a message to a node that has stopped is lost at once (it could never be
\* received), so msgs holds only messages that may still be delivered.
Deliver(m) == IF alive[m.to] THEN {m} ELSE {}

\* F#: Election.leaderOk.  The leader i follows is the highest id in its view.
LeaderOk(i) == leader[i] = Max(view[i])

\* F#: Election.needsElection.
NeedsElection(i) == ~participant[i] /\ ~LeaderOk(i)

\* F#: Election.startElection.  A new round in the next epoch, i as the candidate.
StartElection(i) ==
    /\ alive[i]
    /\ NeedsElection(i)
    /\ epoch' = [epoch EXCEPT ![i] = @ + 1]
    /\ participant' = [participant EXCEPT ![i] = TRUE]
    /\ leader' = [leader EXCEPT ![i] = NoLeader]
    /\ msgs' = msgs \cup Deliver(ElectionMessage(Succ(i), i, epoch[i] + 1))
    /\ UNCHANGED <<alive, view>>

\* F#: Election.isStaleElection.  An older round, or a round i saw decided.
IsStaleElection(i, m) ==
    \/ m.epoch < epoch[i]
    \/ m.epoch = epoch[i] /\ leader[i] # NoLeader

\* F#: Election.recvElection.
RecvElection(i, m) ==
    /\ m \in msgs /\ m.type = "election" /\ m.to = i /\ alive[i]
    /\ IF IsStaleElection(i, m)
         THEN /\ msgs' = msgs \ {m}
              /\ UNCHANGED <<epoch, participant, leader>>
         ELSE \* A newer round supersedes whatever i was doing.
              LET newer == m.epoch > epoch[i]
                  wasParticipant == IF newer THEN FALSE ELSE participant[i]
                  wasLeader == IF newer THEN NoLeader ELSE leader[i]
                  Forward(candidate) ==
                      msgs' = (msgs \ {m}) \cup Deliver(ElectionMessage(Succ(i), candidate, m.epoch))
                  \* The candidate left i's view: its round cannot come back round, so i stops
                  \* taking part (and may start its own round) instead of forwarding it forever.
                  gone == m.id \notin view[i]
              IN /\ epoch' = [epoch EXCEPT ![i] = m.epoch]
                 /\ CASE gone ->
                           /\ participant' = [participant EXCEPT ![i] = FALSE]
                           /\ leader' = [leader EXCEPT ![i] = wasLeader]
                           /\ msgs' = msgs \ {m}
                      [] ~gone /\ m.id > i ->
                           /\ participant' = [participant EXCEPT ![i] = TRUE]
                           /\ leader' = [leader EXCEPT ![i] = wasLeader]
                           /\ Forward(m.id)
                      [] ~gone /\ m.id < i /\ ~wasParticipant ->
                           /\ participant' = [participant EXCEPT ![i] = TRUE]
                           /\ leader' = [leader EXCEPT ![i] = wasLeader]
                           /\ Forward(i)
                      [] ~gone /\ m.id < i ->
                           /\ participant' = [participant EXCEPT ![i] = wasParticipant]
                           /\ leader' = [leader EXCEPT ![i] = wasLeader]
                           /\ msgs' = msgs \ {m}
                      [] ~gone /\ m.id = i ->
                           /\ participant' = [participant EXCEPT ![i] = FALSE]
                           /\ leader' = [leader EXCEPT ![i] = i]
                           /\ msgs' = (msgs \ {m}) \cup Deliver(LeaderMessage(Succ(i), i, m.epoch))
    /\ UNCHANGED <<alive, view>>

\* F#: Election.recvLeader.  Followers adopt the announced leader and pass it on;
\* the announcement stops when it is back at the leader.
IsNews(i, m) == m.epoch > epoch[i] \/ (m.epoch = epoch[i] /\ leader[i] = NoLeader)

RecvLeader(i, m) ==
    /\ m \in msgs /\ m.type = "leader" /\ m.to = i /\ alive[i]
    /\ IF m.id = i \/ ~IsNews(i, m)
         THEN /\ msgs' = msgs \ {m}
              /\ UNCHANGED <<epoch, participant, leader>>
         ELSE /\ epoch' = [epoch EXCEPT ![i] = m.epoch]
              /\ leader' = [leader EXCEPT ![i] = m.id]
              /\ participant' = [participant EXCEPT ![i] = FALSE]
              /\ msgs' = (msgs \ {m}) \cup Deliver(LeaderMessage(Succ(i), m.id, m.epoch))
    /\ UNCHANGED <<alive, view>>

-----------------------------------------------------------------------------
(* This module's own Spec: one election on a stable ring. *)

lcrVars == <<alive, view, epoch, participant, leader, msgs, electionsSent>>

LCRTypeOK ==
    /\ alive = [i \in Node |-> TRUE]
    /\ view = [i \in Node |-> Node]
    /\ epoch \in [Node -> 0..1]
    /\ participant \in [Node -> BOOLEAN]
    /\ leader \in [Node -> Node \cup {NoLeader}]
    /\ \A m \in msgs : m.type \in {"election", "leader"} /\ m.to \in Node /\ m.id \in Node
    /\ electionsSent \in Nat

LCRInit ==
    /\ alive = [i \in Node |-> TRUE]
    /\ view = [i \in Node |-> Node]
    /\ epoch = [i \in Node |-> 0]
    /\ participant = [i \in Node |-> FALSE]
    /\ leader = [i \in Node |-> NoLeader]
    /\ msgs = {}
    /\ electionsSent = 0

\* Every action sends at most one message, and on a stable ring in one round no message
\* is sent twice, so the new election records in msgs' are exactly the ones sent.
CountElections ==
    electionsSent' = electionsSent + Cardinality({m \in msgs' \ msgs : m.type = "election"})

LCRNext ==
    /\ \E i \in Node : \/ StartElection(i)
                       \/ \E m \in msgs : RecvElection(i, m) \/ RecvLeader(i, m)
    /\ CountElections

LCRFairness ==
    \A i \in Node : /\ WF_lcrVars(StartElection(i) /\ CountElections)
                    /\ WF_lcrVars(\E m \in msgs : RecvElection(i, m) /\ CountElections)
                    /\ WF_lcrVars(\E m \in msgs : RecvLeader(i, m) /\ CountElections)

LCRSpec == LCRInit /\ [][LCRNext]_lcrVars /\ LCRFairness

-----------------------------------------------------------------------------
(* Properties on the stable ring. *)

\* Leadership safety: at most one node ever considers itself leader.
UniqueLeader == \A i, j \in Node : leader[i] = i /\ leader[j] = j => i = j

\* Only the highest id can win.
OnlyMaxWins == \A i \in Node : leader[i] = i => i = Max(Node)

\* Followers follow the winner.
FollowersAgree == \A i \in Node : leader[i] # NoLeader => leader[i] = Max(Node)

\* LCR message bound: one round on a ring of n nodes sends at most n(n+1)/2 election messages.
MessageBound == electionsSent <= (Cardinality(Node) * (Cardinality(Node) + 1)) \div 2

\* The election terminates: eventually everybody follows the highest id, for good.
EventuallyElected == <>[](\A i \in Node : leader[i] = Max(Node))
=============================================================================
