----------------------------- MODULE MCReplication -----------------------------
(***************************************************************************)
(* Model-checking wrapper of Replication.tla, which the models check.      *)
(* Nothing here is mirrored by F#.                                         *)
(***************************************************************************)
EXTENDS Replication

\* The epoch grows only with leader crashes, sequence numbers only with posts (each id is
\* sequenced at most once per owner), so the state space is finite without a constraint:
\* the models bound Msg and MaxCrashes only.  Models of MembersSpec bound the joins and leaves.
MemberChangesAtMost2 == memberChanges <= 2

\* Models of RestartSpec: one whole-cluster restart per behaviour.
RestartsAtMost1 == restarts <= 1
=============================================================================
