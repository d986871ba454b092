/// The ring and the LCR election (spec: Succ, StartElection, RecvElection, RecvLeader): per-action
/// tests and FsCheck properties run through the seeded simulator.
module FormalChat.Protocol.Tests.ElectionTests

open System
open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.Tests
open FsCheck
open FsCheck.FSharp
open Xunit

let private assertValid (state: Coordination) =
    Assert.Equal<string list>([], Coordination.invariantViolations state)

/// Node `self` whose view is `everyone`, every peer just heard from.
let withView (self: NodeId) (everyone: NodeId list) : Coordination =
    let view = Set.ofList (self :: everyone)
    { Coordination.init self with
        View = view
        Age = view.Remove self |> Seq.map (fun peer -> peer, 0) |> Map.ofSeq }

// ---------------------------------------------------------------------------------------------
// Ring.successor.

let ``successor: the next higher id in the view`` () =
    Assert.Equal(5, Ring.successor (set [ 1; 3; 5; 9 ]) 3)
    Assert.Equal(9, Ring.successor (set [ 1; 3; 5; 9 ]) 5)

let ``successor: the highest id wraps around to the lowest`` () =
    Assert.Equal(1, Ring.successor (set [ 1; 3; 5; 9 ]) 9)

let ``successor: a node alone is its own successor`` () =
    Assert.Equal(4, Ring.successor (Set.singleton 4) 4)

let ``successor: ids compare as integers, not as text`` () =
    Assert.Equal(10, Ring.successor (set [ 2; 9; 10; 100 ]) 9)

// ---------------------------------------------------------------------------------------------
// StartElection.

let ``startElection: opens the next epoch as a participant and sends its own id to the successor`` () =
    let state = withView 2 [ 1; 3 ]

    let next, sent = Election.startElection state

    Assert.Equal(1L, next.Epoch)
    Assert.True next.Participant
    Assert.Equal(None, next.Leader)
    Assert.Equal<Sent list>([ { To = 3; Message = Election { Candidate = 2; Epoch = 1L } } ], sent)
    assertValid next

let ``startElection: does nothing while already a participant or while following the highest id`` () =
    let participant, _ = Election.startElection (withView 2 [ 1; 3 ])
    let following = { withView 2 [ 1; 3 ] with Epoch = 1L; Leader = Some 3 }

    Assert.Equal((participant, []), Election.startElection participant)
    Assert.Equal((following, []), Election.startElection following)

let ``needsElection: a leader that is not the highest id in view calls for an election`` () =
    Assert.True(Election.needsElection { withView 2 [ 1; 3 ] with Epoch = 1L; Leader = Some 2 })
    Assert.True(Election.needsElection { withView 2 [ 1 ] with Epoch = 1L; Leader = Some 3 })
    Assert.False(Election.needsElection { withView 2 [ 1 ] with Epoch = 1L; Leader = Some 2 })

// ---------------------------------------------------------------------------------------------
// RecvElection.

let ``recvElection: a higher candidate is forwarded and makes the node a participant`` () =
    let state = withView 2 [ 1; 3; 5 ]

    let next, sent = Election.recvElection { Candidate = 5; Epoch = 1L } state

    Assert.Equal(1L, next.Epoch)
    Assert.True next.Participant
    Assert.Equal<Sent list>([ { To = 3; Message = Election { Candidate = 5; Epoch = 1L } } ], sent)

let ``recvElection: a lower candidate is replaced by the node's own id once per round`` () =
    let state = withView 3 [ 1; 5 ]

    let next, sent = Election.recvElection { Candidate = 1; Epoch = 1L } state
    let again, sentAgain = Election.recvElection { Candidate = 1; Epoch = 1L } next

    Assert.Equal<Sent list>([ { To = 5; Message = Election { Candidate = 3; Epoch = 1L } } ], sent)
    Assert.True next.Participant
    Assert.Equal(next, again)
    Assert.Empty sentAgain

let ``recvElection: the node's own id coming back wins and announces the leader`` () =
    let state, _ = Election.startElection (withView 5 [ 1; 3 ])

    let next, sent = Election.recvElection { Candidate = 5; Epoch = 1L } state

    Assert.Equal(Some 5, next.Leader)
    Assert.False next.Participant
    Assert.Equal<Sent list>([ { To = 1; Message = LeaderAnnounced { Leader = 5; Epoch = 1L } } ], sent)
    assertValid next

let ``recvElection: a newer epoch supersedes the round in progress and the leader followed`` () =
    let state = { withView 2 [ 1; 3 ] with Epoch = 3L; Leader = Some 3 }

    let next, sent = Election.recvElection { Candidate = 1; Epoch = 4L } state

    Assert.Equal(4L, next.Epoch)
    Assert.Equal(None, next.Leader)
    Assert.True next.Participant
    Assert.Equal<Sent list>([ { To = 3; Message = Election { Candidate = 2; Epoch = 4L } } ], sent)

let ``recvElection: a candidate that has left the view is dropped and the node leaves the round`` () =
    // TLC's lasso (spec/README.md): 3 starts a round and leaves; 1 and 2 forwarded candidate 3
    // between them forever, both participants, and nobody was ever elected.
    let state = { withView 2 [ 1 ] with Epoch = 1L; Participant = true }

    let next, sent = Election.recvElection { Candidate = 3; Epoch = 1L } state

    Assert.Empty(sent)
    Assert.False next.Participant
    Assert.True(Election.needsElection next)

let ``recvElection: a newer round from a candidate not yet in the view is dropped but its epoch adopted`` () =
    let state = { withView 1 [ 2; 3 ] with Epoch = 5L; Leader = Some 3 }

    let next, sent = Election.recvElection { Candidate = 4; Epoch = 6L } state

    Assert.Empty(sent)
    Assert.Equal(6L, next.Epoch)
    let _, own = Election.startElection next
    Assert.Equal<Sent list>([ { To = 2; Message = Election { Candidate = 1; Epoch = 7L } } ], own)

// ---------------------------------------------------------------------------------------------
// RecvLeader.

let ``recvLeader: a follower adopts the leader and passes the announcement on`` () =
    let state, _ = Election.recvElection { Candidate = 5; Epoch = 1L } (withView 3 [ 1; 5 ])

    let next, sent = Election.recvLeader { Leader = 5; Epoch = 1L } state

    Assert.Equal(Some 5, next.Leader)
    Assert.False next.Participant
    Assert.Equal<Sent list>([ { To = 5; Message = LeaderAnnounced { Leader = 5; Epoch = 1L } } ], sent)
    assertValid next

let ``recvLeader: the announcement stops when it is back at the leader`` () =
    let state, _ = Election.recvElection { Candidate = 5; Epoch = 1L } (fst (Election.startElection (withView 5 [ 1; 3 ])))

    let next, sent = Election.recvLeader { Leader = 5; Epoch = 1L } state

    Assert.Equal(state, next)
    Assert.Empty sent

// ---------------------------------------------------------------------------------------------
// Properties over single transitions.

/// Any state the invariants allow: node 1..9, a view of ids 1..9, ages below K, any epoch.
let coordinationGen : Gen<Coordination> =
    gen {
        let! self = Gen.choose (1, 9)
        let! peers = Gen.subListOf [ 1..9 ] |> Gen.map (List.filter ((<>) self))
        let! ages = Gen.listOfLength peers.Length (Gen.choose (0, 5))
        let! epoch = Gen.choose (0, 6)
        let! participant = Gen.elements [ true; false ]
        let! leader = if participant then Gen.constant None else Gen.optionOf (Gen.choose (1, 9))
        return
            { Self = self
              View = Set.ofList (self :: peers)
              Age = List.zip peers ages |> Map.ofList
              Epoch = epoch
              Participant = participant
              Leader = leader }
    }

let ``property: an election or leader message of an older epoch changes nothing and sends nothing`` () =
    let caseGen =
        gen {
            let! state = coordinationGen |> Gen.filter (fun c -> c.Epoch >= 1)
            let! epoch = Gen.choose (0, int state.Epoch - 1) |> Gen.map int64
            let! id = Gen.choose (1, 9)
            return state, epoch, id
        }

    let property (state: Coordination, epoch: Epoch, id: NodeId) =
        Assert.Equal((state, []), Election.recvElection { Candidate = id; Epoch = epoch } state)
        Assert.Equal((state, []), Election.recvLeader { Leader = id; Epoch = epoch } state)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(500), Prop.forAll (Arb.fromGen caseGen) property)

let ``property: an election or leader message of a round already decided changes nothing and sends nothing`` () =
    let caseGen =
        gen {
            let! state = coordinationGen |> Gen.filter (fun c -> c.Leader.IsSome)
            let! id = Gen.choose (1, 9)
            return state, id
        }

    let property (state: Coordination, id: NodeId) =
        Assert.Equal((state, []), Election.recvElection { Candidate = id; Epoch = state.Epoch } state)
        Assert.Equal((state, []), Election.recvLeader { Leader = id; Epoch = state.Epoch } state)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(500), Prop.forAll (Arb.fromGen caseGen) property)

let ``property: every election transition keeps the invariants and never lowers the epoch`` () =
    let caseGen =
        gen {
            let! state = coordinationGen
            let! id = Gen.choose (1, 9)
            let! epoch = Gen.choose (0, 7) |> Gen.map int64
            let! which = Gen.choose (0, 2)
            return state, id, epoch, which
        }

    let property (state: Coordination, id: NodeId, epoch: Epoch, which: int) =
        let next, sent =
            match which with
            | 0 -> Election.startElection state
            | 1 -> Election.recvElection { Candidate = id; Epoch = epoch } state
            | _ -> Election.recvLeader { Leader = id; Epoch = epoch } state
        assertValid next
        Assert.True(next.Epoch >= state.Epoch)
        Assert.True(sent.Length <= 1, "a transition sends at most one ring message")
        for message in sent do
            Assert.Equal(Ring.successor next.View next.Self, message.To)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(500), Prop.forAll (Arb.fromGen caseGen) property)

// ---------------------------------------------------------------------------------------------
// Properties over whole clusters, through the seeded simulator.

/// 1–7 distinct positive ids, small ones and ones near Int32.MaxValue, in any order.
let private ringIdsGen (minimum: int) : Gen<NodeId list> =
    gen {
        let! count = Gen.choose (minimum, 7)
        let idGen = Gen.oneof [ Gen.choose (1, 12); Gen.choose (1, Int32.MaxValue) ]
        let! ids = Gen.listOfLength (count * 2) idGen
        return ids |> List.distinct |> List.truncate count
    }
    |> Gen.filter (fun ids -> ids.Length >= minimum)

let private clusterCaseGen (minimum: int) : Gen<NodeId list * int> =
    Gen.zip (ringIdsGen minimum) (Gen.choose (0, Int32.MaxValue))

let private assertAllFollow (leader: NodeId) (cluster: Simulation.Cluster) =
    let states = Simulation.running cluster |> List.map (Simulation.node cluster)
    for state in states do
        Assert.True((state.Leader = Some leader), $"seed {cluster.Seed}: node {state.Self} follows {state.Leader}, not {leader}")
    let epochs = states |> List.map (fun c -> c.Epoch) |> List.distinct
    Assert.True((epochs.Length = 1), $"seed {cluster.Seed}: nodes end in different epochs {epochs}")

let ``property: on any ring of 1-7 nodes with full views, every node ends following the highest id in one epoch`` () =
    let property (ids: NodeId list, seed: int) =
        let random = Random seed
        let cluster = Simulation.createWithFullViews seed 3 ids |> Simulation.runUntilSettled random 200
        assertAllFollow (List.max ids) cluster

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Prop.forAll (Arb.fromGen (clusterCaseGen 1)) property)

let ``property: nodes booting one by one and meeting by heartbeats end following the highest id in one epoch`` () =
    let property (ids: NodeId list, seed: int) =
        let random = Random seed
        let everyoneUpAndSettled (cluster: Simulation.Cluster) = cluster.Dormant.IsEmpty && Simulation.isSettled cluster
        let cluster =
            Simulation.createDormant seed 3 ids
            |> Simulation.runUntil random Simulation.fairSchedule 300 everyoneUpAndSettled
        Assert.Equal(ids.Length, (Simulation.running cluster).Length)
        assertAllFollow (List.max ids) cluster

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Prop.forAll (Arb.fromGen (clusterCaseGen 1)) property)

let ``property: after the leader crashes and is suspected by ticks, the next highest id wins`` () =
    let property (ids: NodeId list, seed: int) =
        let random = Random seed
        let settled = Simulation.createWithFullViews seed 3 ids |> Simulation.runUntilSettled random 200
        let leader = List.max ids
        let survivors = ids |> List.filter ((<>) leader)

        let after = settled |> Simulation.apply (Simulation.Crash leader) |> Simulation.runUntilSettled random 300

        Assert.Equal<NodeId list>(List.sort survivors, Simulation.running after)
        assertAllFollow (List.max survivors) after

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Prop.forAll (Arb.fromGen (clusterCaseGen 2)) property)

let ``property: a crashed leader that restarts rejoins and, being the highest id, is elected again`` () =
    let property (ids: NodeId list, seed: int) =
        let random = Random seed
        let leader = List.max ids
        let survivorsSettled =
            Simulation.createWithFullViews seed 3 ids
            |> Simulation.runUntilSettled random 200
            |> Simulation.apply (Simulation.Crash leader)
            |> Simulation.runUntilSettled random 300
        let survivorsEpoch = (Simulation.node survivorsSettled (List.min ids)).Epoch

        let after = survivorsSettled |> Simulation.apply (Simulation.Restart leader) |> Simulation.runUntilSettled random 300

        Assert.Equal<NodeId list>(List.sort ids, Simulation.running after)
        assertAllFollow leader after
        Assert.True((Simulation.node after leader).Epoch > survivorsEpoch, $"seed {seed}: the new leader needs a newer round")

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Prop.forAll (Arb.fromGen (clusterCaseGen 2)) property)

let ``property: after the leader leaves on purpose, the next highest id wins without waiting for suspicion`` () =
    let property (ids: NodeId list, seed: int) =
        let random = Random seed
        let settled = Simulation.createWithFullViews seed 3 ids |> Simulation.runUntilSettled random 200
        let leader = List.max ids
        let survivors = ids |> List.filter ((<>) leader)
        // No ticks at all: only the leave can remove the leader from the views.
        let noTicks = { Simulation.fairSchedule with TickProbability = 0.0 }

        let after =
            settled
            |> Simulation.apply (Simulation.Leave leader)
            |> Simulation.runUntil random noTicks 300 Simulation.isSettled

        assertAllFollow (List.max survivors) after

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Prop.forAll (Arb.fromGen (clusterCaseGen 2)) property)

let ``property: with all n nodes starting in one epoch on a stable ring, at most n(n+1)/2 election messages are sent`` () =
    let caseGen =
        gen {
            let! ids, seed = clusterCaseGen 1
            let! order = Gen.shuffle ids
            return ids, seed, List.ofArray order
        }

    let property (ids: NodeId list, seed: int, startOrder: NodeId list) =
        let random = Random seed
        let n = ids.Length
        let started =
            Simulation.createWithFullViews seed 3 ids
            |> Simulation.applyAll [ for id in startOrder -> Simulation.StartElection id ]
        Assert.All(Simulation.running started, fun id -> Assert.Equal(1L, (Simulation.node started id).Epoch))

        // Ring messages only, in random order: no ticks, heartbeats or new rounds.
        let settled = started |> Simulation.deliverAllRandomly random 10_000

        assertAllFollow (List.max ids) settled
        Assert.True(
            settled.ElectionMessagesSent <= n * (n + 1) / 2,
            $"seed {seed}: {settled.ElectionMessagesSent} election messages on a ring of {n}")
        // On a ring ordered by id each node sends its own id once and only the highest id goes
        // all the way round: exactly 2n-1 election messages and n leader messages.
        Assert.Equal(2 * n - 1, settled.ElectionMessagesSent)
        Assert.Equal(n, settled.LeaderMessagesSent)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Prop.forAll (Arb.fromGen caseGen) property)

let ``scenario: a stale election message arriving after the new leader is chosen changes nothing`` () =
    let ids = [ 1; 2; 3; 4 ]
    let seed = 7
    let random = Random seed
    let settled = Simulation.createWithFullViews seed 3 ids |> Simulation.runUntilSettled random 200
    let epoch = (Simulation.node settled 1).Epoch
    let late =
        [ for id in ids do
              Simulation.Deliver { To = id; Message = Election { Candidate = 9; Epoch = epoch - 1L } }
              Simulation.Deliver { To = id; Message = LeaderAnnounced { Leader = 1; Epoch = epoch - 1L } }
              Simulation.Deliver { To = id; Message = Election { Candidate = 9; Epoch = epoch } } ]

    let after = settled |> Simulation.applyAll late

    Assert.Equal<Map<NodeId, Coordination>>(settled.Nodes, after.Nodes)
    Assert.Empty after.InFlight

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "Election" [
        testCase "successor: the next higher id in the view"
            ``successor: the next higher id in the view``
        testCase "successor: the highest id wraps around to the lowest"
            ``successor: the highest id wraps around to the lowest``
        testCase "successor: a node alone is its own successor"
            ``successor: a node alone is its own successor``
        testCase "successor: ids compare as integers, not as text"
            ``successor: ids compare as integers, not as text``
        testCase "startElection: opens the next epoch as a participant and sends its own id to the successor"
            ``startElection: opens the next epoch as a participant and sends its own id to the successor``
        testCase "startElection: does nothing while already a participant or while following the highest id"
            ``startElection: does nothing while already a participant or while following the highest id``
        testCase "needsElection: a leader that is not the highest id in view calls for an election"
            ``needsElection: a leader that is not the highest id in view calls for an election``
        testCase "recvElection: a higher candidate is forwarded and makes the node a participant"
            ``recvElection: a higher candidate is forwarded and makes the node a participant``
        testCase "recvElection: a lower candidate is replaced by the node's own id once per round"
            ``recvElection: a lower candidate is replaced by the node's own id once per round``
        testCase "recvElection: the node's own id coming back wins and announces the leader"
            ``recvElection: the node's own id coming back wins and announces the leader``
        testCase "recvElection: a newer epoch supersedes the round in progress and the leader followed"
            ``recvElection: a newer epoch supersedes the round in progress and the leader followed``
        testCase "recvElection: a candidate that has left the view is dropped and the node leaves the round"
            ``recvElection: a candidate that has left the view is dropped and the node leaves the round``
        testCase "recvElection: a newer round from a candidate not yet in the view is dropped but its epoch adopted"
            ``recvElection: a newer round from a candidate not yet in the view is dropped but its epoch adopted``
        testCase "recvLeader: a follower adopts the leader and passes the announcement on"
            ``recvLeader: a follower adopts the leader and passes the announcement on``
        testCase "recvLeader: the announcement stops when it is back at the leader"
            ``recvLeader: the announcement stops when it is back at the leader``
        testCase "property: an election or leader message of an older epoch changes nothing and sends nothing"
            ``property: an election or leader message of an older epoch changes nothing and sends nothing``
        testCase "property: an election or leader message of a round already decided changes nothing and sends nothing"
            ``property: an election or leader message of a round already decided changes nothing and sends nothing``
        testCase "property: every election transition keeps the invariants and never lowers the epoch"
            ``property: every election transition keeps the invariants and never lowers the epoch``
        testCase "property: on any ring of 1-7 nodes with full views, every node ends following the highest id in one epoch"
            ``property: on any ring of 1-7 nodes with full views, every node ends following the highest id in one epoch``
        testCase "property: nodes booting one by one and meeting by heartbeats end following the highest id in one epoch"
            ``property: nodes booting one by one and meeting by heartbeats end following the highest id in one epoch``
        testCase "property: after the leader crashes and is suspected by ticks, the next highest id wins"
            ``property: after the leader crashes and is suspected by ticks, the next highest id wins``
        testCase "property: a crashed leader that restarts rejoins and, being the highest id, is elected again"
            ``property: a crashed leader that restarts rejoins and, being the highest id, is elected again``
        testCase "property: after the leader leaves on purpose, the next highest id wins without waiting for suspicion"
            ``property: after the leader leaves on purpose, the next highest id wins without waiting for suspicion``
        testCase "property: with all n nodes starting in one epoch on a stable ring, at most n(n+1)/2 election messages are sent"
            ``property: with all n nodes starting in one epoch on a stable ring, at most n(n+1)/2 election messages are sent``
        testCase "scenario: a stale election message arriving after the new leader is chosen changes nothing"
            ``scenario: a stale election message arriving after the new leader is chosen changes nothing``
    ]
