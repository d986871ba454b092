--------------------------- MODULE MCFailureDetector ---------------------------
(***************************************************************************)
(* Model-checking wrapper of FailureDetector.tla: a history variable for   *)
(* witnesses about the past.  Nothing here is mirrored by F#.              *)
(***************************************************************************)
EXTENDS FailureDetector

\* History: every <<i, j>> such that i removed j from its view while j was alive.
VARIABLE wronglySuspected

HistoryInit == FDInit /\ wronglySuspected = {}
HistoryNext ==
    /\ FDNext
    /\ wronglySuspected' = wronglySuspected \cup
           {<<i, j>> \in Node \X Node : j \in view[i] /\ j \notin view'[i] /\ alive'[j]}
HistorySpec == HistoryInit /\ [][HistoryNext]_<<fdVars, wronglySuspected>> /\ FDFairness

\* Witness (lossy model): a live node wrongly suspected is trusted again once its next
\* heartbeat arrives (the lossy model allows the suspicion, the heartbeat heals it).
\* A deliberately false invariant: TLC must violate it.
NeverTrustedAgain == \A p \in wronglySuspected : p[2] \notin view[p[1]]
=============================================================================
