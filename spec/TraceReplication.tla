---------------------------- MODULE TraceReplication ----------------------------
(***************************************************************************)
(* Trace validation of real runs against Replication.tla, for one room    *)
(* (spec/README.md, "Trace validation"; TraceFormalChat.tla does the same  *)
(* for FormalChat.tla).  The nodes log, after each step that touched the   *)
(* room (--trace-file PATH writes PATH.replication), their variables of    *)
(* Replication.tla for it: history, replicas, primary (pending, synced,    *)
(* stored), backups, LastOf(disk) and missing.  They do not log which      *)
(* actions the step took: TLC lets the logged node take up to              *)
(* MaxActionsPerLine of its own actions (NodeActions, by their names in    *)
(* Replication.tla) and then requires its variables to be the logged ones  *)
(* (Matched).  The trace is accepted when TLC's search reaches the end of  *)
(* the trace: TLC reports the invariant TraceMatchedAll violated.          *)
(*                                                                         *)
(* TraceLog, in module TraceData, is the merged trace (tests/Cluster.Tests/*)
(* TraceValidation): a header [nodes, owner, msgs], then one record per    *)
(* line in an order that respects causality (a receipt after its send).   *)
(*                                                                         *)
(* Mapped, not compared: the spec's epoch starts at 1 and the real one     *)
(* wherever the election left it, so a backup assignment is compared by   *)
(* backup, owner and version; Replication.tla's leader is the highest live *)
(* node, so the run must not change its view once the room is placed (no   *)
(* crash, no partition: the test waits for a settled cluster first).       *)
(***************************************************************************)
EXTENDS Replication, TLC, TraceData

Header == TraceLog[1]
Steps == SubSeq(TraceLog, 2, Len(TraceLog))

TraceNode == Range(Header.nodes)
TraceMsg == Range(Header.msgs)
TraceInitialOwner == {Header.owner}

\* More than one step of a node takes: a receipt, then the owner's SyncBackup, SendAppends and
\* Commit.
MaxActionsPerLine == 5

VARIABLES
    l,      \* the index in Steps of the next line to match
    taken   \* the actions the logged node has taken towards line l

traceVars == <<vars, l, taken>>

TraceInit ==
    /\ Init
    /\ l = 1
    /\ taken = 0

Line == Steps[l]

\* The ids of the messages node i holds after the line: the posts it may have sequenced.
LoggedIds == {Line.history[k].id : k \in DOMAIN Line.history} \cup {Line.pending[k].id : k \in DOMAIN Line.pending}

\* Node i's own actions, as Next of Replication.tla names them with i as the acting node.
NodeActions(i) ==
    \/ \E id \in LoggedIds : SequencePost(i, id)
    \/ SyncBackup(i)
    \/ SendAppends(i)
    \/ \E o \in Node : RecvSync(i, o)
    \/ \E o \in Node : StoreReplica(i, o)
    \/ \E b \in Node : RecvStored(i, b)
    \/ Commit(i)
    \/ \E j \in Node : RecvSequenced(i, j)
    \/ FillGap(i)
    \/ AssignBackup(i)
    \/ \E j \in Node : RecvBackupAssignment(i, j)

\* A backup assignment as logged: [backup, owner, version], all 0 for none.
SameAssignment(a, logged) ==
    IF logged.backup = 0 THEN a = NoBackup
    ELSE a # NoBackup /\ a.backup = logged.backup /\ a.owner = logged.owner /\ a.version = logged.version

\* The logged node's variables are the spec's.
LoggedState(i) ==
    /\ history[i] = Line.history
    /\ replicas[i] = Line.stored
    /\ IF Line.owner
       THEN /\ primary[i] # NoPrimary
            /\ primary[i].pending = Line.pending
            /\ IF Line.synced = 0 THEN primary[i].synced = NoBackup ELSE primary[i].synced.backup = Line.synced
            /\ primary[i].stored = Line.confirmed
       ELSE primary[i] = NoPrimary
    /\ SameAssignment(backups[i], Line.backup)
    /\ LastOf(disk[i]) = Line.durable
    /\ (i \in missing) = Line.missing

Acting ==
    /\ l <= Len(Steps)
    /\ taken < MaxActionsPerLine
    /\ NodeActions(Line.node)
    /\ taken' = taken + 1
    /\ UNCHANGED l

\* Prints each line it matches: on a rejection the tests name the line after the last printed.
Matched ==
    /\ l <= Len(Steps)
    /\ LoggedState(Line.node)
    /\ l' = l + 1
    /\ taken' = 0
    /\ UNCHANGED vars
    /\ PrintT(<<"matched line", l>>)

TraceNext == Acting \/ Matched

TraceSpec == TraceInit /\ [][TraceNext]_traceVars

\* Violated exactly when some behaviour matched every line: TLC's report of that violation is
\* the acceptance the tests read (TlcRunner.cs). TLC's depth cannot say it here, as it does for
\* TraceFormalChat: the actions between the lines add to it.
TraceMatchedAll == l <= Len(Steps)
=============================================================================
