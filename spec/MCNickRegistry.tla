--------------------------- MODULE MCNickRegistry ---------------------------
(* Model-checking wrapper of NickRegistry.tla: the two users are interchangeable. *)
EXTENDS NickRegistry, TLC

SessionSymmetry == Permutations(Session)
=============================================================================
