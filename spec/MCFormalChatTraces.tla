-------------------------- MODULE MCFormalChatTraces --------------------------
(***************************************************************************)
(* Trace generator for the conformance tests (ci/tlc.sh): run in TLC      *)
(* simulation mode, the invariant WriteBehaviour writes every behaviour,   *)
(* when it ends, as one NDJSON file under TraceDirectory, one state per    *)
(* line.  TLC adds an "_action" field (the action's name) to each state.   *)
(***************************************************************************)
EXTENDS FormalChat, Sequences, TLC, TLCExt, Json

CONSTANT TraceDirectory

WriteBehaviour ==
    (TLCGet("level") = TLCGet("config").depth + 1 \/ ~ENABLED Next) =>
        ndJsonSerialize(TraceDirectory \o "/behaviour_" \o ToString(TLCGet("stats").traces) \o ".ndjson",
                        Trace)
=============================================================================
