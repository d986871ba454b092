---------------------------- MODULE NickRegistry ----------------------------
(***************************************************************************)
(* Exactly one winner per nickname (F#: Protocol.FSharp/NickRegistry.fs).  *)
(*                                                                         *)
(* The leader of each term is the nickname registrar. A node that gets a   *)
(* hello claims the nickname from the registrar of the term it follows and *)
(* welcomes the client only on that registrar's grant. Two rules keep one  *)
(* winner across a leader change:                                          *)
(*   - a new registrar grants nothing until every live node has reported   *)
(*     the nicknames it holds, in the new term (Ready);                    *)
(*   - a node takes a grant only in the term it follows now, so an old     *)
(*     registrar's grant that arrives after the node reported to a newer   *)
(*     one is ignored (the claim is sent again in the new term).           *)
(* A claim with the session the registry already holds for the nickname is *)
(* the same user resuming elsewhere: the nickname moves to the claimant.   *)
(*                                                                         *)
(* Links are FIFO (TCP). Nodes crash and stay down; the registrar's view  *)
(* of who is live is exact here (suspicion is FailureDetector.tla's part). *)
(* Any live node may start a new term at any time, so old and new leaders  *)
(* run side by side, which covers leader crash and failover.              *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS Node, Nick, Session, MaxEpoch, MaxCrashes, MaxQueue, MaxClaims,
          AnyLeader   \* FALSE: only the highest live id wins an election, as LCR's does

NoLeader == 0
NoTerm == [epoch |-> 0, leader |-> NoLeader]
Term == [epoch : 0..MaxEpoch, leader : Node \cup {NoLeader}]

\* Terms are ordered by epoch, then leader (two nodes may lead one epoch).
Before(a, b) == \/ a.epoch < b.epoch
                \/ a.epoch = b.epoch /\ a.leader < b.leader

VARIABLES
    alive,      \* live nodes
    crashes,
    claims,     \* hellos so far (a model bound)
    nextEpoch,  \* the newest epoch any election used
    term,       \* term[n]: the term n follows (its registrar is term[n].leader)
    lead,       \* lead[n]: the term n is registrar of, NoTerm if none
    registry,   \* registry[n]: the registrar's <<nick, holder, session>> triples
    reported,   \* reported[n]: nodes that reported to n in lead[n]
    held,       \* held[n]: <<nick, session>> welcomed on n
    pending,    \* pending[n]: <<nick, session, term the claim was sent in>>
    chan        \* chan[<<from, to>>]: the FIFO link's messages in flight

vars == <<alive, crashes, claims, nextEpoch, term, lead, registry, reported, held, pending, chan>>

Message ==
    [type : {"claim", "grant", "refuse", "release"}, nick : Nick, session : Session, term : Term]
    \cup [type : {"report"}, nicks : SUBSET (Nick \X Session), term : Term]
    \cup [type : {"requested"}, term : Term]

TypeOK ==
    /\ alive \subseteq Node
    /\ crashes \in 0..MaxCrashes
    /\ claims \in 0..MaxClaims
    /\ nextEpoch \in 0..MaxEpoch
    /\ term \in [Node -> Term]
    /\ lead \in [Node -> Term]
    /\ registry \in [Node -> SUBSET (Nick \X Node \X Session)]
    /\ reported \in [Node -> SUBSET Node]
    /\ held \in [Node -> SUBSET (Nick \X Session)]
    /\ pending \in [Node -> SUBSET (Nick \X Session \X Term)]
    /\ \A link \in Node \X Node : \A i \in 1..Len(chan[link]) : chan[link][i] \in Message

Init ==
    /\ alive = Node
    /\ crashes = 0
    /\ claims = 0
    /\ nextEpoch = 0
    /\ term = [n \in Node |-> NoTerm]
    /\ lead = [n \in Node |-> NoTerm]
    /\ registry = [n \in Node |-> {}]
    /\ reported = [n \in Node |-> {}]
    /\ held = [n \in Node |-> {}]
    /\ pending = [n \in Node |-> {}]
    /\ chan = [link \in Node \X Node |-> <<>>]

Send(from, to, m) == chan' = [chan EXCEPT ![<<from, to>>] = Append(@, m)]

First(from, to) == chan[<<from, to>>][1]

Receive(from, to) == chan' = [chan EXCEPT ![<<from, to>>] = Tail(@)]

HoldsNick(n, k) == \E s \in Session : <<k, s>> \in held[n]

Claiming(n, k) == \E s \in Session, t \in Term : <<k, s, t>> \in pending[n]

\* The registrar has heard every live node in its term.
Ready(l) == alive \subseteq reported[l]

\* Registry entries for the nickname whose holder is still live.
LiveHolders(l, k) == {h \in registry[l] : h[1] = k /\ h[2] \in alive}

(* F# electedRegistrar: a live node wins a new epoch (or, as LCR allows, one *)
(* more leader of the newest epoch) and starts with an empty registry.     *)
Elect(l) ==
    /\ l \in alive
    /\ AnyLeader \/ \A n \in alive : n <= l
    /\ nextEpoch < MaxEpoch
    /\ nextEpoch' = nextEpoch + 1
    /\ lead' = [lead EXCEPT ![l] = [epoch |-> nextEpoch + 1, leader |-> l]]
    /\ registry' = [registry EXCEPT ![l] = {}]
    /\ reported' = [reported EXCEPT ![l] = {}]
    /\ UNCHANGED <<alive, crashes, claims, term, held, pending, chan>>

(* F# followRegistrar: n hears of a newer leader (announcement or heartbeat) *)
(* and reports the nicknames it holds to it.                                *)
FollowRegistrar(n, l) ==
    /\ n \in alive
    /\ lead[l] # NoTerm
    /\ Before(term[n], lead[l])
    /\ term' = [term EXCEPT ![n] = lead[l]]
    /\ Send(n, l, [type |-> "report", nicks |-> held[n], term |-> lead[l]])
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, lead, registry, reported, held, pending>>

(* F# claimNick: a client says hello with nickname k and session s.        *)
ClaimNick(n, k, s) ==
    /\ n \in alive
    /\ term[n] # NoTerm
    /\ ~HoldsNick(n, k)
    /\ ~Claiming(n, k)
    /\ claims < MaxClaims
    /\ claims' = claims + 1
    /\ pending' = [pending EXCEPT ![n] = @ \cup {<<k, s, term[n]>>}]
    /\ Send(n, term[n].leader, [type |-> "claim", nick |-> k, session |-> s, term |-> term[n]])
    /\ UNCHANGED <<alive, crashes, nextEpoch, term, lead, registry, reported, held>>

(* Whether a claim, or its answer, is on its way between n and l.          *)
InFlight(n, l, k) ==
    \/ \E i \in 1..Len(chan[<<n, l>>]) : chan[<<n, l>>][i].type = "claim" /\ chan[<<n, l>>][i].nick = k
    \/ \E i \in 1..Len(chan[<<l, n>>]) :
           chan[<<l, n>>][i].type \in {"grant", "refuse"} /\ chan[<<l, n>>][i].nick = k

(* F# claimAgain: a claim sent in an older term goes to the current one; a *)
(* claim the registrar dropped (it was not Ready) is sent again.           *)
ClaimAgain(n, k, s, t) ==
    /\ n \in alive
    /\ <<k, s, t>> \in pending[n]
    /\ t # term[n] \/ ~InFlight(n, term[n].leader, k)
    /\ pending' = [pending EXCEPT ![n] = (@ \ {<<k, s, t>>}) \cup {<<k, s, term[n]>>}]
    /\ Send(n, term[n].leader, [type |-> "claim", nick |-> k, session |-> s, term |-> term[n]])
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, term, lead, registry, reported, held>>

(* F# tick: a registrar asks a node in view that has not reported (a node   *)
(* that joined its view, or one whose report is still on its way).         *)
AskForReport(l, n) ==
    /\ l \in alive
    /\ lead[l] # NoTerm
    /\ n \notin reported[l]
    /\ \A i \in 1..Len(chan[<<l, n>>]) : chan[<<l, n>>][i].type # "requested"
    /\ Send(l, n, [type |-> "requested", term |-> lead[l]])
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, term, lead, registry, reported, held, pending>>

(* F# recvReportRequest: a node reports what it holds now, in the term it  *)
(* follows, or first follows the asker if its term is newer.              *)
RecvReportRequest(n, l) ==
    /\ n \in alive
    /\ chan[<<l, n>>] # <<>>
    /\ First(l, n).type = "requested"
    /\ LET m == First(l, n) IN
       IF m.term = term[n] \/ Before(term[n], m.term)
       THEN /\ term' = [term EXCEPT ![n] = m.term]
            /\ chan' = [chan EXCEPT ![<<l, n>>] = Tail(@),
                          ![<<n, l>>] = Append(@, [type |-> "report", nicks |-> held[n], term |-> m.term])]
       ELSE /\ Receive(l, n)
            /\ UNCHANGED term
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, lead, registry, reported, held, pending>>

(* F# recvReport: the holder's entries become exactly what it reports, once *)
(* a term: a second report can be older than a grant made to it since.    *)
RecvReport(l, n) ==
    /\ l \in alive
    /\ chan[<<n, l>>] # <<>>
    /\ First(n, l).type = "report"
    /\ Receive(n, l)
    /\ LET m == First(n, l) IN
       IF m.term = lead[l] /\ n \notin reported[l]
       THEN /\ registry' = [registry EXCEPT ![l] =
                  {h \in @ : h[2] # n} \cup {<<x[1], n, x[2]>> : x \in m.nicks}]
            /\ reported' = [reported EXCEPT ![l] = @ \cup {n}]
       ELSE UNCHANGED <<registry, reported>>
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, term, lead, held, pending>>

(* F# recvClaim: the registrar of the claim's term, once Ready, grants a   *)
(* nickname nobody live holds, or holds with the claim's session; refuses  *)
(* any other. A claim of another term, or before Ready, is dropped (the    *)
(* claimant asks again).                                                   *)
RecvClaim(l, n) ==
    /\ l \in alive
    /\ chan[<<n, l>>] # <<>>
    /\ First(n, l).type = "claim"
    /\ LET m == First(n, l)
           holders == LiveHolders(l, m.nick)
           free == \A h \in holders : h[3] = m.session
           reply == [type |-> IF free THEN "grant" ELSE "refuse",
                     nick |-> m.nick, session |-> m.session, term |-> m.term]
       IN IF m.term = lead[l] /\ Ready(l)
          THEN /\ registry' = [registry EXCEPT ![l] =
                     IF free THEN {h \in @ : h[1] # m.nick} \cup {<<m.nick, n, m.session>>}
                     ELSE @]
               /\ chan' = [chan EXCEPT ![<<n, l>>] = Tail(@), ![<<l, n>>] = Append(@, reply)]
          ELSE /\ Receive(n, l)
               /\ UNCHANGED registry
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, term, lead, reported, held, pending>>

(* F# recvGrant: welcome, if the claim is still waiting in this very term; *)
(* a grant nobody waits for any more is given back.                        *)
RecvGrant(n, l) ==
    /\ n \in alive
    /\ chan[<<l, n>>] # <<>>
    /\ First(l, n).type = "grant"
    /\ LET m == First(l, n)
           claim == <<m.nick, m.session, m.term>>
       IN IF m.term = term[n] /\ claim \in pending[n]
          THEN /\ held' = [held EXCEPT ![n] = @ \cup {<<m.nick, m.session>>}]
               /\ pending' = [pending EXCEPT ![n] = @ \ {claim}]
               /\ Receive(l, n)
          ELSE /\ UNCHANGED <<held, pending>>
               /\ IF m.term = term[n] /\ <<m.nick, m.session>> \notin held[n]
                  THEN chan' = [chan EXCEPT ![<<l, n>>] = Tail(@),
                                 ![<<n, l>>] = Append(@, [m EXCEPT !.type = "release"])]
                  ELSE Receive(l, n)
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, term, lead, registry, reported>>

(* F# recvRefusal: the client is told the nickname is taken.               *)
RecvRefusal(n, l) ==
    /\ n \in alive
    /\ chan[<<l, n>>] # <<>>
    /\ First(l, n).type = "refuse"
    /\ LET m == First(l, n) IN
       pending' = [pending EXCEPT ![n] = @ \ {<<m.nick, m.session, m.term>>}]
    /\ Receive(l, n)
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, term, lead, registry, reported, held>>

(* F# releaseNick: the user disconnects; the registrar is told.            *)
ReleaseNick(n, k, s) ==
    /\ n \in alive
    /\ <<k, s>> \in held[n]
    /\ held' = [held EXCEPT ![n] = @ \ {<<k, s>>}]
    /\ Send(n, term[n].leader, [type |-> "release", nick |-> k, session |-> s, term |-> term[n]])
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, term, lead, registry, reported, pending>>

(* F# abandonClaim: the client left before the answer came.               *)
AbandonClaim(n, k, s, t) ==
    /\ n \in alive
    /\ <<k, s, t>> \in pending[n]
    /\ pending' = [pending EXCEPT ![n] = @ \ {<<k, s, t>>}]
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, term, lead, registry, reported, held, chan>>

(* F# recvRelease: only the sender's own entry, only in this term.         *)
RecvRelease(l, n) ==
    /\ l \in alive
    /\ chan[<<n, l>>] # <<>>
    /\ First(n, l).type = "release"
    /\ LET m == First(n, l) IN
       IF m.term = lead[l]
       THEN registry' = [registry EXCEPT ![l] = @ \ {<<m.nick, n, m.session>>}]
       ELSE UNCHANGED registry
    /\ Receive(n, l)
    /\ UNCHANGED <<alive, crashes, claims, nextEpoch, term, lead, reported, held, pending>>

Crash(n) ==
    /\ n \in alive
    /\ crashes < MaxCrashes
    /\ Cardinality(alive) > 1
    /\ alive' = alive \ {n}
    /\ crashes' = crashes + 1
    /\ held' = [held EXCEPT ![n] = {}]
    /\ pending' = [pending EXCEPT ![n] = {}]
    /\ UNCHANGED <<claims, nextEpoch, term, lead, registry, reported, chan>>

Next ==
    \/ \E l \in Node : Elect(l)
    \/ \E n, l \in Node : FollowRegistrar(n, l) \/ AskForReport(l, n) \/ RecvReportRequest(n, l)
    \/ \E n \in Node, k \in Nick, s \in Session : ClaimNick(n, k, s) \/ ReleaseNick(n, k, s)
    \/ \E n \in Node, k \in Nick, s \in Session, t \in Term : ClaimAgain(n, k, s, t) \/ AbandonClaim(n, k, s, t)
    \/ \E n, l \in Node : RecvReport(l, n) \/ RecvClaim(l, n) \/ RecvGrant(n, l) \/ RecvRefusal(n, l) \/ RecvRelease(l, n)
    \/ \E n \in Node : Crash(n)

Spec == Init /\ [][Next]_vars

\* The safety property: no two live nodes welcome one nickname for different users. (The same
\* session on two nodes is one user whose nickname is moving: the old connection is closed.)
OneWinnerPerNick ==
    \A k \in Nick, m, n \in alive, s1, s2 \in Session :
        (<<k, s1>> \in held[m] /\ <<k, s2>> \in held[n]) => s1 = s2

\* A model bound: links hold at most MaxQueue messages.
QueueBound == \A link \in Node \X Node : Len(chan[link]) <= MaxQueue
=============================================================================
