/// Per-action tests of the failure detector (spec: Tick, RecvHeartbeat, RecvLeave), each in
/// init / act / check parts, and FsCheck properties for the suspicion rule.
module FormalChat.Protocol.Tests.FailureDetectorTests

open Expecto
open FormalChat.Protocol
open FsCheck
open FsCheck.FSharp
open Xunit

let private assertValid (state: Coordination) =
    Assert.Equal<string list>([], Coordination.invariantViolations state)

/// Node `self` that has heard one heartbeat from each of `peers` (epoch 0, no leader).
let private knowing (self: NodeId) (peers: NodeId list) : Coordination =
    peers |> List.fold (fun state peer -> FailureDetector.recvHeartbeat peer 0 None state) (Coordination.init self)

// ---------------------------------------------------------------------------------------------
// Init.

let ``init: a node starts alone in epoch 0 with no leader and no round`` () =
    let state = Coordination.init 4

    Assert.Equal(4, state.Self)
    Assert.Equal<Set<NodeId>>(Set.singleton 4, state.View)
    Assert.Empty state.Age
    Assert.Equal(0L, state.Epoch)
    Assert.False state.Participant
    Assert.Equal(None, state.Leader)
    assertValid state

// ---------------------------------------------------------------------------------------------
// RecvHeartbeat.

let ``recvHeartbeat: a heartbeat from an unknown node adds it to the view with age 0`` () =
    let state = Coordination.init 1

    let next = FailureDetector.recvHeartbeat 2 0 None state

    Assert.Equal<Set<NodeId>>(set [ 1; 2 ], next.View)
    Assert.Equal(Some 0, next.Age.TryFind 2)
    assertValid next

let ``recvHeartbeat: a heartbeat from an unknown node abandons the running round`` () =
    let state, _ = Election.startElection (knowing 1 [ 2 ])
    Assert.True state.Participant

    let next = FailureDetector.recvHeartbeat 3 state.Epoch None state

    Assert.True(next.View.Contains 3)
    Assert.False(next.Participant, "a view change abandons the round in progress")
    Assert.Equal(state.Epoch, next.Epoch)
    assertValid next

let ``recvHeartbeat: a heartbeat from a known node keeps the running round`` () =
    let state, _ = Election.startElection (knowing 1 [ 2 ])

    let next = FailureDetector.recvHeartbeat 2 state.Epoch None state

    Assert.True next.Participant
    Assert.Equal<Set<NodeId>>(state.View, next.View)

let ``recvHeartbeat: a heartbeat from a known node resets its age to 0`` () =
    let state = knowing 1 [ 2; 3 ] |> FailureDetector.tick 5 |> FailureDetector.tick 5
    Assert.Equal(Some 2, state.Age.TryFind 2)

    let next = FailureDetector.recvHeartbeat 2 0 None state

    Assert.Equal(Some 0, next.Age.TryFind 2)
    Assert.Equal(Some 2, next.Age.TryFind 3)

let ``recvHeartbeat: a leader of a newer epoch is adopted, ending any round`` () =
    let state, _ = Election.startElection (knowing 1 [ 2; 3 ])
    Assert.Equal(1L, state.Epoch)

    let next = FailureDetector.recvHeartbeat 2 5 (Some 3) state

    Assert.Equal(5L, next.Epoch)
    Assert.Equal(Some 3, next.Leader)
    Assert.False next.Participant
    assertValid next

let ``recvHeartbeat: a newer epoch without a leader is not adopted`` () =
    let state = knowing 1 [ 2 ]

    let next = FailureDetector.recvHeartbeat 2 5 None state

    Assert.Equal(0L, next.Epoch)
    Assert.Equal(None, next.Leader)

let ``recvHeartbeat: a leader of an older epoch changes neither leader nor epoch`` () =
    let following = { knowing 1 [ 2; 3 ] with Epoch = 4L; Leader = Some 3 }
    let electing = { knowing 1 [ 2; 3 ] with Epoch = 4L; Participant = true }

    for state in [ following; electing ] do
        for epoch in [ 0; 3 ] do
            let next = FailureDetector.recvHeartbeat 2 epoch (Some 2) state
            Assert.Equal({ state with Age = state.Age.Add(2, 0) }, next)

let ``recvHeartbeat: a different leader of the same epoch does not replace the leader followed`` () =
    let following = { knowing 1 [ 2; 3 ] with Epoch = 4L; Leader = Some 3 }

    let next = FailureDetector.recvHeartbeat 2 4 (Some 2) following

    Assert.Equal({ following with Age = following.Age.Add(2, 0) }, next)

let ``recvHeartbeat: the leader of this epoch is adopted while no leader is known`` () =
    let electing = { knowing 1 [ 2; 3 ] with Epoch = 4L; Participant = true }

    let next = FailureDetector.recvHeartbeat 2 4 (Some 3) electing

    Assert.Equal(4L, next.Epoch)
    Assert.Equal(Some 3, next.Leader)
    Assert.False next.Participant
    assertValid next

let ``recvHeartbeat: a node's own heartbeat is ignored`` () =
    let state = knowing 1 [ 2 ] |> FailureDetector.tick 5

    let next = FailureDetector.recvHeartbeat 1 9 (Some 1) state

    Assert.Equal(state, next)

// ---------------------------------------------------------------------------------------------
// Tick.

let ``tick: ages every peer by one`` () =
    let state = knowing 1 [ 2; 3 ]

    let next = FailureDetector.tick 3 state

    Assert.Equal<Map<NodeId, int>>(Map.ofList [ 2, 1; 3, 1 ], next.Age)
    assertValid next

let ``tick: a node alone stays alone and unchanged`` () =
    let state = Coordination.init 1

    Assert.Equal(state, FailureDetector.tick 1 state)

let ``tick: the K-th missed heartbeat removes the peer from view and age, and abandons the round`` () =
    let state = knowing 1 [ 2; 3 ] |> FailureDetector.tick 2
    let state, _ = Election.startElection state
    let state = FailureDetector.recvHeartbeat 3 0 None state

    let next = FailureDetector.tick 2 state

    Assert.Equal<Set<NodeId>>(set [ 1; 3 ], next.View)
    Assert.False(next.Age.ContainsKey 2)
    Assert.False next.Participant
    assertValid next

let ``tick: suspecting the leader keeps its name until an election replaces it`` () =
    let state = { knowing 1 [ 3 ] with Epoch = 2L; Leader = Some 3 }

    let next = state |> FailureDetector.tick 1

    Assert.Equal<Set<NodeId>>(Set.singleton 1, next.View)
    Assert.False(Election.leaderOk next)
    Assert.True(Election.needsElection next)

// ---------------------------------------------------------------------------------------------
// RecvLeave.

let ``recvLeave: a leaving peer is removed at once, with its age, and the round is abandoned`` () =
    let state, _ = Election.startElection (knowing 1 [ 2; 3 ])

    let next = FailureDetector.recvLeave 2 state

    Assert.Equal<Set<NodeId>>(set [ 1; 3 ], next.View)
    Assert.False(next.Age.ContainsKey 2)
    Assert.False next.Participant
    assertValid next

let ``recvLeave: a leave from an unknown node or from self changes nothing`` () =
    let state, _ = Election.startElection (knowing 1 [ 2 ])

    Assert.Equal(state, FailureDetector.recvLeave 7 state)
    Assert.Equal(state, FailureDetector.recvLeave 1 state)

// ---------------------------------------------------------------------------------------------
// Properties.

/// Something that happens to node 1 while we watch peer 2: other peers come and go.
type private Noise =
    | HeartbeatFrom of NodeId
    | LeaveOf of NodeId

let private noiseGen : Gen<Noise> =
    Gen.oneof [ Gen.choose (3, 8) |> Gen.map HeartbeatFrom; Gen.choose (3, 8) |> Gen.map LeaveOf ]

let private applyNoise (noise: Noise) (state: Coordination) =
    match noise with
    | HeartbeatFrom peer -> FailureDetector.recvHeartbeat peer 0 None state
    | LeaveOf peer -> FailureDetector.recvLeave peer state

/// Any history of node 1 before the watched heartbeat: heartbeats (of peer 2 among others),
/// leaves and ticks, so peer 2 may be new, known or previously suspected.
let private historyGen (k: int) : Gen<Choice<Noise, NodeId, unit> list> =
    Gen.frequency
        [ 3, noiseGen |> Gen.map Choice1Of3
          1, Gen.constant (Choice2Of3 2)
          2, Gen.constant (Choice3Of3()) ]
    |> Gen.listOf
    |> Gen.map (List.truncate (10 * k))

let private replay (k: int) (history: Choice<Noise, NodeId, unit> list) =
    history
    |> List.fold
        (fun state step ->
            match step with
            | Choice1Of3 noise -> applyNoise noise state
            | Choice2Of3 peer -> FailureDetector.recvHeartbeat peer 0 None state
            | Choice3Of3() -> FailureDetector.tick k state)
        (Coordination.init 1)

type private MissedCase =
    { K: int
      History: Choice<Noise, NodeId, unit> list
      /// Noise between the ticks: index i runs before tick i+1.
      Between: Noise list list }

let private missedCaseGen : Gen<MissedCase> =
    gen {
        let! k = Gen.choose (1, 6)
        let! history = historyGen k
        let! between = Gen.listOfLength k (Gen.listOf noiseGen |> Gen.map (List.truncate 4))
        return { K = k; History = history; Between = between }
    }

let ``property: for K in 1..6 a peer that heartbeated is kept through K-1 ticks and suspected at the K-th`` () =
    let property (case: MissedCase) =
        let k = case.K
        let mutable state = replay k case.History |> FailureDetector.recvHeartbeat 2 0 None
        assertValid state
        for missed in 1..k do
            for noise in case.Between[missed - 1] do
                state <- applyNoise noise state
            state <- FailureDetector.tick k state
            assertValid state
            if missed < k then
                Assert.True(state.View.Contains 2, $"peer 2 suspected after only {missed} of K={k} missed heartbeats")
                Assert.Equal(Some missed, state.Age.TryFind 2)
            else
                Assert.False(state.View.Contains 2, $"peer 2 still in view after K={k} missed heartbeats")
                Assert.False(state.Age.ContainsKey 2)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), Prop.forAll (Arb.fromGen missedCaseGen) property)

let ``property: a heartbeat never shrinks the view, and always puts its sender in it with age 0`` () =
    let caseGen =
        gen {
            let! k = Gen.choose (1, 6)
            let! history = historyGen k
            let! sender = Gen.choose (2, 8)
            let! epoch = Gen.choose (0, 5) |> Gen.map int64
            let! leader = Gen.optionOf (Gen.choose (1, 8))
            return k, history, sender, epoch, leader
        }

    let property (k, history, sender, epoch, leader) =
        let state = replay k history
        let next = FailureDetector.recvHeartbeat sender epoch leader state
        assertValid next
        Assert.True(Set.isSubset state.View next.View)
        Assert.Equal(Some 0, next.Age.TryFind sender)
        Assert.True(next.Epoch >= state.Epoch, "epochs never go back")

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), Prop.forAll (Arb.fromGen caseGen) property)

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "FailureDetector" [
        testCase "init: a node starts alone in epoch 0 with no leader and no round"
            ``init: a node starts alone in epoch 0 with no leader and no round``
        testCase "recvHeartbeat: a heartbeat from an unknown node adds it to the view with age 0"
            ``recvHeartbeat: a heartbeat from an unknown node adds it to the view with age 0``
        testCase "recvHeartbeat: a heartbeat from an unknown node abandons the running round"
            ``recvHeartbeat: a heartbeat from an unknown node abandons the running round``
        testCase "recvHeartbeat: a heartbeat from a known node keeps the running round"
            ``recvHeartbeat: a heartbeat from a known node keeps the running round``
        testCase "recvHeartbeat: a heartbeat from a known node resets its age to 0"
            ``recvHeartbeat: a heartbeat from a known node resets its age to 0``
        testCase "recvHeartbeat: a leader of a newer epoch is adopted, ending any round"
            ``recvHeartbeat: a leader of a newer epoch is adopted, ending any round``
        testCase "recvHeartbeat: a newer epoch without a leader is not adopted"
            ``recvHeartbeat: a newer epoch without a leader is not adopted``
        testCase "recvHeartbeat: a leader of an older epoch changes neither leader nor epoch"
            ``recvHeartbeat: a leader of an older epoch changes neither leader nor epoch``
        testCase "recvHeartbeat: a different leader of the same epoch does not replace the leader followed"
            ``recvHeartbeat: a different leader of the same epoch does not replace the leader followed``
        testCase "recvHeartbeat: the leader of this epoch is adopted while no leader is known"
            ``recvHeartbeat: the leader of this epoch is adopted while no leader is known``
        testCase "recvHeartbeat: a node's own heartbeat is ignored"
            ``recvHeartbeat: a node's own heartbeat is ignored``
        testCase "tick: ages every peer by one"
            ``tick: ages every peer by one``
        testCase "tick: a node alone stays alone and unchanged"
            ``tick: a node alone stays alone and unchanged``
        testCase "tick: the K-th missed heartbeat removes the peer from view and age, and abandons the round"
            ``tick: the K-th missed heartbeat removes the peer from view and age, and abandons the round``
        testCase "tick: suspecting the leader keeps its name until an election replaces it"
            ``tick: suspecting the leader keeps its name until an election replaces it``
        testCase "recvLeave: a leaving peer is removed at once, with its age, and the round is abandoned"
            ``recvLeave: a leaving peer is removed at once, with its age, and the round is abandoned``
        testCase "recvLeave: a leave from an unknown node or from self changes nothing"
            ``recvLeave: a leave from an unknown node or from self changes nothing``
        testCase "property: for K in 1..6 a peer that heartbeated is kept through K-1 ticks and suspected at the K-th"
            ``property: for K in 1..6 a peer that heartbeated is kept through K-1 ticks and suspected at the K-th``
        testCase "property: a heartbeat never shrinks the view, and always puts its sender in it with age 0"
            ``property: a heartbeat never shrinks the view, and always puts its sender in it with age 0``
    ]
