------------------------------- MODULE TraceData -------------------------------
(***************************************************************************)
(* The trace a trace-validation module (TraceFormalChat.tla) follows: the *)
(* merged NDJSON trace of real node processes as a TLA+ sequence of        *)
(* records, a header first.  The tests (tests/Cluster.Tests/              *)
(* TraceValidation/TlcRunner.cs) write this module, with their trace, into *)
(* a copy of spec/; this one is a placeholder, an empty run of two nodes,  *)
(* so that the modules that extend it parse.                               *)
(***************************************************************************)
EXTENDS Integers  \* a line may hold a negative number (-1 for none)

TraceLog == << [nodes |-> <<1, 2>>, suspectAfter |-> 3] >>
=============================================================================
