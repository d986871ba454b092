------------------------------ MODULE MCPlacement ------------------------------
(***************************************************************************)
(* Model-checking wrapper of Placement.tla: the constant values the        *)
(* MCPlacement*.cfg models use (a .cfg file cannot write a tuple) and      *)
(* fairness for the liveness property.  Nothing here is mirrored by F#.    *)
(***************************************************************************)
EXTENDS Placement

OneRoom == <<"#a">>
TwoRooms == <<"#a", "#b">>
EveryAsk == Node \X Room
\* Node 1's clients are in #a, node 2's in #b; node 3 (the first leader) asks for nothing.
TwoAsks == {<<1, "#a">>, <<2, "#b">>}

\* Weak fairness on every node action, and on the environment's failure detector and
\* election; none on crashes or losses.  A node keeps asking for the rooms its clients
\* are in while they need an owner (F#: Node.retryPlacements on every tick).
Fairness ==
    /\ \A ask \in Asks : WF_vars(RequestRoom(ask[1], ask[2]))
    /\ \A i \in Node :
          /\ WF_vars(\E m \in msgs : AssignRoom(i, m))
          /\ WF_vars(\E m \in msgs : RecvAssignment(i, m))
          /\ WF_vars(ReassignRooms(i))
          /\ \A n \in Node : WF_vars(Suspect(i, n))
    /\ WF_vars(Elect)

LiveSpec == Spec /\ Fairness

\* A room matters to the live nodes: a live node's clients are in it, or a live node
\* knows a placement of it.
Wanted(r) == \E i \in Live : <<i, r>> \in Asks \/ r \in DOMAIN placements[i]

\* Eventual placement: from some point on, every room that matters has one assignment
\* at every live node, with a live owner.  Crashes stop (MaxCrashes).
EventualPlacement == <>[](\A r \in Room : Wanted(r) => Placed(r))

\* The model bound MaxEpoch never stops an election: at most MaxCrashes + 1 are needed.
ASSUME EpochBoundSuffices == MaxEpoch >= MaxCrashes + 1
=============================================================================
