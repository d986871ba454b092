--------------------------- MODULE MCPlacementTraces ---------------------------
(***************************************************************************)
(* Trace generator for the conformance tests (ci/tlc.sh --fixtures         *)
(* placement): run in TLC simulation mode, the invariant WriteBehaviour   *)
(* writes every behaviour, when it ends, as one NDJSON file under          *)
(* TraceDirectory (relative to TLC's working directory), one state per     *)
(* line.  TLC adds an "_action" field (the action's name) to each state.   *)
(* The state graphs (-dump dot) are made with this module too, so that     *)
(* every fixture comes with the values of its constants, constants.json.   *)
(***************************************************************************)
EXTENDS MCPlacement, TLC, TLCExt, Json

CONSTANT TraceDirectory

\* Four nodes, three rooms: two crashes can leave two rooms on one departed owner.
ThreeRooms == <<"#a", "#b", "#c">>

\* The constants as values (a .cfg file names some of them by definition), for the harness.
ASSUME ConstantsWritten ==
    JsonSerialize(TraceDirectory \o "/constants.json",
                  <<[Node |-> Node, RoomOrder |-> RoomOrder, Asks |-> Asks, MaxEpoch |-> MaxEpoch,
                     MaxCrashes |-> MaxCrashes, Joining |-> Joining, Lossy |-> Lossy]>>)

WriteBehaviour ==
    (TLCGet("level") = TLCGet("config").depth + 1 \/ ~ENABLED Next) =>
        ndJsonSerialize(TraceDirectory \o "/behaviour_" \o ToString(TLCGet("stats").traces) \o ".ndjson",
                        Trace)
=============================================================================
