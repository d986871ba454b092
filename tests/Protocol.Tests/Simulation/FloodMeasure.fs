/// A micro-measurement of replicated throughput, without sockets: clients on every node of a
/// 3-node cluster post to one room in bursts (as many as the shell lets wait, maxPostsInFlight per
/// node), and the peer messages are delivered in the order sent until the cluster is quiet. It
/// prints messages/s through Node.step and the peer frames per message; it asserts nothing
/// about time. Run it with
///     dotnet run --project tests/Protocol.Tests -c Release -- flood [posts] [burst]
module FormalChat.Protocol.Tests.FloodMeasure

open System.Collections.Generic
open System.Diagnostics
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.Tests.Simulation.Nodes

let private config = { ProtocolConfig.defaults with SuspectAfter = 3; Rebalance = None; HistoryOnJoin = 3 }

/// Delivers every peer message in flight, and those they cause, in the order sent.
let private drain (states: Dictionary<NodeId, NodeState>) (inFlight: Queue<NodeId * PeerMessage>) (count: int ref) (shown: int ref) =
    let delivery: NodeDriver.Delivery<unit> =
        { NodeDriver.ignoring with
            Peer = fun _ dest message () -> inFlight.Enqueue((dest, message))
            Multicast = fun from message () -> for KeyValue(other, _) in states do if other <> from then inFlight.Enqueue((other, message))
            Reply =
                fun _ _ reply () ->
                    match reply with
                    | Message _ -> shown.Value <- shown.Value + 1
                    | _ -> () }
    // Node.step alone, without NodeDriver.step's invariant checks: this measures the node, not the checks.
    let apply (id: NodeId) (event: Event) =
        let next, effects = Node.step config states[id] event
        states[id] <- next
        NodeDriver.carryOut delivery id effects ()
    while inFlight.Count > 0 do
        let target, message = inFlight.Dequeue()
        count.Value <- count.Value + 1
        apply target (PeerMessageReceived message)
    apply

let run (posts: int) (burst: int) : int =
    let net =
        threeWithUsers config
        |> request 1 10 (Join "#dev")
        |> request 2 20 (Join "#dev")
        |> request 3 30 (Join "#dev")
        |> settle
        |> tickAll
    let states = Dictionary<NodeId, NodeState>()
    for KeyValue(id, state) in net.States do states[id] <- state
    let inFlight = Queue<NodeId * PeerMessage>()
    let frames = ref 0
    let shown = ref 0
    let apply = drain states inFlight frames shown
    let clock = Stopwatch.StartNew()
    let mutable sent = 0
    while sent < posts do
        for node in [ 1; 2; 3 ] do
            for _ in 1 .. min burst (posts - sent) do
                sent <- sent + 1
                apply node (ClientRequested(int64 node * 10L, Say("#dev", $"message {sent}", int64 sent)))
        drain states inFlight frames shown |> ignore
    let seconds = clock.Elapsed.TotalSeconds
    let committed = (states[net.States[3].Placements[(RoomName "#dev")].Owner].Histories[(RoomName "#dev")]).LastSeq
    printfn "flood: %d posts in bursts of %d per node, 3 nodes: %.2f s, %.0f messages/s, %.1f peer frames per message, %d committed, %d shown to the 3 members"
        posts burst seconds (float posts / seconds) (float frames.Value / float posts) committed shown.Value
    if committed = int64 posts then 0 else 1
