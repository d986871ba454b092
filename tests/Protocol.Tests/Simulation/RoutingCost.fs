/// A measurement, not a timed test: how many peer messages one chat message costs, by cluster
/// size, when the room's members are on a few nodes (issue 10, "Send room traffic only where it
/// is needed"). It prints one line per size; it asserts only that the cost does not grow with
/// nodes that have no member in the room.
module FormalChat.Protocol.Tests.RoutingCost

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.Tests.Simulation
open Xunit

let private config = { ProtocolConfig.defaults with SuspectAfter = 3; Rebalance = None }

let private room: RoomName = (RoomName "#dev")

/// Nodes whose users are members of #dev; the other nodes have no user at all.
let private memberNodes = [ 1; 2; 3 ]

/// Delivers everything in flight, oldest first, and counts the peer messages by kind.
let private settleCounting (net: Nodes.Net) : Nodes.Net * Map<string, int> =
    let kind (message: PeerMessage) =
        match message with
        | RoomPosted _ -> "post"
        | ReplicaAppended _ -> "append"
        | ReplicaStored _ -> "stored"
        | RoomSequenced _ -> "sequenced"
        | other -> (sprintf "%A" other).Split(' ')[0]
    let rec loop (net: Nodes.Net) (counts: Map<string, int>) =
        match net.InFlight with
        | [] -> net, counts
        | first :: rest ->
            let counts = counts.Add(kind first.Message, (counts.TryFind(kind first.Message) |> Option.defaultValue 0) + 1)
            loop (Nodes.apply first.To (PeerMessageReceived first.Message) { net with InFlight = rest }) counts
    loop net Map.empty

/// A formed cluster of `size` nodes, one user on each member node, all of them in #dev, the room
/// placed and backed up, nothing in flight.
let private clusterOf (size: int) : Nodes.Net =
    let net = Nodes.formed config [ 1..size ]
    let net =
        memberNodes
        |> List.fold (fun net node -> Nodes.connect node (int64 (node * 10)) $"user{node}" net |> Nodes.settle) net
    let net =
        memberNodes
        |> List.fold (fun net node -> Nodes.request node (int64 (node * 10)) (Join room.Value) net |> Nodes.settle) net
    net |> Nodes.tickAll |> Nodes.tickAll

/// Peer messages per chat message (posted on the first member node), averaged over `count`.
let private costAt (size: int) (count: int) : float * Map<string, int> * string =
    let mutable net = clusterOf size
    let owner = net.States[1].Placements[room].Owner
    let roles = $"owner {owner}, backup {net.States[owner].Backups[room].Backup}, leader {size}"
    let mutable total = Map.empty
    for n in 1..count do
        let posted = Nodes.request 1 10L (Say(room.Value, $"message {n}", int64 n)) net
        let settled, counts = settleCounting posted
        net <- settled
        total <- counts |> Map.fold (fun (total: Map<string, int>) kind c -> total.Add(kind, (total.TryFind kind |> Option.defaultValue 0) + c)) total
    let messages = total |> Map.fold (fun sum _ c -> sum + c) 0
    Assert.Equal(count, Nodes.shown 20L room net |> List.length)
    float messages / float count, total, roles

let ``peer messages per chat message at 3, 8, 16 and 32 nodes, members on 3 of them`` () =
    let count = 10
    let costs =
        [ for size in [ 3; 8; 16; 32 ] ->
              let perMessage, kinds, roles = costAt size count
              printfn "routing: %2d nodes, members on nodes %A (%s): %5.1f peer messages per chat message (%s)"
                  size memberNodes roles perMessage
                  (kinds |> Seq.map (fun (KeyValue(kind, c)) -> $"{kind} {float c / float count:F1}") |> String.concat ", ")
              size, perMessage ]
    // Post, append, stored, and one sequenced to each other member node, the backup and the
    // leader: no more at 32 nodes than at 8.
    Assert.True(snd costs[3] <= snd costs[1] + 0.01, $"the cost grows with nodes that have no member: {costs}")

[<Tests>]
let tests =
    testList "RoutingCost" [
        testCase "peer messages per chat message at 3, 8, 16 and 32 nodes, members on 3 of them"
            ``peer messages per chat message at 3, 8, 16 and 32 nodes, members on 3 of them``
    ]
