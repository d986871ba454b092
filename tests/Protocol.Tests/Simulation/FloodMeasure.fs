/// A micro-measurement of throughput through Node.step, without sockets, in two shapes:
/// - `flood`: clients on every node of a 3-node cluster post to one room in bursts (as many as
///   the shell lets wait, maxPostsInFlight per node), and the peer messages are delivered in the
///   order sent until the cluster is quiet;
/// - `flood1`: the benchmark's flood10 on one node: one sender, 10 members in the room.
/// Each prints messages/s, the process's CPU time per message (steadier than wall time on a
/// shared machine; it includes the GC's threads), the bytes allocated per message on this thread
/// (the core and this driver, which only counts) and, for 3 nodes, the peer frames per message;
/// it asserts nothing about time. Run them with
///     dotnet run --project tests/Protocol.Tests -c Release -- flood [posts] [burst]
///     dotnet run --project tests/Protocol.Tests -c Release -- flood1 [posts] [burst]
module FormalChat.Protocol.Tests.FloodMeasure

open System
open System.Collections.Generic
open System.Diagnostics
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.Tests.Simulation.Nodes

let private config = { ProtocolConfig.defaults with SuspectAfter = 3; Rebalance = None; HistoryOnJoin = 3 }

let private room = RoomName "#dev"

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

/// Posts `posts` messages from `senders` (node, client) in turn, `burst` each before the peer
/// messages are delivered; prints the rates and returns 0 when every post was committed.
let private measure (name: string) (net: Net) (senders: (NodeId * ClientId) list) (posts: int) (burst: int) : int =
    let states = Dictionary<NodeId, NodeState>()
    for KeyValue(id, state) in net.States do states[id] <- state
    let inFlight = Queue<NodeId * PeerMessage>()
    let frames = ref 0
    let shown = ref 0
    let apply = drain states inFlight frames shown
    let texts = Array.init posts (fun index -> $"message {index + 1}")
    GC.Collect()
    let allocatedBefore = GC.GetAllocatedBytesForCurrentThread()
    let cpuBefore = Process.GetCurrentProcess().TotalProcessorTime
    let clock = Stopwatch.StartNew()
    let mutable sent = 0
    while sent < posts do
        for node, client in senders do
            for _ in 1 .. min burst (posts - sent) do
                sent <- sent + 1
                apply node (ClientRequested(client, Say(room.Value, texts[sent - 1], int64 sent)))
        drain states inFlight frames shown |> ignore
    let seconds = clock.Elapsed.TotalSeconds
    let cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore
    let allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore
    let owner = states[fst senders.Head].Placements[room].Owner
    let committed = states[owner].Histories[room].LastSeq
    printfn "%s: %d posts in bursts of %d per sender, %d node(s): %.2f s, %.0f messages/s, %.1f µs CPU per message, %.0f bytes allocated per message, %.1f peer frames per message, %d committed, %d shown"
        name posts burst states.Count seconds (float posts / seconds) (cpu.TotalMicroseconds / float posts) (float allocated / float posts) (float frames.Value / float posts) committed shown.Value
    if committed = int64 posts then 0 else 1

/// Three nodes, a member of #dev on each, every one of them sending.
let run (posts: int) (burst: int) : int =
    let net =
        threeWithUsers config
        |> request 1 10 (Join "#dev")
        |> request 2 20 (Join "#dev")
        |> request 3 30 (Join "#dev")
        |> settle
        |> tickAll
    measure "flood" net [ 1, 10L; 2, 20L; 3, 30L ] posts burst

/// One node, 10 members in #dev, the first of them sending (the benchmark's flood10).
let runOneNode (posts: int) (burst: int) : int =
    let clients = [ 1L .. 10L ]
    let net =
        clients
        |> List.fold (fun net client -> net |> connect 1 client $"user{client}" |> settle) (formed config [ 1 ])
        |> fun net -> clients |> List.fold (fun net client -> request 1 client (Join "#dev") net) net
        |> settle
        |> tickAll
    measure "flood1" net [ 1, 1L ] posts burst
