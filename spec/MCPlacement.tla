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

\* The weaker form that holds when nodes join: every room is eventually placed alike, on a
\* live owner, at the live nodes whose clients are in it.  (A node that joined before a
\* placement reached the node introducing it, and whose clients are not in the room, may
\* never learn it; see Placement.md.)
Askers(r) == {i \in Live : <<i, r>> \in Asks}
EventualPlacementAtAskers == <>[](\A r \in Room : Askers(r) # {} => PlacedAt(r, Askers(r)))

\* A room whose owner is live never moves to another owner, at any node.  DOES NOT HOLD
\* (MCPlacement3NoMove.cfg): a new leader that has not yet received the announcement of a
\* room treats the room as new when asked for it, and its newer epoch wins everywhere.
NoNeedlessMove ==
    [][\A i \in Node, r \in Room :
          (r \in DOMAIN placements[i] /\ alive[placements[i][r].owner]) =>
              placements'[i][r].owner = placements[i][r].owner]_vars

\* The model bound MaxEpoch never stops an election: one at the start, and at most one
\* per crash and per join.
ASSUME EpochBoundSuffices == MaxEpoch >= 1 + MaxCrashes + Cardinality(Joining)
=============================================================================
