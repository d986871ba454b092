--------------------------- MODULE MCFormalChatLive ---------------------------
(***************************************************************************)
(* Model-checking wrapper of FormalChat.tla for recovery after a leader    *)
(* dies: a start from a cluster whose first election is over, and the      *)
(* witnesses (deliberately false invariants that TLC must violate) showing *)
(* that the models reach the states the properties are about.  Nothing     *)
(* here is mirrored by F#.                                                 *)
(***************************************************************************)
EXTENDS FormalChat

\* The cluster formed and the first election over: everybody follows the highest id in
\* epoch 1, nothing in flight (a state Init reaches).  From here a model spends its states
\* on what follows a leader's death rather than on the first election.
ElectedInit ==
    /\ alive = [i \in Node |-> TRUE]
    /\ view = [i \in Node |-> Node]
    /\ age = [i \in Node |-> [j \in Node \ {i} |-> 0]]
    /\ epoch = [i \in Node |-> 1]
    /\ participant = [i \in Node |-> FALSE]
    /\ leader = [i \in Node |-> Max(Node)]
    /\ msgs = {}

ElectedSpec == ElectedInit /\ [][Next]_vars /\ Fairness

\* Witness: the highest id has stopped, and every live node follows a new leader, the
\* highest live id (an election after a leader's death, completed).  TLC must violate it.
NoRecoveryAfterLeaderDeath ==
    ~(~alive[Max(Node)] /\ \A i \in Live : leader[i] = Max(Live))
=============================================================================
