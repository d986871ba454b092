/// SpecTrace.actionsOf (--trace-file, spec/TraceFormalChat.tla): the spec actions derived from a
/// step of the real Node.step, in init / act / check parts.
module FormalChat.Protocol.Tests.SpecTraceTests

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.SpecTrace
open System.Text.Json.Nodes
open Xunit

let private config = ProtocolConfig.defaults

let private infoOf (id: NodeId) : NodeInfo =
    { Id = id
      ClientEndpoint = { Host = "127.0.0.1"; Port = 5000 + id }
      PeerEndpoint = { Host = "127.0.0.1"; Port = 6000 + id } }

let private heartbeatFrom (id: NodeId) (epoch: Epoch) (leader: NodeId option) =
    PeerMessageReceived(HeartbeatSent { From = infoOf id; Epoch = epoch; Leader = leader; Load = Load.zero; Known = [] })

/// One real step and the actions derived from it.
let private stepped (state: NodeState) (event: Event) =
    let after, _ = Node.step config state event
    after, SpecTrace.actionsOf config.SuspectAfter event state.Coordination after.Coordination

let private message (kind: string) (``to``: NodeId) (id: NodeId) (epoch: Epoch) : SpecMessage =
    { Type = kind; To = ``to``; Id = id; Epoch = epoch }

let private names (actions: SpecTrace.SpecAction list) = actions |> List.map _.Action

/// Ticks node `id`, alone, until a step starts an election; returns that step's actions.
let private ticksUntilElected (id: NodeId) =
    let rec loop (state: NodeState) remaining =
        let after, actions = stepped state Ticked
        if after.Coordination.Epoch > state.Coordination.Epoch || remaining = 0 then after, actions
        else loop after (remaining - 1)
    loop (NodeState.init (infoOf id)) 10

let ``a tick of a node alone that elects itself is Tick, StartElection and the receipt of its own messages`` () =
    let after, actions = ticksUntilElected 4

    Assert.Equal<string list>([ "Tick"; "StartElection"; "RecvElection"; "RecvLeader" ], names actions)
    Assert.Equal(Some 4, after.Coordination.Leader)
    Assert.Equal(after.Coordination, (List.last actions).After)
    let start = actions[1]
    Assert.Equal<SpecMessage list>([ message "election" 4 4 1 ], start.Sent)
    Assert.Equal(Some(message "election" 4 4 1), actions[2].Received)

let ``a plain tick is one Tick action`` () =
    let state = NodeState.init (infoOf 2)

    let _, actions = stepped state Ticked

    Assert.Equal<string list>([ "Tick" ], names actions)

let ``a heartbeat is RecvHeartbeat with the sender, epoch and leader it carried, and the age restarts`` () =
    let state, _ = stepped (NodeState.init (infoOf 1)) (heartbeatFrom 2 0 None)
    let state, _ = stepped state Ticked

    let after, actions = stepped state (heartbeatFrom 2 3 (Some 2))

    Assert.Equal<string list>([ "RecvHeartbeat" ], names actions)
    Assert.Equal(Some(2, 3L, 2), actions.Head.Heartbeat)
    Assert.Equal(0, actions.Head.After.Age[2])
    Assert.Equal(after.Coordination, actions.Head.After)

let ``an election message is RecvElection with the message and what it forwards`` () =
    let state, _ = stepped (NodeState.init (infoOf 1)) (heartbeatFrom 2 0 None)
    let state, _ = stepped state (heartbeatFrom 3 0 None)

    let _, actions = stepped state (PeerMessageReceived(Election { Candidate = 3; Epoch = 1L }))

    Assert.Equal<string list>([ "RecvElection" ], names actions)
    Assert.Equal(Some(message "election" 1 3 1), actions.Head.Received)
    Assert.Equal<SpecMessage list>([ message "election" 2 3 1 ], actions.Head.Sent)

let ``a leave is RecvLeave, and shutting down is Leave with a leave message to each peer`` () =
    let state, _ = stepped (NodeState.init (infoOf 1)) (heartbeatFrom 2 0 None)

    let _, received = stepped state (PeerMessageReceived(LeaveAnnounced 2))
    let _, left = stepped state ShutdownRequested

    Assert.Equal<string list>([ "RecvLeave" ], names received)
    Assert.Equal<string list>([ "Leave" ], names left)
    Assert.Equal<SpecMessage list>([ message "leave" 2 1 0 ], left.Head.Sent)

let ``a client event takes no spec action, and a change no action explains is Unexplained`` () =
    let state = NodeState.init (infoOf 1)
    let changed = { state.Coordination with Epoch = 7L }

    Assert.Empty(SpecTrace.actionsOf 3 (ClientDisconnected 5L) state.Coordination state.Coordination)
    Assert.Equal<string list>([ "Unexplained" ], names (SpecTrace.actionsOf 3 (ClientDisconnected 5L) state.Coordination changed))

let ``the last action carries the real state after the step, so a node that deviates shows it`` () =
    let state, _ = stepped (NodeState.init (infoOf 1)) (heartbeatFrom 2 0 None)
    let state, _ = stepped state Ticked
    let wrong = { state.Coordination with Age = state.Coordination.Age.Add(2, 1) }

    let actions = SpecTrace.actionsOf 3 (heartbeatFrom 2 0 None) state.Coordination wrong

    Assert.Equal(1, (List.last actions).After.Age[2])

let ``a trace line is one JSON object with the fields TraceFormalChat.tla reads`` () =
    let _, actions = ticksUntilElected 4

    let line = JsonNode.Parse(SpecTrace.toJsonLine 9L 123L actions[2])
    let field (path: string) =
        let step (node: JsonNode option) (name: string) = node |> Option.bind (fun node -> Option.ofObj node[name])
        match path.Split '.' |> Array.fold step (Option.ofObj line) with
        | Some found -> found.ToJsonString()
        | None -> "missing"

    Assert.Equal<string list>(
        [ "\"RecvElection\""; "4"; "9"; "\"election\""; "4"; "1"; "4"; "false"; "[{\"type\":\"leader\",\"to\":4,\"id\":4,\"epoch\":1}]"; "[4]"; "[]" ],
        [ for path in [ "action"; "node"; "step"; "msg.type"; "msg.id"; "epoch"; "leader"; "participant"; "sent"; "view"; "age" ] -> field path ])

[<Tests>]
let tests =
    testList "SpecTrace" [
        testCase "a tick of a node alone that elects itself is Tick, StartElection and the receipt of its own messages"
            ``a tick of a node alone that elects itself is Tick, StartElection and the receipt of its own messages``
        testCase "a plain tick is one Tick action" ``a plain tick is one Tick action``
        testCase "a heartbeat is RecvHeartbeat with the sender, epoch and leader it carried, and the age restarts"
            ``a heartbeat is RecvHeartbeat with the sender, epoch and leader it carried, and the age restarts``
        testCase "an election message is RecvElection with the message and what it forwards"
            ``an election message is RecvElection with the message and what it forwards``
        testCase "a leave is RecvLeave, and shutting down is Leave with a leave message to each peer"
            ``a leave is RecvLeave, and shutting down is Leave with a leave message to each peer``
        testCase "a client event takes no spec action, and a change no action explains is Unexplained"
            ``a client event takes no spec action, and a change no action explains is Unexplained``
        testCase "the last action carries the real state after the step, so a node that deviates shows it"
            ``the last action carries the real state after the step, so a node that deviates shows it``
        testCase "a trace line is one JSON object with the fields TraceFormalChat.tla reads"
            ``a trace line is one JSON object with the fields TraceFormalChat.tla reads``
    ]
