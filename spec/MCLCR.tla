------------------------------- MODULE MCLCR -------------------------------
(***************************************************************************)
(* Model-checking wrapper of LCR.tla: rings whose order differs from the   *)
(* order of the ids, and witnesses.  Nothing here is mirrored by F#.       *)
(*                                                                         *)
(* FormalChat's ring is sorted by id (Succ: the next higher id), which is  *)
(* LCR's best case: every candidate but the highest is swallowed after one *)
(* hop, 2n-1 election messages in all.  The algorithm must not depend on   *)
(* that luck, and its n(n+1)/2 message bound is only approached when the   *)
(* ids decrease along the ring.  A model overrides Succ with RingSucc      *)
(* (cfg: Succ <- RingSucc) to run LCR on the ring order Ring.             *)
(***************************************************************************)
EXTENDS LCR, Sequences

CONSTANT Ring  \* every node once; messages travel Ring[k] -> Ring[k+1], the last to the first

ASSUME /\ Len(Ring) = Cardinality(Node)
       /\ \A i \in Node : \E k \in 1..Len(Ring) : Ring[k] = i

\* The ring orders of the MCLCR*.cfg models (cfg: Ring <- RingReversed5; TLC's cfg files
\* have no tuple values).
RingReversed5 == <<5, 4, 3, 2, 1>>
RingMixed4 == <<1, 3, 2, 4>>
RingMixed5 == <<2, 5, 1, 3, 4>>

RingIndex(i) == CHOOSE k \in 1..Len(Ring) : Ring[k] = i

\* This module's Spec keeps every view = Node, so the ring is the whole of Ring.
RingSucc(i) == Ring[(RingIndex(i) % Len(Ring)) + 1]

\* Witness (a deliberately false invariant, TLC must violate it): some behaviour sends
\* the whole n(n+1)/2 messages, so MessageBound is tight and this model reaches it.
MessagesBelowBound == electionsSent < (Cardinality(Node) * (Cardinality(Node) + 1)) \div 2
=============================================================================
