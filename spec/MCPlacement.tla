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

\* The model bound MaxEpoch never stops an election: one at the start and at most one per
\* join need a new epoch; an election after a crash can always reuse the epoch (Elect: the
\* leader is the node that stopped, so no live node leads).  A model with MaxEpoch below
\* 1 + MaxCrashes + Cardinality(Joining) makes every such election reuse the epoch.
ASSUME EpochBoundSuffices == MaxEpoch >= 1 + Cardinality(Joining)

-----------------------------------------------------------------------------
(* Witnesses: deliberately false properties.  TLC must violate each one (the *)
(* expected violations in ci/tlc-models.fsx), which shows that the states    *)
(* the real properties are about are reached in that model.                   *)

\* False when two leaders of one epoch have both placed rooms.
WitnessNoTwoLeadersInOneEpoch ==
    \A x, y \in AssignmentsNow : x[2].epoch = y[2].epoch => x[2].leader = y[2].leader

\* OneOwnerPerVersion before the fix (no leader): false when two leaders of one epoch have
\* made different assignments of one room with the same (epoch, version).
WitnessNoConflictInOneVersion ==
    \A x, y \in AssignmentsNow :
        (x[1] = y[1] /\ x[2].epoch = y[2].epoch /\ x[2].version = y[2].version)
            => x[2].owner = y[2].owner

\* False when a node replaces an assignment by one of the same (epoch, version) from a higher
\* leader: the tie-break of Newer decides a step.
WitnessNoTieBroken ==
    [][\A i \in Node, r \in Room :
          (r \in DOMAIN placements[i] /\ placements'[i][r] # placements[i][r]) =>
              ~(/\ placements'[i][r].epoch = placements[i][r].epoch
                /\ placements'[i][r].version = placements[i][r].version)]_vars

\* False when a request lands on a node that no longer leads (a re-election while the
\* request was in flight), and that node handles it (AssignRoom drops it).
WitnessNoRequestOnFollower ==
    [][\A l \in Node : (\E m \in msgs : m.type = "place" /\ AssignRoom(l, m)) => IsLeader(l)]_vars

\* False when the leader re-places a room whose owner has stopped.
WitnessNoReplacementAfterDeath ==
    [][\A l \in Node, r \in Room :
          (IsLeader(l) /\ r \in DOMAIN placements[l] /\ ~alive[placements[l][r].owner])
              => placements'[l][r] = placements[l][r]]_vars
=============================================================================
