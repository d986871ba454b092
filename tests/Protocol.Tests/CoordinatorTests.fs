/// Coordinator.step: the coordination sub-protocol's events. Node.fs reacts to these events
/// where it used to compare the Coordination before and after a step, so the property here is
/// that the events say exactly what such a comparison would find, for every action.
module FormalChat.Protocol.Tests.CoordinatorTests

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.Coordinator
open FsCheck
open FsCheck.FSharp
open Xunit

let private withView = ElectionTests.withView

let ``tick: a peer that missed K heartbeats raises a suspicion and leaves the view`` () =
    let state = { withView 2 [ 1; 3 ] with Age = Map.ofList [ 1, 2; 3, 0 ] }
    let after, sent, events = step (Tick 3) state
    Assert.Equal<Set<NodeId>>(set [ 2; 3 ], after.View)
    Assert.Empty sent
    Assert.Equal<CoordinationEvent list>([ SuspicionRaised 1; ViewChanged(Set.empty, set [ 1 ]) ], events)

let ``recvHeartbeat: an unknown node joins the view and its newer leader is followed`` () =
    let state = { withView 1 [] with Leader = Some 1; Epoch = 1L }
    let after, _, events = step (RecvHeartbeat(4, 2L, Some 4)) state
    Assert.Equal(Some 4, after.Leader)
    Assert.Equal<CoordinationEvent list>([ ViewChanged(set [ 4 ], Set.empty); LeaderChanged(4, 2L, Some 1) ], events)

let ``recvLeave: a peer in view is reported as leaving, one not in view changes nothing`` () =
    let state = withView 1 [ 2 ]
    let _, _, events = step (RecvLeave 2) state
    Assert.Equal<CoordinationEvent list>([ LeaveReceived 2; ViewChanged(Set.empty, set [ 2 ]) ], events)
    Assert.Equal<CoordinationEvent list>([], (let _, _, events = step (RecvLeave 5) state in events))

let ``startElection then recvElection: a node alone starts a round and wins it when its candidacy comes back`` () =
    let started, sent, events = step StartElection (withView 3 [])
    Assert.Equal<CoordinationEvent list>([ ElectionStarted 1L ], events)
    let message = match sent with [ { Message = Election election } ] -> election | _ -> failwith $"unexpected %A{sent}"
    let _, _, events = step (RecvElection message) started
    Assert.Equal<CoordinationEvent list>([ LeaderChanged(3, 1L, None) ], events)

let private coordinationGen = ElectionTests.coordinationGen

let private actionGen : Gen<CoordinationAction> =
    let node = Gen.choose (1, 9)
    let epoch = Gen.choose (0, 7) |> Gen.map int64
    Gen.oneof
        [ Gen.choose (1, 6) |> Gen.map Tick
          Gen.map3 (fun from epoch leader -> RecvHeartbeat(from, epoch, leader)) node epoch (Gen.optionOf node)
          node |> Gen.map RecvLeave
          Gen.constant StartElection
          Gen.map2 (fun candidate epoch -> RecvElection { Candidate = candidate; Epoch = epoch }) node epoch
          Gen.map2 (fun leader epoch -> RecvLeader { Leader = leader; Epoch = epoch }) node epoch ]

/// The events a comparison of the states before and after finds (what Node.fs used to compute).
let private eventsByDiff (action: CoordinationAction) (before: Coordination) (after: Coordination) : CoordinationEvent list =
    let gained = Set.difference after.View before.View
    let lost = Set.difference before.View after.View
    [ match action with
      | Tick _ -> for peer in lost -> SuspicionRaised peer
      | RecvLeave node when not lost.IsEmpty -> yield LeaveReceived node
      | _ -> ()
      if not (gained.IsEmpty && lost.IsEmpty) then yield ViewChanged(gained, lost)
      if action = StartElection && after.Epoch > before.Epoch then yield ElectionStarted after.Epoch
      match after.Leader with
      | Some leader when (after.Leader, after.Epoch) <> (before.Leader, before.Epoch) -> yield LeaderChanged(leader, after.Epoch, before.Leader)
      | _ -> () ]

let ``property: the events of every action say exactly what changed between the states`` () =
    let property (state: Coordination, action: CoordinationAction) =
        let after, _, events = step action state
        Assert.Equal<CoordinationEvent list>(eventsByDiff action state after, events)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(3000), Prop.forAll (Arb.fromGen (Gen.zip coordinationGen actionGen)) property)

let ``property: the step's state and sends are the spec transition's`` () =
    let transition action state =
        match action with
        | Tick k -> FailureDetector.tick k state, []
        | RecvHeartbeat(from, epoch, leader) -> FailureDetector.recvHeartbeat from epoch leader state, []
        | RecvLeave from -> FailureDetector.recvLeave from state, []
        | StartElection -> Election.startElection state
        | RecvElection message -> Election.recvElection message state
        | RecvLeader message -> Election.recvLeader message state
    let property (state: Coordination, action: CoordinationAction) =
        let after, sent, _ = step action state
        Assert.Equal((after, sent), transition action state)

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(1000), Prop.forAll (Arb.fromGen (Gen.zip coordinationGen actionGen)) property)

[<Tests>]
let tests =
    testList "Coordinator" [
        testCase "tick: a peer that missed K heartbeats raises a suspicion and leaves the view"
            ``tick: a peer that missed K heartbeats raises a suspicion and leaves the view``
        testCase "recvHeartbeat: an unknown node joins the view and its newer leader is followed"
            ``recvHeartbeat: an unknown node joins the view and its newer leader is followed``
        testCase "recvLeave: a peer in view is reported as leaving, one not in view changes nothing"
            ``recvLeave: a peer in view is reported as leaving, one not in view changes nothing``
        testCase "startElection then recvElection: a node alone starts a round and wins it when its candidacy comes back"
            ``startElection then recvElection: a node alone starts a round and wins it when its candidacy comes back``
        testCase "property: the events of every action say exactly what changed between the states"
            ``property: the events of every action say exactly what changed between the states``
        testCase "property: the step's state and sends are the spec transition's"
            ``property: the step's state and sends are the spec transition's``
    ]
