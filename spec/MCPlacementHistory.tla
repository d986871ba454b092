--------------------------- MODULE MCPlacementHistory ---------------------------
(***************************************************************************)
(* MCPlacement with a history variable, for the form of OneOwnerPerVersion *)
(* that talks about the past: every assignment any leader ever made.       *)
(* Nothing here is mirrored by F#.                                         *)
(***************************************************************************)
EXTENDS MCPlacement

VARIABLE assigned  \* every <<r, a>> such that some leader has made assignment a for room r

HistoryInit == Init /\ assigned = {}

HistoryNext ==
    /\ Next
    /\ assigned' = assigned \cup
          UNION {{<<r, placements'[l][r]>> : r \in Reassigned(l)} : l \in {n \in Node : IsLeader(n)}}

HistorySpec == HistoryInit /\ [][HistoryNext]_<<vars, assigned>>

\* OneOwnerPerVersion over the whole history: no leader ever made two assignments of
\* one room with the same epoch and version but different owners.
OneOwnerPerVersionEver ==
    \A x, y \in assigned :
        (x[1] = y[1] /\ x[2].epoch = y[2].epoch /\ x[2].leader = y[2].leader
                    /\ x[2].version = y[2].version)
            => x[2].owner = y[2].owner

=============================================================================
