/// A deterministic in-process cluster simulator over the coordination transitions (the spec's
/// actions): nodes hold a Coordination state, the network is a list of in-flight ring messages,
/// and every scheduling choice comes from one seeded System.Random that the test owns, so a
/// failure is reproduced by its seed. Invariants are checked after every step; a broken one
/// fails at once with the seed, the step and the recent history.
///
/// At the bottom, `Nodes`: whole NodeStates driven through Node.step, with a relay that carries
/// SendToPeer and Multicast effects between them and keeps what every client was sent.
module FormalChat.Protocol.Tests.Simulation

open System
open FormalChat.Protocol

/// One simulator step, named after the spec action it runs.
type Action =
    /// Spec: Tick(i).
    | Tick of node: NodeId
    /// Spec: RecvHeartbeat(i, j): node `receiver` hears `sender`'s current epoch and leader.
    | DeliverHeartbeat of sender: NodeId * receiver: NodeId
    /// Spec: RecvElection / RecvLeader / RecvLeave for the message at the head of this delivery.
    | Deliver of Sent
    /// Spec: StartElection(i), taken only when Election.needsElection holds.
    | StartElection of node: NodeId
    /// The node stops without a word; its messages in flight still arrive, none reach it.
    | Crash of node: NodeId
    /// The node announces LeaveAnnounced to every peer in its view, then stops.
    | Leave of node: NodeId
    /// A node that was not running joins with a fresh state (Coordination.init).
    | Boot of node: NodeId
    /// A stopped node starts again from a fresh state, as a restarted process does.
    | Restart of node: NodeId

exception SimulationFailed of string

type Cluster =
    { Seed: int
      /// K: missed heartbeats before a peer is suspected.
      SuspectAfter: int
      Nodes: Map<NodeId, Coordination>
      /// Nodes that crashed or left; they neither act nor receive.
      Stopped: Set<NodeId>
      /// Nodes that have not booted yet; they neither act nor receive.
      Dormant: Set<NodeId>
      /// Ring messages sent and not yet delivered, oldest first.
      InFlight: Sent list
      ElectionMessagesSent: int
      LeaderMessagesSent: int
      Steps: int
      /// Newest first; only the most recent ones are printed when a run fails.
      History: Action list }

/// Deep enough to read the story of a failure, short enough to keep every step cheap.
let private historyLimit = 60

let create (seed: int) (suspectAfter: int) (ids: NodeId list) : Cluster =
    if List.isEmpty ids then invalidArg (nameof ids) "a cluster has at least one node"
    if List.distinct ids <> ids then invalidArg (nameof ids) "node ids are distinct"
    if suspectAfter < 1 then invalidArg (nameof suspectAfter) "K is at least 1"
    { Seed = seed
      SuspectAfter = suspectAfter
      Nodes = ids |> List.map (fun id -> id, Coordination.init id) |> Map.ofList
      Stopped = Set.empty
      Dormant = Set.empty
      InFlight = []
      ElectionMessagesSent = 0
      LeaderMessagesSent = 0
      Steps = 0
      History = [] }

/// Every node already knows every other (as after discovery), all ages 0, no leader yet.
let createWithFullViews (seed: int) (suspectAfter: int) (ids: NodeId list) : Cluster =
    let cluster = create seed suspectAfter ids
    let everyone = Set.ofList ids
    let knowingAll (coordination: Coordination) =
        { coordination with
            View = everyone
            Age = everyone.Remove coordination.Self |> Seq.map (fun peer -> peer, 0) |> Map.ofSeq }
    { cluster with Nodes = cluster.Nodes |> Map.map (fun _ coordination -> knowingAll coordination) }

/// Every node dormant: the scheduler boots them one by one, at random rounds.
let createDormant (seed: int) (suspectAfter: int) (ids: NodeId list) : Cluster =
    { create seed suspectAfter ids with Dormant = Set.ofList ids }

let isRunning (cluster: Cluster) (id: NodeId) : bool =
    not (cluster.Stopped.Contains id) && not (cluster.Dormant.Contains id)

let running (cluster: Cluster) : NodeId list =
    cluster.Nodes |> Map.keys |> Seq.filter (isRunning cluster) |> List.ofSeq

let node (cluster: Cluster) (id: NodeId) : Coordination = cluster.Nodes[id]

let describe (cluster: Cluster) : string =
    let nodes =
        [ for KeyValue(id, c) in cluster.Nodes ->
              let status =
                  if cluster.Stopped.Contains id then " (stopped)"
                  elif cluster.Dormant.Contains id then " (dormant)"
                  else ""
              $"  node {id}{status}: view {Set.toList c.View} age {Map.toList c.Age} epoch {c.Epoch} participant {c.Participant} leader {c.Leader}" ]
    let recent = cluster.History |> List.truncate 25 |> List.rev |> List.map (fun action -> $"  {action}")
    String.concat
        "\n"
        [ $"seed {cluster.Seed}, K {cluster.SuspectAfter}, after {cluster.Steps} steps"
          "nodes:"
          yield! nodes
          $"in flight: {cluster.InFlight}"
          "most recent steps, oldest first:"
          yield! recent ]

let fail (cluster: Cluster) (reason: string) : 'T =
    let message = $"simulation failed: {reason}\n{describe cluster}"
    // The seed also goes to the console so it survives in a log even when the message is cut.
    eprintfn "%s" message
    raise (SimulationFailed message)

let private checkInvariants (cluster: Cluster) : unit =
    for KeyValue(id, coordination) in cluster.Nodes do
        match Coordination.invariantViolations coordination with
        | [] -> ()
        | violations -> fail cluster $"""invariant broken at node {id}: {String.concat "; " violations}"""

let private send (sent: Sent list) (cluster: Cluster) : Cluster =
    let count predicate = sent |> List.filter (fun message -> predicate message.Message) |> List.length
    { cluster with
        InFlight = cluster.InFlight @ sent
        ElectionMessagesSent = cluster.ElectionMessagesSent + count (function Election _ -> true | _ -> false)
        LeaderMessagesSent = cluster.LeaderMessagesSent + count (function LeaderAnnounced _ -> true | _ -> false) }

let private update (id: NodeId) (transition: Coordination -> Coordination * Sent list) (cluster: Cluster) : Cluster =
    let next, sent = transition cluster.Nodes[id]
    send sent { cluster with Nodes = cluster.Nodes.Add(id, next) }

let private receive (message: Sent) (cluster: Cluster) : Cluster =
    match message.Message with
    | Election election -> update message.To (Election.recvElection election) cluster
    | LeaderAnnounced leader -> update message.To (Election.recvLeader leader) cluster
    | LeaveAnnounced from -> update message.To (fun c -> FailureDetector.recvLeave from c, []) cluster
    | other -> fail cluster $"the coordination simulator carries only ring messages, not {other}"

let private removeFirst (message: Sent) (messages: Sent list) : Sent list =
    match List.tryFindIndex ((=) message) messages with
    | Some index -> List.removeAt index messages
    | None -> messages

/// Runs one action and checks every node's invariants. An action whose actor is not running
/// (or, for StartElection, whose guard is false) changes nothing but still counts as a step.
let apply (action: Action) (cluster: Cluster) : Cluster =
    let isUp = isRunning cluster
    let next =
        match action with
        | Tick id when isUp id -> update id (fun c -> FailureDetector.tick cluster.SuspectAfter c, []) cluster
        | DeliverHeartbeat(sender, receiver) when isUp sender && isUp receiver ->
            let from = cluster.Nodes[sender]
            update receiver (fun c -> FailureDetector.recvHeartbeat sender from.Epoch from.Leader c, []) cluster
        | Deliver message ->
            let cluster = { cluster with InFlight = removeFirst message cluster.InFlight }
            if isUp message.To then receive message cluster else cluster
        | StartElection id when isUp id && Election.needsElection cluster.Nodes[id] -> update id Election.startElection cluster
        | Crash id when isUp id -> { cluster with Stopped = cluster.Stopped.Add id }
        | Leave id when isUp id ->
            let leaving = cluster.Nodes[id]
            let goodbyes = [ for peer in leaving.View.Remove id -> { To = peer; Message = LeaveAnnounced id } ]
            send goodbyes { cluster with Stopped = cluster.Stopped.Add id }
        | Boot id when cluster.Dormant.Contains id ->
            { cluster with Dormant = cluster.Dormant.Remove id; Nodes = cluster.Nodes.Add(id, Coordination.init id) }
        | Restart id when cluster.Stopped.Contains id ->
            { cluster with Stopped = cluster.Stopped.Remove id; Nodes = cluster.Nodes.Add(id, Coordination.init id) }
        | _ -> cluster
    let next =
        { next with
            Steps = next.Steps + 1
            History = action :: List.truncate (historyLimit - 1) next.History }
    checkInvariants next
    next

let applyAll (actions: Action list) (cluster: Cluster) : Cluster = List.fold (fun c a -> apply a c) cluster actions

/// Delivers every message in flight, and what they cause, oldest first; no ticks, no heartbeats.
let deliverAllInOrder (limit: int) (cluster: Cluster) : Cluster =
    let rec loop (remaining: int) (cluster: Cluster) =
        match cluster.InFlight with
        | [] -> cluster
        | _ when remaining = 0 -> fail cluster $"messages still in flight after {limit} deliveries"
        | message :: _ -> loop (remaining - 1) (apply (Deliver message) cluster)
    loop limit cluster

/// Delivers every message in flight, and what they cause, in random order; no ticks, no
/// heartbeats: the ring messages alone must finish the round.
let deliverAllRandomly (random: Random) (limit: int) (cluster: Cluster) : Cluster =
    let rec loop (remaining: int) (cluster: Cluster) =
        match cluster.InFlight with
        | [] -> cluster
        | _ when remaining = 0 -> fail cluster $"messages still in flight after {limit} deliveries"
        | messages -> loop (remaining - 1) (apply (Deliver messages[random.Next messages.Length]) cluster)
    loop limit cluster

// ---------------------------------------------------------------------------------------------
// The fair scheduler.

type Schedule =
    { /// Chance that a running node ticks in a round. Ticks of one round never outnumber one
      /// per node, and every running pair heartbeats every round, so with K >= 3 a running peer
      /// is never suspected (two ticks at most fall between two of its heartbeats).
      TickProbability: float
      /// Chance that a node whose guard holds starts an election in a round.
      StartProbability: float
      /// Chance that a message in flight at the start of a round is delivered in it.
      DeliverProbability: float
      /// Chance that a dormant node boots in a round.
      BootProbability: float }

let fairSchedule =
    { TickProbability = 0.5
      StartProbability = 0.3
      DeliverProbability = 0.7
      BootProbability = 0.3 }

let private shuffle (random: Random) (items: 'T list) : 'T list =
    let items = List.toArray items
    random.Shuffle items
    List.ofArray items

/// One round: every running node may tick, every running pair exchanges heartbeats, nodes that
/// need an election may start one, and the messages in flight may arrive, all in random order.
let round (random: Random) (schedule: Schedule) (cluster: Cluster) : Cluster =
    let up = running cluster
    let chance probability = random.NextDouble() < probability
    let actions =
        [ for id in cluster.Dormant do
              if chance schedule.BootProbability then Boot id
          for id in up do
              if chance schedule.TickProbability then Tick id
              if chance schedule.StartProbability then StartElection id
              for other in up do
                  if other <> id then DeliverHeartbeat(other, id)
          for message in cluster.InFlight do
              if chance schedule.DeliverProbability then Deliver message ]
    applyAll (shuffle random actions) cluster

/// Every running node follows the highest running id, in one epoch, with the running nodes as
/// its view, no round open and nothing in flight to a running node.
let isSettled (cluster: Cluster) : bool =
    match running cluster with
    | [] -> false
    | up ->
        let highest = List.max up
        let states = up |> List.map (node cluster)
        let epochs = states |> List.map (fun c -> c.Epoch) |> List.distinct
        states |> List.forall (fun c -> c.Leader = Some highest && not c.Participant && c.View = Set.ofList up)
        && epochs.Length = 1
        && cluster.InFlight |> List.forall (fun message -> not (isRunning cluster message.To))

/// Runs rounds until `isDone` holds; fails loudly with the seed after `maxRounds`.
let runUntil (random: Random) (schedule: Schedule) (maxRounds: int) (isDone: Cluster -> bool) (cluster: Cluster) : Cluster =
    let rec loop (rounds: int) (cluster: Cluster) =
        if isDone cluster then cluster
        elif rounds = maxRounds then fail cluster $"not done after {maxRounds} rounds"
        else loop (rounds + 1) (round random schedule cluster)
    loop 0 cluster

let runUntilSettled (random: Random) (maxRounds: int) (cluster: Cluster) : Cluster =
    runUntil random fairSchedule maxRounds isSettled cluster

// ---------------------------------------------------------------------------------------------
// Whole nodes through Node.step.

/// A few NodeStates wired together by a relay: NodeDriver steps them, and this module is the
/// synchronous delivery policy. Peer messages travel on FIFO links, one per
/// (sender, receiver) pair, as over the TCP peer links; a multicast goes to every other node
/// that is up. Client replies and closes are kept per client, in the order they were sent.
module Nodes =
    open FormalChat.Protocol.NodeState

    type InFlight = { From: NodeId; To: NodeId; Message: PeerMessage }

    type Net =
        { Config: ProtocolConfig
          States: Map<NodeId, NodeState>
          /// Crashed nodes: they neither act nor receive; what they sent before still arrives.
          Down: Set<NodeId>
          /// Oldest first.
          InFlight: InFlight list
          /// Every reply each client was sent, oldest first.
          Inbox: Map<ClientId, ServerReply list>
          /// Clients the shell was told to close, with the reason.
          Closed: Map<ClientId, string>
          Deliveries: int }

    let infoOf (id: NodeId) : NodeInfo = NodeDriver.infoOf id

    let create (config: ProtocolConfig) (ids: NodeId list) : Net =
        { Config = config
          States = ids |> List.map (fun id -> id, init (infoOf id)) |> Map.ofList
          Down = Set.empty
          InFlight = []
          Inbox = Map.empty
          Closed = Map.empty
          Deliveries = 0 }

    let isUp (net: Net) (id: NodeId) = net.States.ContainsKey id && not (net.Down.Contains id)

    let private enqueue (messages: InFlight list) (net: Net) : Net = { net with InFlight = net.InFlight @ messages }

    /// The synchronous policy: peer messages and heartbeats queue on FIFO links until a test
    /// delivers them; replies and closes are recorded per client; disk, logs and Stop are ignored.
    let private delivery: NodeDriver.Delivery<Net> =
        { NodeDriver.ignoring with
            Peer = fun from dest message net -> enqueue [ { From = from; To = dest; Message = message } ] net
            Multicast =
                fun from message net ->
                    enqueue [ for KeyValue(other, _) in net.States do if other <> from && isUp net other then { From = from; To = other; Message = message } ] net
            Reply = fun _ client reply net -> { net with Inbox = net.Inbox.Add(client, (net.Inbox.TryFind client |> Option.defaultValue []) @ [ reply ]) }
            Close = fun _ client reason net -> { net with Closed = net.Closed.Add(client, reason) } }

    /// One event at one node; its effects are queued or recorded, nothing is delivered yet.
    let apply (id: NodeId) (event: Event) (net: Net) : Net =
        if not (isUp net id) then
            net
        else
            let next, effects = NodeDriver.step net.Config id net.States[id] event
            NodeDriver.carryOut delivery id effects { net with States = net.States.Add(id, next) }

    let private deliver (index: int) (net: Net) : Net =
        let message = net.InFlight[index]
        let net = { net with InFlight = List.removeAt index net.InFlight; Deliveries = net.Deliveries + 1 }
        apply message.To (PeerMessageReceived message.Message) net

    /// Delivers everything in flight, and what it causes, in the order sent.
    let settle (net: Net) : Net =
        let rec loop (remaining: int) (net: Net) =
            match net.InFlight with
            | [] -> net
            | _ when remaining = 0 -> failwith $"peer messages still flowing after 10000 deliveries: {List.truncate 10 net.InFlight}"
            | _ -> loop (remaining - 1) (deliver 0 net)
        loop 10_000 net

    /// Delivers one message chosen at random among the oldest of each link, so links stay FIFO
    /// while the links themselves interleave freely.
    let deliverOneRandomly (random: Random) (net: Net) : Net =
        let heads =
            net.InFlight
            |> List.indexed
            |> List.distinctBy (fun (_, message) -> message.From, message.To)
            |> List.map fst
        match heads with
        | [] -> net
        | _ -> deliver heads[random.Next heads.Length] net

    let settleRandomly (random: Random) (net: Net) : Net =
        let rec loop (remaining: int) (net: Net) =
            match net.InFlight with
            | [] -> net
            | _ when remaining = 0 -> failwith "peer messages still flowing after 10000 deliveries"
            | _ -> loop (remaining - 1) (deliverOneRandomly random net)
        loop 10_000 net

    /// Every node that is up ticks once (its heartbeat is multicast), then everything settles.
    let tickAll (net: Net) : Net =
        net.States |> Map.keys |> Seq.fold (fun net id -> apply id Ticked net) net |> settle

    let crash (id: NodeId) (net: Net) : Net = { net with Down = net.Down.Add id }

    /// Nodes that meet by heartbeats and elect the highest id, with nothing left in flight.
    let formed (config: ProtocolConfig) (ids: NodeId list) : Net =
        let net = create config ids |> tickAll |> tickAll |> tickAll
        for id in ids do
            if net.States[id].Coordination.Leader <> Some(List.max ids) then
                failwith $"node {id} follows {net.States[id].Coordination.Leader} after forming"
        net

    let sessionOf (client: ClientId) = $"session-{client}"

    /// A client connects to a node and says hello (no session, no resume); nothing is delivered yet.
    let connect (id: NodeId) (client: ClientId) (nick: string) (net: Net) : Net =
        net
        |> apply id (ClientConnected(client, sessionOf client))
        |> apply id (ClientRequested(client, Hello { Nick = nick; Session = None; Resume = []; Password = None }))

    let request (id: NodeId) (client: ClientId) (request: ClientRequest) (net: Net) : Net =
        apply id (ClientRequested(client, request)) net

    /// Nodes 1, 2, 3 led by 3, with ann on node 1 (client 10), ben on node 2 (20), cat on node 3
    /// (30). Ann says hello first, when every node's load is zero, so #lobby is placed on node 1.
    let threeWithUsers (config: ProtocolConfig) : Net =
        formed config [ 1; 2; 3 ]
        |> connect 1 10 "ann"
        |> settle
        |> connect 2 20 "ben"
        |> connect 3 30 "cat"
        |> settle

    let inbox (client: ClientId) (net: Net) : ServerReply list = net.Inbox.TryFind client |> Option.defaultValue []

    /// The room messages a client was shown in one room, in the order shown.
    let shown (client: ClientId) (room: RoomName) (net: Net) : RoomMessage list =
        [ for reply in inbox client net do
              match reply with
              | Message message when message.Room = room -> message
              | _ -> () ]

    /// Forgets every client's inbox, so a test can look at what comes next.
    let clearInboxes (net: Net) : Net = { net with Inbox = Map.empty }
