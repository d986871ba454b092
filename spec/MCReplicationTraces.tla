------------------------- MODULE MCReplicationTraces -------------------------
(***************************************************************************)
(* Fixture generator for the replication conformance tests                 *)
(* (ci/tlc.sh --fixtures replication): in TLC simulation mode the         *)
(* invariant WriteBehaviour writes every behaviour, when it ends, as one   *)
(* NDJSON file under TraceDirectory (relative to TLC's working directory), *)
(* one state per line, with TLC's "_action" field.  The state graphs       *)
(* (-dump dot) are made with this module too, so that every fixture comes  *)
(* with the values of its constants, constants.json.                       *)
(***************************************************************************)
EXTENDS MCReplication, TLC, TLCExt, Json

CONSTANT TraceDirectory

ASSUME ConstantsWritten ==
    JsonSerialize(TraceDirectory \o "/constants.json",
                  <<[Node |-> Node, Msg |-> Msg, MaxCrashes |-> MaxCrashes, Start |-> Start,
                     InitialOwner |-> InitialOwner, MaxPartitions |-> MaxPartitions, Window |-> Window]>>)

WriteBehaviour ==
    (TLCGet("level") = TLCGet("config").depth + 1 \/ ~ENABLED Next) =>
        ndJsonSerialize(TraceDirectory \o "/behaviour_" \o ToString(TLCGet("stats").traces) \o ".ndjson",
                        Trace)
=============================================================================
