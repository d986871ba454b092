/// The F# side of the conformance tests: one abstraction function from a TLA+ state of
/// spec/FormalChat.tla to F# values, and the successors of a cluster state computed by the
/// F# transition functions (node actions) and by this harness (environment actions, which
/// the C# shell and the world perform), under the same model bounds as the TLC model.
module FormalChat.Protocol.Tests.Conformance.Harness

open System
open System.IO
open System.Text.Json
open FormalChat.Protocol

/// The whole model state as F# values: one Coordination per node, which nodes are alive
/// (the environment's truth) and the ring messages in flight (a set, as in the spec).
type Cluster =
    { Nodes: Map<NodeId, Coordination>
      Alive: Map<NodeId, bool>
      InFlight: Set<Sent> }

/// The constants of one TLC model (spec/fixtures/manifest.json, "constants").
type Model =
    { Node: Set<NodeId>
      SuspectAfter: int
      DelayBound: int
      Synchronous: bool
      MaxCrashes: int
      MaxEpoch: int }

/// Deliberate bugs the mutation check turns on (spec/README.md, "Mutation check"); set with
/// the environment variable FORMALCHAT_CONFORMANCE_MUTATION. Off in every normal run.
let receiveWhenCrashed =
    Environment.GetEnvironmentVariable "FORMALCHAT_CONFORMANCE_MUTATION" = "receive-when-crashed"

// ---------------------------------------------------------------------------------------
// Abstraction: TLA+ state -> F# state.

let private noLeader = 0

/// A spec message record -> what the F# functions send and receive.
let toSent (message: Tla.Value) : Sent =
    let target = Tla.field "to" message |> Tla.asInt
    let id = Tla.field "id" message |> Tla.asInt
    let epoch = Tla.field "epoch" message |> Tla.asInt
    let payload =
        match Tla.field "type" message |> Tla.asString with
        | "election" -> Election { Candidate = id; Epoch = epoch }
        | "leader" -> LeaderAnnounced { Leader = id; Epoch = epoch }
        | "leave" -> LeaveAnnounced id
        | other -> failwithf "unknown message type %s" other
    { To = target; Message = payload }

/// The one abstraction function: a TLA+ state of FormalChat.tla as F# values.
let abstractState (state: Map<string, Tla.Value>) : Cluster =
    let perNode name = Tla.asIntFunction state[name]
    let alive = perNode "alive" |> Map.map (fun _ value -> Tla.asBool value)
    let view = perNode "view"
    let age = perNode "age"
    let epoch = perNode "epoch"
    let participant = perNode "participant"
    let leader = perNode "leader"
    let coordination (self: NodeId) : Coordination =
        { Self = self
          View = Tla.asSet view[self] |> List.map Tla.asInt |> Set.ofList
          Age =
            match age[self] with
            | Tla.Seq [] | Tla.SetOf [] -> Map.empty
            | ages -> Tla.asIntFunction ages |> Map.map (fun _ value -> Tla.asInt value)
          Epoch = Tla.asInt epoch[self]
          Participant = Tla.asBool participant[self]
          Leader =
            match Tla.asInt leader[self] with
            | id when id = noLeader -> None
            | id -> Some id }
    { Nodes = alive |> Map.map (fun self _ -> coordination self)
      Alive = alive
      InFlight = Tla.asSet state["msgs"] |> List.map toSent |> Set.ofList }

let showSent (sent: Sent) : string =
    match sent.Message with
    | Election message -> $"election(to {sent.To}, candidate {message.Candidate}, epoch {message.Epoch})"
    | LeaderAnnounced message -> $"leader(to {sent.To}, leader {message.Leader}, epoch {message.Epoch})"
    | LeaveAnnounced id -> $"leave(to {sent.To}, from {id})"
    | other -> $"%A{other}"

let showCluster (cluster: Cluster) : string =
    let node (id: NodeId) (state: Coordination) =
        let view = String.Join(",", state.View)
        let age = String.Join(",", state.Age |> Map.toList |> List.map (fun (peer, ticks) -> $"{peer}:{ticks}"))
        let leader = state.Leader |> Option.map string |> Option.defaultValue "-"
        let alive = if cluster.Alive[id] then "alive" else "STOPPED"
        $"  node {id} {alive}: view {{{view}}} age [{age}] epoch {state.Epoch} participant {state.Participant} leader {leader}"
    let lines = cluster.Nodes |> Map.toList |> List.map (fun (id, state) -> node id state)
    let messages = String.Join("; ", cluster.InFlight |> Seq.map showSent)
    String.Join("\n", lines @ [ $"  in flight: {messages}" ])

// ---------------------------------------------------------------------------------------
// Successors: every step the F# functions (and the environment) can take.

/// The network of the spec: what is sent to a node that has stopped is lost at once.
let private deliver (cluster: Cluster) (sent: Sent list) : Set<Sent> =
    sent |> List.filter (fun message -> cluster.Alive[message.To]) |> Set.ofList

let private update (self: NodeId) (state: Coordination) (cluster: Cluster) : Cluster =
    { cluster with Nodes = cluster.Nodes.Add(self, state) }

/// The guard every receiving node action shares (the mutation check turns it off).
let private canReceive (cluster: Cluster) (self: NodeId) : bool =
    cluster.Alive[self] || receiveWhenCrashed

/// Spec: the synchronous model's guard on Tick (HeartbeatsOnTime).
let private heartbeatsOnTime (model: Model) (cluster: Cluster) (self: NodeId) : bool =
    cluster.Nodes[self].Age |> Map.forall (fun peer age -> not cluster.Alive[peer] || age < model.DelayBound)

/// Spec: CanStop, the bound on crashes and leaves.
let private canStop (model: Model) (cluster: Cluster) (self: NodeId) : bool =
    let stopped = cluster.Alive |> Map.filter (fun _ alive -> not alive) |> Map.count
    cluster.Alive[self] && stopped < model.MaxCrashes && cluster.Alive.Count - stopped > 1

/// One named action applied to a cluster state with its parameters: the state it reaches,
/// or None when its guard does not hold. Node actions call the F# function of the same name.
type Step =
    | Tick of NodeId
    | RecvHeartbeat of NodeId * NodeId
    | StartElection of NodeId
    | RecvElection of NodeId * Sent
    | RecvLeader of NodeId * Sent
    | RecvLeave of NodeId * Sent
    | Crash of NodeId
    | Leave of NodeId
    | LoseMessage of Sent

let actionName (step: Step) : string =
    match step with
    | Tick _ -> "Tick"
    | RecvHeartbeat _ -> "RecvHeartbeat"
    | StartElection _ -> "StartElection"
    | RecvElection _ -> "RecvElection"
    | RecvLeader _ -> "RecvLeader"
    | RecvLeave _ -> "RecvLeave"
    | Crash _ -> "Crash"
    | Leave _ -> "Leave"
    | LoseMessage _ -> "LoseMessage"

let showStep (step: Step) : string =
    match step with
    | Tick i | StartElection i | Crash i | Leave i -> $"{actionName step}({i})"
    | RecvHeartbeat(i, j) -> $"RecvHeartbeat({i},{j})"
    | RecvElection(i, m) | RecvLeader(i, m) | RecvLeave(i, m) -> $"{actionName step}({i}, {showSent m})"
    | LoseMessage m -> $"LoseMessage({showSent m})"

let apply (model: Model) (cluster: Cluster) (step: Step) : Cluster option =
    let receive (self: NodeId) (message: Sent) (transition: Coordination -> Coordination * Sent list) =
        if canReceive cluster self && message.To = self && cluster.InFlight.Contains message then
            let next, sent = transition cluster.Nodes[self]
            Some { update self next cluster with InFlight = Set.union (cluster.InFlight.Remove message) (deliver cluster sent) }
        else
            None
    match step with
    | Tick self ->
        if cluster.Alive[self] && (not model.Synchronous || heartbeatsOnTime model cluster self) then
            Some(update self (FailureDetector.tick model.SuspectAfter cluster.Nodes[self]) cluster)
        else
            None
    | RecvHeartbeat(self, from) ->
        if canReceive cluster self && cluster.Alive[from] && self <> from then
            let sender = cluster.Nodes[from]
            Some(update self (FailureDetector.recvHeartbeat from sender.Epoch sender.Leader cluster.Nodes[self]) cluster)
        else
            None
    | StartElection self ->
        let state = cluster.Nodes[self]
        if cluster.Alive[self] && state.Epoch < model.MaxEpoch && Election.needsElection state then
            let next, sent = Election.startElection state
            Some { update self next cluster with InFlight = Set.union cluster.InFlight (deliver cluster sent) }
        else
            None
    | RecvElection(self, message) ->
        match message.Message with
        | Election payload -> receive self message (Election.recvElection payload)
        | _ -> None
    | RecvLeader(self, message) ->
        match message.Message with
        | LeaderAnnounced payload -> receive self message (Election.recvLeader payload)
        | _ -> None
    | RecvLeave(self, message) ->
        match message.Message with
        | LeaveAnnounced from -> receive self message (fun state -> FailureDetector.recvLeave from state, [])
        | _ -> None
    | Crash self ->
        if canStop model cluster self then
            Some
                { cluster with
                    Alive = cluster.Alive.Add(self, false)
                    InFlight = cluster.InFlight |> Set.filter (fun message -> message.To <> self) }
        else
            None
    | Leave self ->
        if canStop model cluster self then
            let stopped = { cluster with Alive = cluster.Alive.Add(self, false) }
            let farewells =
                cluster.Nodes[self].View.Remove self
                |> Seq.map (fun peer -> { To = peer; Message = LeaveAnnounced self })
                |> List.ofSeq
            Some
                { stopped with
                    InFlight =
                        Set.union
                            (cluster.InFlight |> Set.filter (fun message -> message.To <> self))
                            (deliver stopped farewells) }
        else
            None
    | LoseMessage message ->
        if not model.Synchronous && cluster.InFlight.Contains message then
            Some { cluster with InFlight = cluster.InFlight.Remove message }
        else
            None

/// Every step that could be taken from a state (guards are checked by apply).
let candidateSteps (cluster: Cluster) : Step list =
    [ for self in cluster.Nodes.Keys do
          yield Tick self
          for from in cluster.Nodes.Keys do
              yield RecvHeartbeat(self, from)
          yield StartElection self
          for message in cluster.InFlight do
              yield RecvElection(self, message)
              yield RecvLeader(self, message)
              yield RecvLeave(self, message)
          yield Crash self
          yield Leave self
      for message in cluster.InFlight do
          yield LoseMessage message ]

/// All successors of a cluster state, each with the step that reaches it.
let successors (model: Model) (cluster: Cluster) : (Step * Cluster) list =
    candidateSteps cluster |> List.choose (fun step -> apply model cluster step |> Option.map (fun next -> step, next))

// ---------------------------------------------------------------------------------------
// Where the fixtures are.

/// The repository root: the nearest directory above the test binaries that holds spec/.
let repositoryRoot: string =
    let rec search (directory: DirectoryInfo | null) =
        match directory with
        | null -> failwith "no spec/ directory above the test binaries"
        | directory when File.Exists(Path.Combine(directory.FullName, "spec", "FormalChat.tla")) -> directory.FullName
        | directory -> search directory.Parent
    search (DirectoryInfo AppContext.BaseDirectory)

let specPath (relative: string) : string = Path.Combine(repositoryRoot, "spec", relative)

let private manifest: JsonDocument =
    JsonDocument.Parse(File.ReadAllText(specPath "fixtures/formalchat/manifest.json"))

let manifestRoot: JsonElement = manifest.RootElement

/// The constants of a fixture configuration (MCFormalChatGraphSync3, ...) from the manifest.
let modelOf (name: string) : Model =
    let constants =
        manifestRoot.GetProperty("fixtures").EnumerateArray()
        |> Seq.find (fun fixture -> fixture.GetProperty("config").GetString() = name + ".cfg")
        |> fun fixture -> fixture.GetProperty "constants"
    let text (key: string) = constants.GetProperty(key).GetString() |> Option.ofObj |> Option.defaultValue ""
    { Node = Tla.parseValue (text "Node") |> Tla.asSet |> List.map Tla.asInt |> Set.ofList
      SuspectAfter = int (text "K")
      DelayBound = int (text "D")
      Synchronous = text "Synchronous" = "TRUE"
      MaxCrashes = int (text "MaxCrashes")
      MaxEpoch = int (text "MaxEpoch") }
