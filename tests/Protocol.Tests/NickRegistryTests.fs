/// The nickname registry (spec/NickRegistry.tla: ClaimNick, RecvClaim, RecvGrant, RecvRefusal,
/// FollowRegistrar, RecvReport, ReleaseNick), per function in init / act / check parts, and a
/// property that races two claims of one nickname across leader changes with messages delivered
/// in random order (FIFO per link, as TCP): never two winners.
module FormalChat.Protocol.Tests.NickRegistryTests

open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NickRegistry

let private context (self: NodeId) (held: (string * string) list) : Context =
    { Self = self; View = set [ 1; 2; 3 ]; Decides = true; Held = fun () -> held |> List.map (fun (nick, session) -> Nick nick, session) }

let private term epoch leader : NickTerm = { Epoch = epoch; Leader = leader }

let private waiting (client: ClientId) (nick: string) (session: string) : Waiting =
    { Client = client
      Nick = Nick nick
      Hello = { Nick = nick; Session = None; Resume = []; Password = None }
      Session = session
      HistoryOnJoin = 0
      Term = term 0L 0
      TicksWaited = 0 }

/// Registrar node 3 in term (1, 3), with every node's report in.
let private readyRegistrar (reports: (NodeId * (string * string) list) list) : State =
    let state, _ = followRegistrar (context 3 []) (term 1L 3) empty
    let reportOf node = reports |> List.tryFind (fst >> (=) node) |> Option.map snd |> Option.defaultValue [] |> List.map (fun (nick, session) -> Nick nick, session)
    [ 1; 2; 3 ] |> List.fold (fun state node -> recvReport node (term 1L 3) (reportOf node) state) state

let private claim nick session node : NickClaim = { Nick = Nick nick; Session = session; Previous = None; Node = node; Term = term 1L 3 }

let private sent (outputs: Output list) : PeerMessage list =
    outputs |> List.choose (function Send sent -> Some sent.Message | _ -> None)

let ``followRegistrar: a node reports what it holds to the new leader, then claims again what waits`` () =
    let state, _ = claimNick (context 1 []) (waiting 7L "alice" "s1") empty

    let state, outputs = followRegistrar (context 1 [ "bob", "s9" ]) (term 1L 3) state

    Expect.equal state.Following (Some(term 1L 3)) "follows the new term"
    Expect.equal (sent outputs) [ NicksReported(1, term 1L 3, [ Nick "bob", "s9" ]); NickClaimed(claim "alice" "s1" 1) ] "report first, then the claim"

let ``recvClaim: a registrar without every report drops the claim`` () =
    let state, _ = followRegistrar (context 3 []) (term 1L 3) empty
    let state = recvReport 3 (term 1L 3) [] state

    let after, outputs = recvClaim (context 3 []) (claim "alice" "s1" 1) state

    Expect.equal after.Registry state.Registry "nothing registered"
    Expect.isEmpty (sent outputs) "no answer: the claimant asks again"

let ``recvClaim: a free nickname is granted and registered`` () =
    let state, outputs = recvClaim (context 3 []) (claim "alice" "s1" 1) (readyRegistrar [])

    Expect.equal state.Registry[Nick "alice"] { Node = 1; Session = "s1" } "registered to node 1"
    Expect.equal (sent outputs) [ NickGranted(claim "alice" "s1" 1) ] "granted"

let ``recvClaim: a nickname a live node holds for another session is refused, naming the holder`` () =
    let state, outputs = recvClaim (context 3 []) (claim "alice" "s2" 2) (readyRegistrar [ 1, [ "alice", "s1" ] ])

    Expect.equal state.Registry[Nick "alice"] { Node = 1; Session = "s1" } "still node 1's"
    Expect.equal (sent outputs) [ NickRefused(claim "alice" "s2" 2, 1) ] "refused"

let ``recvClaim: the same session on another node is the user resuming there: the nickname moves`` () =
    let state, outputs = recvClaim (context 3 []) (claim "alice" "s1" 2) (readyRegistrar [ 1, [ "alice", "s1" ] ])

    Expect.equal state.Registry[Nick "alice"] { Node = 2; Session = "s1" } "now node 2's"
    Expect.equal (sent outputs) [ NickGranted(claim "alice" "s1" 2) ] "granted"

let ``recvClaim: a resume proving the held session takes the nickname under its rotated token`` () =
    let resume = { claim "alice" "s2" 2 with Previous = Some "s1" }
    let state, outputs = recvClaim (context 3 []) resume (readyRegistrar [ 1, [ "alice", "s1" ] ])

    Expect.equal state.Registry[Nick "alice"] { Node = 2; Session = "s2" } "now node 2's, under the new token"
    Expect.equal (sent outputs) [ NickGranted resume ] "granted"

let ``recvClaim: a claim of another term is dropped`` () =
    let _, outputs = recvClaim (context 3 []) { claim "alice" "s1" 1 with Term = term 0L 2 } (readyRegistrar [])

    Expect.isEmpty (sent outputs) "dropped"

let ``recvGrant: the waiting hello is welcomed; an older term's grant is not`` () =
    let state, _ = followRegistrar (context 1 []) (term 1L 3) empty
    let state, _ = claimNick (context 1 []) (waiting 7L "alice" "s1") state

    let _, stale = recvGrant (context 1 []) { claim "alice" "s1" 1 with Term = term 0L 2 } state
    let after, outputs = recvGrant (context 1 []) (claim "alice" "s1" 1) state

    Expect.isEmpty stale "an older term's grant does nothing"
    Expect.equal (outputs |> List.map (function Welcome w -> Some w.Client | _ -> None)) [ Some 7L ] "welcomed"
    Expect.isEmpty after.Waiting "no longer waiting"

let ``recvGrant: a grant nobody waits for is given back`` () =
    let state, _ = followRegistrar (context 1 []) (term 1L 3) empty

    let _, outputs = recvGrant (context 1 []) (claim "alice" "s1" 1) state

    Expect.equal (sent outputs) [ NickReleased(claim "alice" "s1" 1) ] "released"

let ``recvRefusal: the waiting client is told the nickname is taken`` () =
    let state, _ = followRegistrar (context 1 []) (term 1L 3) empty
    let state, _ = claimNick (context 1 []) (waiting 7L "alice" "s1") state

    let _, outputs = recvRefusal (claim "alice" "s1" 1) 2 state

    Expect.equal (outputs |> List.map (function Refuse(w, code, _) -> Some(w.Client, code) | _ -> None)) [ Some(7L, NickTaken) ] "refused"

let ``recvRelease: only the holder's own entry goes`` () =
    let state = readyRegistrar [ 1, [ "alice", "s1" ] ]

    Expect.equal (recvRelease (claim "alice" "s2" 1) state).Registry state.Registry "another session: kept"
    Expect.equal (recvRelease (claim "alice" "s1" 2) state).Registry state.Registry "another node: kept"
    Expect.isEmpty (recvRelease (claim "alice" "s1" 1) state).Registry "the holder's: gone"

let ``tick: a hello that waited too long is refused with try-again; a registrar asks for missing reports`` () =
    let state, _ = followRegistrar (context 3 []) (term 1L 3) empty
    let state, _ = claimNick (context 3 []) (waiting 7L "alice" "s1") state

    let state, first = tick (context 3 []) 1 state
    let _, second = tick (context 3 []) 1 state

    Expect.containsAll (sent first) [ NicksRequested(term 1L 3); NickClaimed { claim "alice" "s1" 3 with Term = term 1L 3 } ] "asks and claims again"
    Expect.equal (second |> List.choose (function Refuse(w, code, _) -> Some(w.Client, code) | _ -> None)) [ 7L, TryAgain ] "then gives up"

// ---------------------------------------------------------------------------------------------
// Two claims of one nickname, racing leader changes.

type private Cluster =
    { States: Map<NodeId, State>
      Held: Map<NodeId, Set<Nick * string>>
      Links: Map<NodeId * NodeId, PeerMessage list> }

let private nodes = [ 1; 2; 3 ]

let private contextIn (cluster: Cluster) (node: NodeId) : Context =
    { Self = node; View = set nodes; Decides = true; Held = fun () -> Set.toList cluster.Held[node] }

let private apply (node: NodeId) (event: Event) (cluster: Cluster) : Cluster =
    let state, outputs = step (contextIn cluster node) cluster.States[node] event
    outputs
    |> List.fold
        (fun cluster output ->
            match output with
            | Send sent ->
                let link = node, sent.To
                { cluster with Links = cluster.Links.Add(link, (cluster.Links.TryFind link |> Option.defaultValue []) @ [ sent.Message ]) }
            | Welcome waiting -> { cluster with Held = cluster.Held.Add(node, cluster.Held[node].Add(waiting.Nick, waiting.Session)) }
            | Refuse _
            | Note _ -> cluster)
        { cluster with States = cluster.States.Add(node, state) }

let private deliver (from: NodeId, target: NodeId) (cluster: Cluster) : Cluster =
    match cluster.Links.TryFind(from, target) with
    | Some(message :: rest) -> apply target (Received message) { cluster with Links = cluster.Links.Add((from, target), rest) }
    | _ -> cluster

let private winners (cluster: Cluster) : Set<string> =
    cluster.Held |> Seq.collect (fun (KeyValue(_, held)) -> held |> Seq.filter (fst >> (=) (Nick "alice")) |> Seq.map snd) |> Set.ofSeq

let private race (seed: int) : int =
    let random = System.Random seed
    let mutable cluster =
        { States = nodes |> List.map (fun n -> n, empty) |> Map.ofList
          Held = nodes |> List.map (fun n -> n, Set.empty) |> Map.ofList
          Links = Map.empty }
    let followAll epoch leader = for node in nodes do cluster <- apply node (LeaderFollowed(term epoch leader)) cluster
    followAll 1L 3
    cluster <- apply 1 (HelloReceived(waiting 1L "alice" "s1")) cluster
    cluster <- apply 2 (HelloReceived(waiting 2L "alice" "s2")) cluster
    let mutable mostWinners = 0
    for stepNumber in 1..200 do
        match random.Next 10 with
        | 0 when stepNumber < 100 ->
            // A leader change reaches one node at a time, as announcements travel the ring.
            let leader = nodes[random.Next nodes.Length]
            let epoch = (cluster.States |> Seq.map (fun (KeyValue(_, s)) -> s.Following |> Option.map _.Epoch |> Option.defaultValue 0L) |> Seq.max) + 1L
            cluster <- apply (nodes[random.Next nodes.Length]) (LeaderFollowed(term epoch leader)) cluster
            cluster <- apply leader (LeaderFollowed(term epoch leader)) cluster
        | 1 -> cluster <- apply (nodes[random.Next nodes.Length]) (Ticked 1000) cluster
        | _ ->
            let busy = cluster.Links |> Map.filter (fun _ messages -> not messages.IsEmpty) |> Map.keys |> Array.ofSeq
            if busy.Length > 0 then cluster <- deliver busy[random.Next busy.Length] cluster
        mostWinners <- max mostWinners (winners cluster).Count
    mostWinners

let ``property: two users claiming one nickname across leader changes never both win`` () =
    for seed in 1..300 do
        Expect.isLessThanOrEqual (race seed) 1 $"seed {seed}: two users hold alice"

[<Tests>]
let tests =
    testList "NickRegistry" [
        testCase "followRegistrar: a node reports what it holds to the new leader, then claims again what waits"
            ``followRegistrar: a node reports what it holds to the new leader, then claims again what waits``
        testCase "recvClaim: a registrar without every report drops the claim"
            ``recvClaim: a registrar without every report drops the claim``
        testCase "recvClaim: a free nickname is granted and registered"
            ``recvClaim: a free nickname is granted and registered``
        testCase "recvClaim: a nickname a live node holds for another session is refused, naming the holder"
            ``recvClaim: a nickname a live node holds for another session is refused, naming the holder``
        testCase "recvClaim: the same session on another node is the user resuming there: the nickname moves"
            ``recvClaim: the same session on another node is the user resuming there: the nickname moves``
        testCase "recvClaim: a resume proving the held session takes the nickname under its rotated token"
            ``recvClaim: a resume proving the held session takes the nickname under its rotated token``
        testCase "recvClaim: a claim of another term is dropped"
            ``recvClaim: a claim of another term is dropped``
        testCase "recvGrant: the waiting hello is welcomed; an older term's grant is not"
            ``recvGrant: the waiting hello is welcomed; an older term's grant is not``
        testCase "recvGrant: a grant nobody waits for is given back"
            ``recvGrant: a grant nobody waits for is given back``
        testCase "recvRefusal: the waiting client is told the nickname is taken"
            ``recvRefusal: the waiting client is told the nickname is taken``
        testCase "recvRelease: only the holder's own entry goes"
            ``recvRelease: only the holder's own entry goes``
        testCase "tick: a hello that waited too long is refused with try-again; a registrar asks for missing reports"
            ``tick: a hello that waited too long is refused with try-again; a registrar asks for missing reports``
        testCase "property: two users claiming one nickname across leader changes never both win"
            ``property: two users claiming one nickname across leader changes never both win``
    ]
