/// Conformance of Protocol.FSharp/Placement.fs with spec/Placement.tla, on fixtures that TLC
/// made (bash ci/tlc.sh --fixtures placement) and that are committed under
/// spec/fixtures/placement/, so these tests need neither Java nor TLC:
///   1. action map: every action of the spec's Next is an F# function of module Placement
///      (same name in lowerCamelCase) or a listed environment action, and back;
///   2. trace replay: every step of TLC's simulated behaviours, replayed through the F#
///      function of the step's action, reaches exactly TLC's next state;
///   3. successor sets: from every state of TLC's whole state graph of two small models, the
///      states the F# functions (and the harness's environment) reach are exactly TLC's
///      successors, so F# enables nothing the spec does not, and the reverse;
///   4. freshness: the spec and configuration files still have the SHA-256 the fixtures were
///      made from.
/// One abstraction function (`ofTla`) maps a TLA+ state to F# values; the environment actions
/// of the spec (Crash, Suspect, Join, Elect, LoseMessage) are written out here, since the failure
/// detector and the election, not Placement.fs, carry them out.
module FormalChat.Protocol.Tests.Conformance.PlacementConformance

open System
open System.IO
open System.Reflection
open System.Text
open System.Text.RegularExpressions
open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.Tests.Conformance.Tla
open FormalChat.Protocol.Tests.Conformance.PlacementFixtures
open FormalChat.Protocol.Tests.Conformance.SpecFixtures
open Xunit

// ---------------------------------------------------------------------------------------------
// Where the spec and the fixtures are.

let private specPath = specPath
let private fixturePath = fixturePath "placement"
let private manifest = lazy (readManifest "placement")

/// The fixtures of one kind ("traces" or "graph") with the values of their constants.
let private fixtures (kind: string) : (string * Value) list = fixturesOf manifest.Value kind

// ---------------------------------------------------------------------------------------------
// The constants of a model and the cluster state: the F# values one TLA+ state stands for.

type Model =
    { Nodes: NodeId list
      Asks: (NodeId * RoomName) list
      MaxEpoch: Epoch
      MaxCrashes: int
      Lossy: bool }

let private modelOf (values: Value) : Model =
    { Nodes = asSet (field "Node" values) |> List.map asInt |> List.sort
      Asks = asSet (field "Asks" values) |> List.map (fun ask -> match asSet ask with [ i; r ] -> asInt i, RoomName(asString r) | _ -> failwith "an ask is a pair")
      MaxEpoch = int64 (asInt (field "MaxEpoch" values))
      MaxCrashes = asInt (field "MaxCrashes" values)
      Lossy = asBool (field "Lossy" values) }

/// Spec variables alive, view, leader, epoch, placements and msgs, as F# values: per node its
/// Coordination (the part of NodeState the spec models) and Placements, and the messages in
/// flight as the Sent values the F# functions return.
type Cluster =
    { Alive: Map<NodeId, bool>
      Coordination: Map<NodeId, Coordination>
      Placements: Map<NodeId, Placement.Placements>
      InFlight: Set<Sent> }

let private noLeader = 0

/// Spec assignment [owner, epoch, leader, version]; LastSeq is not modelled, so it is 0.
let private assignmentOf (value: Value) : Assignment =
    { Owner = asInt (field "owner" value)
      Epoch = asInt (field "epoch" value)
      Leader = asInt (field "leader" value)
      Version = asInt (field "version" value)
      LastSeq = 0L }

let private sentOf (message: Value) : Sent =
    let target = asInt (field "to" message)
    let room = RoomName(asString (field "room" message))
    match asString (field "type" message) with
    | "place" -> { To = target; Message = PlacementRequested(room, asInt (field "requester" message)) }
    | "placed" -> { To = target; Message = RoomAssigned(room, assignmentOf (field "assignment" message)) }
    | other -> failwith $"unknown message type {other}"

/// The abstraction function: one TLA+ state (from NDJSON or from a dot label) as a Cluster.
/// Coordination fields the spec does not model take the values a settled node has: every
/// peer in the view heard from just now (Age 0), not in an election round (Participant false).
let ofTla (variables: Map<string, Value>) : Cluster =
    let perNode (name: string) (read: Value -> 'T) : Map<NodeId, 'T> =
        asFunction variables[name] |> List.map (fun (node, value) -> asInt node, read value) |> Map.ofList
    let views = perNode "view" (fun view -> asSet view |> List.map asInt |> Set.ofList)
    let leaders = perNode "leader" asInt
    let epochs = perNode "epoch" asInt
    let coordination (node: NodeId) : Coordination =
        { Self = node
          View = views[node]
          Age = views[node].Remove node |> Seq.map (fun peer -> peer, 0) |> Map.ofSeq
          Epoch = epochs[node]
          Participant = false
          Leader = if leaders[node] = noLeader then None else Some leaders[node] }
    { Alive = perNode "alive" asBool
      Coordination = views |> Map.map (fun node _ -> coordination node)
      Placements = perNode "placements" (fun placements -> asFunction placements |> List.map (fun (room, a) -> RoomName(asString room), assignmentOf a) |> Map.ofList)
      InFlight = asSet variables["msgs"] |> List.map sentOf |> Set.ofList }

let private describeSent (sent: Sent) =
    match sent.Message with
    | PlacementRequested(room, requester) -> $"place {room} for {requester} -> {sent.To}"
    | RoomAssigned(room, a) -> $"placed {room} on {a.Owner} (epoch {a.Epoch}, version {a.Version}, leader {a.Leader}) -> {sent.To}"
    | other -> $"{other} -> {sent.To}"

/// One line per node and one per message, so that two states can be diffed line by line.
let describe (cluster: Cluster) : string list =
    [ for KeyValue(node, c) in cluster.Coordination do
          let placements =
              [ for KeyValue(room, a) in cluster.Placements[node] -> $"{room}@{a.Owner}(e{a.Epoch} v{a.Version} l{a.Leader})" ]
          let leader = c.Leader |> Option.map string |> Option.defaultValue "none"
          let alive = if cluster.Alive[node] then "live" else "stopped"
          let placed = String.Join(" ", placements)
          yield $"node {node} {alive}: view {Set.toList c.View}, leader {leader}, epoch {c.Epoch}, placements [{placed}]"
      for sent in cluster.InFlight -> "msg " + describeSent sent ]

/// The lines of `left` that `right` lacks and the reverse, each tagged with its side's name.
let private diffWith (leftName: string) (left: Cluster) (rightName: string) (right: Cluster) : string =
    SuccessorSets.diffLines leftName (describe left) rightName (describe right)

let private diff (expected: Cluster) (actual: Cluster) : string = diffWith "TLC" expected "F# " actual

// ---------------------------------------------------------------------------------------------
// The F# transitions, as steps of the cluster. The shell's part is only to hand the function
// its node's state and to deliver: a message reaches a live node only, and the network
// drops at once what is sent to a stopped node (spec: Deliverable).

let private noClients (_: NodeId) = 0
let private lastSeqUnknown (_: RoomName) = 0L

let private deliverable (cluster: Cluster) (sent: Sent list) : Set<Sent> =
    sent |> List.filter (fun s -> cluster.Alive[s.To]) |> Set.ofList

/// Spec: RequestRoom(i, r). F# sends nothing when the guard is false.
let requestRoom (node: NodeId) (room: RoomName) (cluster: Cluster) : Cluster option =
    if not cluster.Alive[node] then
        None
    else
        match Placement.requestRoom room cluster.Placements[node] cluster.Coordination[node] with
        | [] -> None
        | sent -> Some { cluster with InFlight = cluster.InFlight + deliverable cluster sent }

/// Spec: AssignRoom(l, m): node l receives the request m.
let assignRoom (node: NodeId) (message: Sent) (cluster: Cluster) : Cluster option =
    match message.Message with
    | PlacementRequested(room, requester) when message.To = node && cluster.Alive[node] && cluster.InFlight.Contains message ->
        let placements, sent =
            Placement.assignRoom noClients 0L requester room cluster.Placements[node] cluster.Coordination[node]
        Some
            { cluster with
                Placements = cluster.Placements.Add(node, placements)
                InFlight = cluster.InFlight.Remove message + deliverable cluster sent }
    | _ -> None

/// Spec: RecvAssignment(i, m): node i receives the announcement m.
let recvAssignment (node: NodeId) (message: Sent) (cluster: Cluster) : Cluster option =
    match message.Message with
    | RoomAssigned(room, assignment) when message.To = node && cluster.Alive[node] && cluster.InFlight.Contains message ->
        Some
            { cluster with
                Placements = cluster.Placements.Add(node, Placement.recvAssignment room assignment cluster.Placements[node])
                InFlight = cluster.InFlight.Remove message }
    | _ -> None

/// Spec: ReassignRooms(l). F# changes nothing and sends nothing when the guard is false.
let reassignRooms (node: NodeId) (cluster: Cluster) : Cluster option =
    if not cluster.Alive[node] then
        None
    else
        let before = cluster.Placements[node]
        match Placement.reassignRooms noClients lastSeqUnknown before cluster.Coordination[node] with
        | placements, [] when placements = before -> None
        | placements, sent ->
            Some
                { cluster with
                    Placements = cluster.Placements.Add(node, placements)
                    InFlight = cluster.InFlight + deliverable cluster sent }

// The environment: what the failure detector, the election and the network do, written as
// the spec says (Crash, Suspect, Elect, LoseMessage); no Placement.fs function.

let private live (cluster: Cluster) = cluster.Alive |> Map.filter (fun _ alive -> alive) |> Map.keys |> Set.ofSeq

/// Spec: Absent(n). A node that has not started has no view at all.
let private absent (cluster: Cluster) (node: NodeId) = not cluster.Alive[node] && cluster.Coordination[node].View.IsEmpty

let crash (model: Model) (node: NodeId) (cluster: Cluster) : Cluster option =
    let live = live cluster
    let crashed = model.Nodes |> List.filter (fun n -> not cluster.Alive[n] && not (absent cluster n))
    if cluster.Alive[node] && crashed.Length < model.MaxCrashes && live.Count > 1 then
        Some
            { cluster with
                Alive = cluster.Alive.Add(node, false)
                InFlight = cluster.InFlight |> Set.filter (fun s -> s.To <> node) }
    else
        None

let suspect (node: NodeId) (suspected: NodeId) (cluster: Cluster) : Cluster option =
    let c = cluster.Coordination[node]
    if cluster.Alive[node] && not cluster.Alive[suspected] && c.View.Contains suspected then
        Some { cluster with Coordination = cluster.Coordination.Add(node, { c with View = c.View.Remove suspected; Age = c.Age.Remove suspected }) }
    else
        None

/// Spec: Join(n). Discovery in one step, and every live node introduces its placements
/// (Node.introduceTo).
let join (node: NodeId) (cluster: Cluster) : Cluster option =
    if absent cluster node then
        let live = live cluster
        let senior = cluster.Coordination[Set.maxElement live]
        let view = live.Add node
        let introductions =
            [ for peer in live do
                  for KeyValue(room, assignment) in cluster.Placements[peer] -> { To = node; Message = RoomAssigned(room, assignment) } ]
        Some
            { cluster with
                Alive = cluster.Alive.Add(node, true)
                Coordination =
                    cluster.Coordination
                    |> Map.map (fun n c ->
                        if n = node then
                            { c with View = view; Age = live |> Seq.map (fun peer -> peer, 0) |> Map.ofSeq; Epoch = senior.Epoch; Leader = senior.Leader }
                        elif cluster.Alive[n] then
                            { c with View = c.View.Add node; Age = c.Age.Add(node, 0) }
                        else
                            c)
                InFlight = cluster.InFlight + Set.ofList introductions }
    else
        None

/// Spec: Elect. The highest live id leads in the next epoch, or in the current one again when
/// no live node leads (two nodes can win one epoch): one successor for each epoch allowed.
let elect (model: Model) (cluster: Cluster) : Cluster list =
    let live = live cluster
    let winner = Set.maxElement live
    let last = live |> Seq.map (fun node -> cluster.Coordination[node].Epoch) |> Seq.max
    let noLiveLeader = live |> Set.forall (fun node -> cluster.Coordination[node].Leader <> Some node)
    if live |> Set.exists (fun node -> cluster.Coordination[node].Leader <> Some winner) then
        [ for next in [ last; last + 1L ] do
              if 1L <= next && next <= model.MaxEpoch && (next <> last || noLiveLeader) then
                  { cluster with
                      Coordination =
                          cluster.Coordination
                          |> Map.map (fun node c -> if live.Contains node then { c with Epoch = next; Leader = Some winner } else c) } ]
    else
        []

let loseMessage (model: Model) (message: Sent) (cluster: Cluster) : Cluster option =
    if model.Lossy && cluster.InFlight.Contains message then Some { cluster with InFlight = cluster.InFlight.Remove message } else None

/// Every step from a cluster state, each named the way the spec names it.
let successors (model: Model) (cluster: Cluster) : (string * Cluster) list =
    [ for node, room in model.Asks do
          match requestRoom node room cluster with
          | Some next -> $"RequestRoom({node}, {room})", next
          | None -> ()
      for node in model.Nodes do
          for message in cluster.InFlight do
              match assignRoom node message cluster with
              | Some next -> $"AssignRoom({node}, {describeSent message})", next
              | None -> ()
              match recvAssignment node message cluster with
              | Some next -> $"RecvAssignment({node}, {describeSent message})", next
              | None -> ()
          match reassignRooms node cluster with
          | Some next -> $"ReassignRooms({node})", next
          | None -> ()
          match crash model node cluster with
          | Some next -> $"Crash({node})", next
          | None -> ()
          for suspected in model.Nodes do
              match suspect node suspected cluster with
              | Some next -> $"Suspect({node}, {suspected})", next
              | None -> ()
          match join node cluster with
          | Some next -> $"Join({node})", next
          | None -> ()
      for next in elect model cluster do
          "Elect", next
      for message in cluster.InFlight do
          match loseMessage model message cluster with
          | Some next -> $"LoseMessage({describeSent message})", next
          | None -> () ]

// ---------------------------------------------------------------------------------------------
// 1. Action map.

let private specText = lazy (File.ReadAllLines(specPath "Placement.tla"))

let private nextActions () : string list = nextActions "Placement.tla"

let private environmentActions = [ "Crash"; "Suspect"; "Join"; "Elect"; "LoseMessage" ]

/// Placement.fs functions that are spec operators rather than actions, with the operator.
let private helperOperators = [ "roomsOwned", "RoomsOwned"; "leastLoaded", "LeastLoaded"; "needsPlacement", "NeedsPlacement"; "isNewer", "Newer" ]

/// Placement.fs functions whose spec is Replication.tla's RestartSpec (a whole-cluster restart,
/// which Placement.tla does not model), with their action or operator there.
let private inReplicationSpec = [ "highest", "Highest"; "assignUnplaced", "AssignUnplaced" ]

let private placementFunctions () : string list =
    let placementModule =
        typeof<Coordination>.Assembly.GetTypes()
        |> Array.find (fun t -> t.FullName = "FormalChat.Protocol.Placement")
    placementModule.GetMethods(BindingFlags.Public ||| BindingFlags.Static)
    |> Array.map (fun m -> m.Name)
    |> Array.filter (fun name -> Regex.IsMatch(name, "^[a-z][A-Za-z]*$")) // not compiler-generated (inlined sumBy@13)
    |> Array.distinct
    |> List.ofArray

let ``action map: every action of Next is a Placement function of the same name or an environment action`` () =
    let actions = nextActions ()
    let functions = placementFunctions ()
    Assert.Equal<string list>([ "RequestRoom"; "AssignRoom"; "RecvAssignment"; "ReassignRooms"; "Crash"; "Suspect"; "Join"; "Elect"; "LoseMessage" ], actions)
    let missing =
        actions
        |> List.filter (fun action -> not (List.contains action environmentActions) && not (List.contains (lowerFirst action) functions))
    Assert.True(missing.IsEmpty, $"spec actions with no F# function in module Placement: {missing}")

let ``action map: every public Placement function is a spec action or a spec operator`` () =
    let actions = nextActions ()
    let text = String.Join("\n", specText.Value)
    let unmatched =
        placementFunctions ()
        |> List.filter (fun name ->
            let isAction = actions |> List.exists (fun action -> lowerFirst action = name)
            let isOperator =
                helperOperators |> List.exists (fun (fsharp, operator) -> fsharp = name && text.Contains(operator + "(", StringComparison.Ordinal))
            let isReplications =
                inReplicationSpec
                |> List.exists (fun (fsharp, operator) -> fsharp = name && File.ReadAllText(specPath "Replication.tla").Contains(operator + "(l) ==", StringComparison.Ordinal))
            not isAction && not isOperator && not isReplications)
    Assert.True(unmatched.IsEmpty, $"Placement functions with no spec action or operator: {unmatched}")

// ---------------------------------------------------------------------------------------------
// 2. Trace replay.

/// The action of a trace step. TLC names a step by its action, except for an action whose
/// parameter ranges over a variable (\E m \in msgs : AssignRoom(l, m)): that step is named
/// "Next", with the location of its disjunct, and the disjunct's text names the action.
let private actionOf (action: Value) : string =
    let name = asString (field "name" action)
    let known = nextActions ()
    if List.contains name known then
        name
    else
        let location = field "location" action
        let line = asInt (field "beginLine" location)
        let first = asInt (field "beginColumn" location)
        let last = asInt (field "endColumn" location)
        let text = specText.Value[line - 1].Substring(first - 1, last - first + 1)
        match known |> List.filter (fun action -> Regex.IsMatch(text, $@"\b{action}\b")) with
        | [ action ] -> action
        | found -> failwith $"cannot tell the action of {name} at line {line} ({text}): {found}"

/// The steps of one action from a state, each with the F# call that makes it.
let private stepsOf (model: Model) (action: string) (cluster: Cluster) : (string * Cluster) list =
    successors model cluster |> List.filter (fun (label, _) -> label = action || label.StartsWith(action + "(", StringComparison.Ordinal))

type private Replay =
    { Steps: int
      Actions: Map<string, int>
      /// ReassignRooms steps that move two rooms or more: their order matters.
      MultiRoomReassignments: int
      /// AssignRoom steps at a node that is no longer the leader (after a higher node joined).
      RequestsAtFollowers: int
      MaxDepth: int }

let private emptyReplay = { Steps = 0; Actions = Map.empty; MultiRoomReassignments = 0; RequestsAtFollowers = 0; MaxDepth = 0 }

let private replay (file: string) (model: Model) (behaviours: TraceState list list) : Replay =
    let mutable result = emptyReplay
    behaviours
    |> List.iteri (fun number behaviour ->
        result <- { result with MaxDepth = max result.MaxDepth (behaviour.Length - 1) }
        behaviour
        |> List.pairwise
        |> List.iteri (fun step (before, after) ->
            let action = actionOf after.Action
            let from = ofTla before.Variables
            let expected = ofTla after.Variables
            let candidates = stepsOf model action from
            match candidates |> List.tryFind (fun (_, reached) -> reached = expected) with
            | Some(label, _) ->
                let atFollower =
                    action = "AssignRoom"
                    && (let node = int (label.Substring(11, label.IndexOf(',') - 11)) in from.Coordination[node].Leader <> Some node)
                let moved =
                    if action = "ReassignRooms" then
                        expected.Placements |> Map.exists (fun node placements -> placements |> Map.filter (fun room a -> from.Placements[node].TryFind room <> Some a) |> Map.count >= 2)
                    else
                        false
                result <-
                    { result with
                        Steps = result.Steps + 1
                        Actions = result.Actions.Change(action, fun count -> Some(defaultArg count 0 + 1))
                        MultiRoomReassignments = result.MultiRoomReassignments + (if moved then 1 else 0)
                        RequestsAtFollowers = result.RequestsAtFollowers + (if atFollower then 1 else 0) }
            | None ->
                let tried =
                    if candidates.IsEmpty then
                        $"  F# enables no {action} step in this state"
                    else
                        String.Join("\n", [ for label, reached in candidates -> $"  {label} reaches:\n{diff expected reached}" ])
                let message =
                    String.Join(
                        "\n",
                        [ $"{file}, behaviour {number + 1}, step {step + 1}: {action} in F# does not reach TLC's next state"
                          "state before:"
                          yield! describe from |> List.map (fun line -> "  " + line)
                          "candidates (TLC: lines only in TLC's next state; F#: lines only in the state F# reached):"
                          tried ]
                    )
                Assert.Fail message))
    result

let ``trace replay: every step of TLC's simulated behaviours is reached by the F# function of its action`` () =
    let mutable total = emptyReplay
    let mutable behaviours = 0
    let mutable deepEnough = 0
    for file, values in fixtures "traces" do
        let model = modelOf values
        let traces = readBehaviours (fixturePath file)
        Assert.All(traces, fun behaviour -> Assert.Equal(model.Nodes.Length, (asFunction behaviour.Head.Variables["alive"]).Length))
        let result = replay file model traces
        behaviours <- behaviours + traces.Length
        deepEnough <- deepEnough + (traces |> List.filter (fun behaviour -> behaviour.Length - 1 >= 25) |> List.length)
        total <-
            { Steps = total.Steps + result.Steps
              Actions = Map.fold (fun (acc: Map<string, int>) action count -> acc.Change(action, fun c -> Some(defaultArg c 0 + count))) total.Actions result.Actions
              MultiRoomReassignments = total.MultiRoomReassignments + result.MultiRoomReassignments
              RequestsAtFollowers = total.RequestsAtFollowers + result.RequestsAtFollowers
              MaxDepth = max total.MaxDepth result.MaxDepth }
    Assert.True(behaviours >= 100, $"only {behaviours} behaviours")
    Assert.Equal(behaviours, deepEnough)
    let uncovered = nextActions () |> List.filter (fun action -> not (total.Actions.ContainsKey action))
    Assert.True(uncovered.IsEmpty, $"actions no behaviour takes: {uncovered}; taken: {total.Actions}")
    Assert.True(total.MultiRoomReassignments > 0, "no behaviour moves two rooms in one ReassignRooms, so the order of the moves is untested")
    Assert.True(total.RequestsAtFollowers > 0, "no behaviour delivers a request to a node that is no longer the leader")

// ---------------------------------------------------------------------------------------------
// 3. Successor sets.

let private checkSuccessorSets (file: string) (model: Model) : SuccessorSets.Compared =
    let suite: SuccessorSets.Suite<Cluster, string> =
        { OfTla = ofTla; Successors = successors model; ShowStep = id; Describe = describe }
    SuccessorSets.compare suite file (readDotGraph (fixturePath file))

let ``successor sets: from every state of TLC's state graph the F# functions reach exactly TLC's successors`` () =
    let graphs = fixtures "graph"
    Assert.NotEmpty graphs
    for file, values in graphs do
        let compared = checkSuccessorSets file (modelOf values)
        Assert.True(compared.States > 1000 && compared.Edges > compared.States, $"{file}: a graph of {compared.States} states and {compared.Edges} edges is too small to say much")

// ---------------------------------------------------------------------------------------------
// 4. Freshness.

let ``freshness: the fixtures were made from the spec and configuration files as they are now`` () =
    assertFresh "placement" manifest.Value "spec/Placement.tla"

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "PlacementConformance" [
        testCase "action map: every action of Next is a Placement function of the same name or an environment action"
            ``action map: every action of Next is a Placement function of the same name or an environment action``
        testCase "action map: every public Placement function is a spec action or a spec operator"
            ``action map: every public Placement function is a spec action or a spec operator``
        testCase "trace replay: every step of TLC's simulated behaviours is reached by the F# function of its action"
            ``trace replay: every step of TLC's simulated behaviours is reached by the F# function of its action``
        testCase "successor sets: from every state of TLC's state graph the F# functions reach exactly TLC's successors"
            ``successor sets: from every state of TLC's state graph the F# functions reach exactly TLC's successors``
        testCase "freshness: the fixtures were made from the spec and configuration files as they are now"
            ``freshness: the fixtures were made from the spec and configuration files as they are now``
    ]
