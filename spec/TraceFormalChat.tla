----------------------------- MODULE TraceFormalChat -----------------------------
(***************************************************************************)
(* Trace validation of real runs against FormalChat.tla, in the manner of *)
(* etcd's Traceetcdraft.tla and CCF's Traceccfraft.tla: TLC is made to     *)
(* follow a behaviour of the spec that takes, line by line, the actions    *)
(* the nodes logged (--trace-file), with the logged parameters, and checks *)
(* after each one the logged node's variables.  The trace is accepted when *)
(* TLC's search reaches its last line: the depth TLC reports is then the   *)
(* number of lines plus one (the initial state); otherwise line number     *)
(* depth is the first that no spec step could match (TraceAccepted).       *)
(*                                                                         *)
(* TraceLog (module TraceData) is the trace the tests merge from the       *)
(* nodes' files (tests/Cluster.Tests/TraceValidation): a header, then one  *)
(* record per action in an order that respects causality.  It is a TLA+   *)
(* sequence of records, not an NDJSON file, so that any TLC reads it, the  *)
(* v1.7.4 release too (no Json module); the tests run TLC on a copy of     *)
(* spec/ whose TraceData.tla holds their trace.  The line format and the   *)
(* mapping, with its limits, are in spec/README.md, "Trace validation".    *)
(*                                                                         *)
(* What the trace cannot know and how it is treated:                       *)
(*  - messages in flight: msgs is the spec's own; a logged receive must    *)
(*    find its message there (sent by an earlier step), or is rejected;    *)
(*    a message sent and never received simply stays in msgs;              *)
(*  - heartbeats are not messages in the spec (a receipt reads the         *)
(*    sender's current epoch and leader); a real heartbeat carries the     *)
(*    values of its sending tick, which the sender may have left since.    *)
(*    Such a receipt is checked against RecvHeartbeat's formula with the   *)
(*    carried values, which the sender must really have held (said);      *)
(*  - crashes: the test appends a Crash line to the killed node's trace;   *)
(*  - the last node's graceful stop: the spec keeps one node alive         *)
(*    (FD!CanStop), so the run simply ends there.                          *)
(***************************************************************************)
EXTENDS FormalChat, Sequences, TLC, TraceData

Header == TraceLog[1]
Steps == SubSeq(TraceLog, 2, Len(TraceLog))

Range(s) == {s[k] : k \in DOMAIN s}

\* The constants of FormalChat come from the header (TraceFormalChat.cfg overrides them).
TraceNode == Range(Header.nodes)
TraceK == Header.suspectAfter
TraceMaxCrashes == Cardinality(TraceNode)

VARIABLES
    l,     \* the index in Steps of the next line to match
    said   \* said[j]: the <<epoch, leader>> pairs node j has held, so its heartbeats could carry

traceVars == <<vars, l, said>>

TraceInit ==
    /\ Init
    /\ l = 1
    /\ said = [j \in Node |-> {<<0, NoLeader>>}]

Line == Steps[l]

\* The received message as the spec writes it.
Received == [type |-> Line.msg.type, to |-> Line.node, id |-> Line.msg.id, epoch |-> Line.msg.epoch]

AgeOf(pairs) ==
    LET set == Range(pairs) IN [p \in {e[1] : e \in set} |-> (CHOOSE e \in set : e[1] = p)[2]]

\* The logged node's variables after the step are the spec's.
LoggedState(i) ==
    /\ view'[i] = Range(Line.view)
    /\ age'[i] = AgeOf(Line.age)
    /\ epoch'[i] = Line.epoch
    /\ participant'[i] = Line.participant
    /\ leader'[i] = Line.leader

\* RecvHeartbeat(i, j) with the epoch e and leader ld that j's heartbeat carried.  When they
\* are j's current ones this is exactly the spec's action; otherwise it is the same formula
\* with the carried values standing for epoch[j] and leader[j], which j must have held.
AdoptsCarried(i, e, ld) ==
    /\ ld # NoLeader
    /\ \/ e > epoch[i]
       \/ e = epoch[i] /\ leader[i] = NoLeader

TraceRecvHeartbeat(i, j, e, ld) ==
    \/ /\ epoch[j] = e /\ leader[j] = ld
       /\ RecvHeartbeat(i, j)
    \/ /\ <<e, ld>> # <<epoch[j], leader[j]>>
       /\ <<e, ld>> \in said[j]
       /\ FD!RecvHeartbeat(i, j)
       /\ epoch' = [epoch EXCEPT ![i] = IF AdoptsCarried(i, e, ld) THEN e ELSE @]
       /\ leader' = [leader EXCEPT ![i] = IF AdoptsCarried(i, e, ld) THEN ld ELSE @]
       /\ participant' = [participant EXCEPT ![i] =
                             IF AdoptsCarried(i, e, ld) THEN FALSE ELSE @ /\ j \in view[i]]

\* The spec keeps at least one node alive (FD!CanStop): the last node's stop ends the run.
TraceLeave(i) ==
    IF Cardinality(Live) > 1 THEN Leave(i) ELSE UNCHANGED vars

\* The messages the node logged as sent are the ones the spec's step sent: in msgs afterwards,
\* unless addressed to a stopped node (the network drops those, LCR.tla's Deliver).
LoggedSent ==
    \A k \in DOMAIN Line.sent : alive'[Line.sent[k].to] => Line.sent[k] \in msgs'

IsAction(name) == Line.action = name

TraceNext ==
    /\ l <= Len(Steps)
    /\ LET i == Line.node IN
       /\ \/ IsAction("Tick") /\ Tick(i)
          \/ IsAction("RecvHeartbeat") /\ TraceRecvHeartbeat(i, Line.msg.id, Line.msg.epoch, Line.msg.leader)
          \/ IsAction("RecvLeave") /\ RecvLeave(i, Received)
          \/ IsAction("StartElection") /\ StartElection(i)
          \/ IsAction("RecvElection") /\ RecvElection(i, Received)
          \/ IsAction("RecvLeader") /\ RecvLeader(i, Received)
          \/ IsAction("Leave") /\ TraceLeave(i)
          \/ IsAction("Crash") /\ Crash(i)
       /\ IsAction("Crash") \/ LoggedState(i)
       /\ LoggedSent
       /\ said' = [said EXCEPT ![i] = @ \cup {<<epoch'[i], leader'[i]>>}]
    /\ l' = l + 1

TraceSpec == TraceInit /\ [][TraceNext]_traceVars

\* What the tests read off TLC's result (TlcRunner.cs) once TLC has explored every behaviour
\* that follows the trace: the longest one takes every line (TLC's depth counts states, the
\* initial one included).  TLC 1.8 could check this as a POSTCONDITION; v1.7.4 has none.
TraceAccepted(depth) == depth - 1 = Len(Steps)
=============================================================================
