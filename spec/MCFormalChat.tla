----------------------------- MODULE MCFormalChat -----------------------------
(***************************************************************************)
(* Model-checking wrapper of FormalChat.tla: a history variable for the    *)
(* leadership property that talks about the past, and the operators the    *)
(* MCFormalChat*.cfg models check.  Nothing here is mirrored by F#.        *)
(***************************************************************************)
EXTENDS FormalChat

\* History: every <<leader, epoch>> pair that some node has won (model checking only).
VARIABLE elected

Won(i) == leader'[i] = i /\ (leader[i] # i \/ epoch'[i] # epoch[i])

HistoryInit == Init /\ elected = {}
HistoryNext == Next /\ elected' = elected \cup {<<i, epoch'[i]>> : i \in {n \in Node : Won(n)}}
HistorySpec == HistoryInit /\ [][HistoryNext]_<<vars, elected>> /\ Fairness

\* Leadership safety, the form that holds with changing views: a node only ever follows
\* a leader that really won the epoch the node is in.
FollowsElected ==
    \A i \in Node : leader[i] # NoLeader => <<leader[i], epoch[i]>> \in elected

=============================================================================
