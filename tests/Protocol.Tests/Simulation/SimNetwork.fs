/// The simulated world of ReplicationSimulation.fs: whole NodeStates driven through Node.step,
/// a seeded network between them and their clients, simulated disks, crashes and partitions.
/// Nodes step through NodeDriver, as Simulation.Nodes's do; this file is the timed delivery policy.
/// Everything here is deterministic given the run's one System.Random: virtual time, a single
/// event queue ordered by (time, insertion number), and no iteration over hash-ordered sets.
///
/// The network, as the real shells see it:
/// - Peer messages (SendToPeer) travel on one TCP link per directed pair of nodes: FIFO, with a
///   random delay. Different links interleave freely. A partition or a crash breaks the links it
///   touches: what is in flight on them is lost, as with a broken TCP connection, and what is
///   sent across a cut is dropped (PeerNetwork.cs drops frames while a link is down).
/// - Heartbeats (Multicast) are UDP datagrams, one per receiver, each with its own delay; a
///   lossy node loses some of its own and others' heartbeats.
/// - Each client connection is a TCP connection too: FIFO both ways. The replies of one
///   Node.step to one connection arrive together.
/// - Ticks come per node every HeartbeatIntervalMs, with jitter, as the shell's timer does.
/// - The disk keeps every AppendToLog / RewriteLog of a node and survives its crash; a restart
///   is NodeState.recover(disk) (NodeState.init info), as the real node starts.
module FormalChat.Protocol.Tests.SimNetwork

open System
open System.Collections.Generic
open FormalChat.Protocol
open FormalChat.Protocol.NodeState

/// Virtual milliseconds since the run started.
type Time = int64

/// One client connection to one incarnation of a node.
type Conn =
    { Id: ClientId
      Client: int
      Node: NodeId
      NodeIncarnation: int
      /// The token the shell draws for a new connection (ClientConnected).
      Token: string
      /// The node side is gone: the node closed it, the client left it, or the node crashed.
      mutable ClosedAtNode: bool
      /// The client has given it up (it reads nothing more from it).
      mutable ClosedAtClient: bool
      mutable LastToNode: Time
      mutable LastToClient: Time }

type ToNode =
    | Connect
    | Request of ClientRequest
    | Disconnect

type ToClient =
    | Reply of ServerReply
    | Closed of reason: string

/// What the event queue holds. Events for a node carry its incarnation or the link generation
/// they were sent on, so what was meant for a crashed process or a broken link is dropped.
type Ev =
    | Tick of node: NodeId * incarnation: int
    | PeerArrives of from: NodeId * dest: NodeId * link: int64 * message: PeerMessage
    | DatagramArrives of from: NodeId * dest: NodeId * message: PeerMessage
    | NodeReads of Conn * ToNode
    /// The shell noticed a connection it closed is gone (ClientGateway: ClientDisconnected).
    | ShellDisconnects of Conn
    | ClientReads of Conn * ToClient list
    | ClientWakes of client: int
    /// The client notices its connection died with the node.
    | ConnectionLost of Conn
    | FaultControl

/// Per-run network character, drawn from the seed.
type Timing =
    { IntervalMs: int
      /// Tick jitter, in percent of the interval either way.
      JitterPercent: int
      PeerDelayMin: int
      PeerDelayMax: int
      /// Chance that a peer message is held up much longer (a slow link), up to SlowDelayMax.
      SlowChance: float
      SlowDelayMax: int
      DatagramDelayMax: int
      ClientDelayMax: int }

type SimNode =
    { Id: NodeId
      Info: NodeInfo
      mutable State: NodeState
      mutable Up: bool
      /// Counts restarts; events for an older incarnation are dropped.
      mutable Incarnation: int
      /// The node's logs on disk, one per room, oldest first.
      Disk: SortedDictionary<RoomName, ResizeArray<RoomMessage>>
      /// Chance that a heartbeat to or from this node is lost (a lossy node).
      mutable HeartbeatLoss: float
      /// Client connections open at this node, by id.
      OpenConns: SortedSet<ClientId>
      mutable Steps: int }

/// What happened recently, for the report of a failure. Formatted only when one happens.
type TraceEntry =
    | Event of step: int * time: Time * Ev
    | Note of time: Time * string
    | NodeLog of time: Time * node: NodeId * string

type Counters =
    { mutable Steps: int
      mutable PeerMessages: int
      mutable PeerDropped: int
      mutable Datagrams: int
      mutable DatagramsLost: int
      mutable Crashes: int
      mutable Leaves: int
      mutable Restarts: int
      mutable Partitions: int
      mutable LossyPeriods: int
      mutable NodeWarnings: int }

type Net =
    { Seed: int
      Random: Random
      Config: ProtocolConfig
      Timing: Timing
      Nodes: SimNode[]
      Queue: PriorityQueue<Ev, struct (int64 * int64)>
      mutable Now: Time
      mutable Inserted: int64
      /// Generation of each directed peer link [from, to]; bumped when the link breaks.
      LinkGeneration: int64[,]
      /// Arrival time of the last message queued on each link, to keep the link FIFO.
      LinkLast: Time[,]
      /// The node cut off from every other node, if any.
      mutable Isolated: NodeId option
      Conns: Dictionary<ClientId, Conn>
      mutable NextConn: ClientId
      Trace: TraceEntry[]
      mutable TraceNext: int
      Counters: Counters }

let createNet (seed: int) (random: Random) (config: ProtocolConfig) (timing: Timing) (nodeCount: int) (traceLength: int) : Net =
    let size = nodeCount + 1
    { Seed = seed
      Random = random
      Config = config
      Timing = timing
      Nodes =
        [| for id in 1..nodeCount ->
               { Id = id
                 Info = NodeDriver.infoOf id
                 State = init (NodeDriver.infoOf id)
                 Up = true
                 Incarnation = 0
                 Disk = SortedDictionary()
                 HeartbeatLoss = 0.0
                 OpenConns = SortedSet()
                 Steps = 0 } |]
      Queue = PriorityQueue()
      Now = 0L
      Inserted = 0L
      LinkGeneration = Array2D.zeroCreate size size
      LinkLast = Array2D.zeroCreate size size
      Isolated = None
      Conns = Dictionary()
      NextConn = 1L
      Trace = Array.zeroCreate traceLength
      TraceNext = 0
      Counters =
        { Steps = 0
          PeerMessages = 0
          PeerDropped = 0
          Datagrams = 0
          DatagramsLost = 0
          Crashes = 0
          Leaves = 0
          Restarts = 0
          Partitions = 0
          LossyPeriods = 0
          NodeWarnings = 0 } }

let node (net: Net) (id: NodeId) : SimNode = net.Nodes[id - 1]

let liveNodes (net: Net) : SimNode list = [ for n in net.Nodes do if n.Up then n ]

let trace (net: Net) (entry: TraceEntry) : unit =
    net.Trace[net.TraceNext % net.Trace.Length] <- entry
    net.TraceNext <- net.TraceNext + 1

let note (net: Net) (text: string) : unit = trace net (Note(net.Now, text))

let between (random: Random) (low: int) (high: int) : int = low + random.Next(high - low + 1)

let chance (random: Random) (probability: float) : bool = random.NextDouble() < probability

let schedule (net: Net) (at: Time) (ev: Ev) : unit =
    net.Inserted <- net.Inserted + 1L
    net.Queue.Enqueue(ev, struct (max at net.Now, net.Inserted))

let after (net: Net) (delay: int) (ev: Ev) : unit = schedule net (net.Now + int64 delay) ev

/// The next tick of a node: one interval later, give or take the jitter.
let scheduleTick (net: Net) (n: SimNode) : unit =
    let interval = net.Timing.IntervalMs
    let jitter = interval * net.Timing.JitterPercent / 100
    after net (between net.Random (interval - jitter) (interval + jitter)) (Tick(n.Id, n.Incarnation))

// ---------------------------------------------------------------------------------------------
// Links.

/// A partition cuts every link between the isolated node and the others.
let isCut (net: Net) (a: NodeId) (b: NodeId) : bool =
    match net.Isolated with
    | Some x -> a <> b && (a = x || b = x)
    | None -> false

/// Breaks a directed link: what is in flight on it is lost.
let breakLink (net: Net) (a: NodeId) (b: NodeId) : unit =
    net.LinkGeneration[a, b] <- net.LinkGeneration[a, b] + 1L
    net.LinkLast[a, b] <- net.Now

let breakLinksOf (net: Net) (id: NodeId) (outgoing: bool) : unit =
    for other in net.Nodes do
        if other.Id <> id then
            breakLink net other.Id id
            if outgoing then breakLink net id other.Id

let private peerDelay (net: Net) : int =
    let t = net.Timing
    if chance net.Random t.SlowChance then between net.Random t.PeerDelayMax t.SlowDelayMax
    else between net.Random t.PeerDelayMin t.PeerDelayMax

let sendPeer (net: Net) (from: NodeId) (dest: NodeId) (message: PeerMessage) : unit =
    net.Counters.PeerMessages <- net.Counters.PeerMessages + 1
    if isCut net from dest then
        net.Counters.PeerDropped <- net.Counters.PeerDropped + 1
    else
        let at = max (net.Now + int64 (peerDelay net)) net.LinkLast[from, dest]
        net.LinkLast[from, dest] <- at
        schedule net at (PeerArrives(from, dest, net.LinkGeneration[from, dest], message))

let private multicast (net: Net) (from: NodeId) (message: PeerMessage) : unit =
    for other in net.Nodes do
        if other.Id <> from then
            net.Counters.Datagrams <- net.Counters.Datagrams + 1
            let loss = max (node net from).HeartbeatLoss other.HeartbeatLoss
            if isCut net from other.Id || (loss > 0.0 && chance net.Random loss) then
                net.Counters.DatagramsLost <- net.Counters.DatagramsLost + 1
            else
                after net (between net.Random 1 net.Timing.DatagramDelayMax) (DatagramArrives(from, other.Id, message))

// ---------------------------------------------------------------------------------------------
// Client connections.

let private clientDelay (net: Net) : int = between net.Random 1 net.Timing.ClientDelayMax

/// The client writes on its connection; the node reads it in order.
let sendToNode (net: Net) (conn: Conn) (item: ToNode) : unit =
    let at = max (net.Now + int64 (clientDelay net)) conn.LastToNode
    conn.LastToNode <- at
    schedule net at (NodeReads(conn, item))

let private sendToClient (net: Net) (conn: Conn) (items: ToClient list) : unit =
    let at = max (net.Now + int64 (clientDelay net)) conn.LastToClient
    conn.LastToClient <- at
    schedule net at (ClientReads(conn, items))

/// A client opens a connection to a node (it may be down: then nothing answers).
let openConn (net: Net) (client: int) (id: NodeId) : Conn =
    let n = node net id
    let conn =
        { Id = net.NextConn
          Client = client
          Node = id
          NodeIncarnation = n.Incarnation
          Token = $"token-{net.NextConn}"
          ClosedAtNode = not n.Up
          ClosedAtClient = false
          LastToNode = net.Now
          LastToClient = net.Now }
    net.NextConn <- net.NextConn + 1L
    net.Conns[conn.Id] <- conn
    if n.Up then
        n.OpenConns.Add conn.Id |> ignore
        sendToNode net conn Connect
    else
        after net (between net.Random 1 net.Timing.ClientDelayMax) (ConnectionLost conn)
    conn

/// The client gives a connection up; the node notices once what was sent before has arrived.
let closeConn (net: Net) (conn: Conn) : unit =
    if not conn.ClosedAtClient then
        conn.ClosedAtClient <- true
        sendToNode net conn Disconnect

// ---------------------------------------------------------------------------------------------
// Nodes.

/// Crashes a node: its state is gone, its disk stays. Its links break (what it had sent is lost
/// too unless `drainOutgoing`, as after a graceful stop) and its clients' connections die.
let crash (net: Net) (n: SimNode) (drainOutgoing: bool) : unit =
    n.Up <- false
    n.Incarnation <- n.Incarnation + 1
    breakLinksOf net n.Id (not drainOutgoing)
    for id in List.ofSeq n.OpenConns do
        let conn = net.Conns[id]
        conn.ClosedAtNode <- true
        if not conn.ClosedAtClient then after net (between net.Random 1 (net.Timing.IntervalMs * 3 / 2)) (ConnectionLost conn)
    n.OpenConns.Clear()

/// Runs one event through the node's Node.step (NodeDriver.step) and carries out the effects in
/// order with the timed policy: peer messages and heartbeats get seeded delays, the disk keeps the
/// writes, and the replies of one step to one connection leave together after the step.
let stepNode (net: Net) (n: SimNode) (event: Event) : unit =
    let next, effects = NodeDriver.step net.Config n.Id n.State event
    n.State <- next
    n.Steps <- n.Steps + 1
    let batches = Dictionary<ClientId, ResizeArray<ToClient>>()
    let order = ResizeArray<ClientId>()
    let toClient (id: ClientId) (item: ToClient) =
        match net.Conns.TryGetValue id with
        | true, conn when conn.Node = n.Id && not conn.ClosedAtNode ->
            match batches.TryGetValue id with
            | true, batch -> batch.Add item
            | _ ->
                batches[id] <- ResizeArray [ item ]
                order.Add id
        | _ -> ()
    let stopped = ref false
    let delivery: NodeDriver.Delivery<unit> =
        { Peer = fun from dest message () -> if dest <> from then sendPeer net from dest message
          Multicast = fun from message () -> multicast net from message
          Reply = fun _ id reply () -> toClient id (Reply reply)
          Close =
            fun _ id reason () ->
                toClient id (Closed reason)
                match net.Conns.TryGetValue id with
                | true, conn when conn.Node = n.Id && not conn.ClosedAtNode ->
                    conn.ClosedAtNode <- true
                    n.OpenConns.Remove id |> ignore
                    after net 1 (ShellDisconnects conn)
                | _ -> ()
          Disk =
            fun _ write () ->
                match write with
                | AppendToLog(room, messages) ->
                    match n.Disk.TryGetValue room with
                    | true, log -> log.AddRange messages
                    | _ -> n.Disk[room] <- ResizeArray messages
                | RewriteLog(room, messages) -> n.Disk[room] <- ResizeArray messages
                | _ -> ()
          Log =
            fun _ level text () ->
                if level = Warning then net.Counters.NodeWarnings <- net.Counters.NodeWarnings + 1
                if level <> Debug then trace net (NodeLog(net.Now, n.Id, text))
          Stop = fun _ () -> stopped.Value <- true }
    NodeDriver.carryOut delivery n.Id effects ()
    for id in order do
        sendToClient net net.Conns[id] (List.ofSeq batches[id])
    if stopped.Value then
        note net $"node {n.Id} stopped after saying goodbye"
        crash net n true

/// A node starts again: a fresh state with its logs read back, as the real node starts.
let restart (net: Net) (n: SimNode) : unit =
    let logs = [ for KeyValue(room, log) in n.Disk -> room, List.ofSeq log ]
    // As the shell: this run's ids for id-less posts start from its clock, in microseconds.
    n.State <- recover logs (init n.Info) |> startNumberingPosts (net.Now * 1000L + 1L)
    n.Up <- true
    breakLinksOf net n.Id true
    scheduleTick net n

/// Cuts one node off from all the others, or heals the cut.
let isolate (net: Net) (id: NodeId) : unit =
    net.Isolated <- Some id
    breakLinksOf net id true

let heal (net: Net) : unit = net.Isolated <- None

/// Delivers a network event to its node, unless it was meant for a broken link, a dead
/// process or a closed connection. Returns whether a node ran a step.
let deliverToNode (net: Net) (ev: Ev) : bool =
    match ev with
    | Tick(id, incarnation) ->
        let n = node net id
        if n.Up && n.Incarnation = incarnation then
            stepNode net n Ticked
            scheduleTick net n
            true
        else false
    | PeerArrives(from, dest, link, message) ->
        let n = node net dest
        if n.Up && link = net.LinkGeneration[from, dest] && not (isCut net from dest) then
            stepNode net n (PeerMessageReceived message)
            true
        else false
    | DatagramArrives(from, dest, message) ->
        let n = node net dest
        if n.Up && not (isCut net from dest) then
            stepNode net n (PeerMessageReceived message)
            true
        else false
    | NodeReads(conn, item) ->
        let n = node net conn.Node
        if n.Up && n.Incarnation = conn.NodeIncarnation && not conn.ClosedAtNode then
            match item with
            | Connect -> stepNode net n (ClientConnected(conn.Id, conn.Token))
            | Request request -> stepNode net n (ClientRequested(conn.Id, request))
            | Disconnect ->
                conn.ClosedAtNode <- true
                n.OpenConns.Remove conn.Id |> ignore
                stepNode net n (ClientDisconnected conn.Id)
            true
        else false
    | ShellDisconnects conn ->
        let n = node net conn.Node
        if n.Up && n.Incarnation = conn.NodeIncarnation then
            stepNode net n (ClientDisconnected conn.Id)
            true
        else false
    | ClientReads _
    | ClientWakes _
    | ConnectionLost _
    | FaultControl -> false

// ---------------------------------------------------------------------------------------------
// Descriptions for failure reports.

let private clip (limit: int) (text: string) : string =
    let text = text.Replace("\n", " ").Replace("  ", " ")
    if text.Length <= limit then text else text.Substring(0, limit) + "…"

let describePeerMessage (message: PeerMessage) : string =
    let m (x: RoomMessage) = $"{x.Room}#{x.Seq}:{x.From}/{x.ClientMessageId}"
    let ms (xs: RoomMessage list) =
        match xs with
        | [] -> "[]"
        | _ when xs.Length <= 4 -> "[" + String.Join(" ", xs |> List.map m) + "]"
        | _ -> $"[{m xs.Head} … {m (List.last xs)} ({xs.Length})]"
    let b (x: BackupAssignment) = $"backup {x.Backup} for owner {x.Owner} e{x.Epoch}v{x.Version}"
    match message with
    | HeartbeatSent hb -> $"heartbeat from {hb.From.Id} e{hb.Epoch} leader {hb.Leader}"
    | RoomAssigned(room, a) -> $"RoomAssigned {room} owner {a.Owner} e{a.Epoch}v{a.Version} last {a.LastSeq}"
    | RoomPosted post -> $"RoomPosted {post.Room} {post.From}/{post.ClientMessageId} via {post.FromNode}"
    | RoomSequenced x -> $"RoomSequenced {m x}"
    | BackupAssigned(room, x) -> $"BackupAssigned {room} {b x}"
    | ReplicaSynced(room, x, committed, pending) -> $"ReplicaSynced {room} {b x} committed {ms committed} pending {ms pending}"
    | ReplicaAppended(room, x, messages) -> $"ReplicaAppended {room} {b x} {ms messages}"
    | ReplicaStored(room, x, seq) -> $"ReplicaStored {room} {b x} up to {seq}"
    | HistoryRequested(room, after, requester) -> $"HistoryRequested {room} after {after} by {requester}"
    | HistoryShared(room, messages) -> $"HistoryShared {room} {ms messages}"
    | UsersListed(node, users) -> $"UsersListed {node} ({users.Length} users)"
    | other -> clip 160 $"%A{other}"

let describeEv (ev: Ev) : string =
    match ev with
    | Tick(id, inc) -> $"tick node {id} (incarnation {inc})"
    | PeerArrives(from, dest, link, message) -> $"peer {from}->{dest} (link {link}): {describePeerMessage message}"
    | DatagramArrives(from, dest, message) -> $"udp {from}->{dest}: {describePeerMessage message}"
    | NodeReads(conn, item) -> clip 200 $"client {conn.Client} conn {conn.Id} -> node {conn.Node}: %A{item}"
    | ShellDisconnects conn -> $"node {conn.Node} shell: conn {conn.Id} closed"
    | ClientReads(conn, items) -> clip 300 $"node {conn.Node} -> client {conn.Client} conn {conn.Id}: %A{items}"
    | ClientWakes client -> $"client {client} wakes"
    | ConnectionLost conn -> $"client {conn.Client} loses conn {conn.Id} to node {conn.Node}"
    | FaultControl -> "fault control"

let describeTrace (net: Net) (count: int) : string list =
    let total = min net.TraceNext net.Trace.Length
    let first = net.TraceNext - min count total
    [ for i in first .. net.TraceNext - 1 do
          match net.Trace[i % net.Trace.Length] with
          | Event(step, time, ev) -> $"  [{step} t={time}] {describeEv ev}"
          | Note(time, text) -> $"  [t={time}] ** {text}"
          | NodeLog(time, id, text) -> $"  [t={time}] node {id} log: {clip 200 text}" ]

let describeNode (n: SimNode) : string =
    let s = n.State
    let c = s.Coordination
    let rooms =
        [ for KeyValue(room, a) in s.Placements ->
              let backup =
                  match s.Backups.TryFind room with
                  | Some x -> $" backup {x.Backup}/{x.Owner} e{x.Epoch}v{x.Version}"
                  | None -> ""
              let primary =
                  match s.Primaries.TryFind room with
                  | Some p ->
                      let synced = p.Synced |> Option.map (fun x -> $"e{x.Epoch}v{x.Version}->{x.Backup}") |> Option.defaultValue "none"
                      $" PRIMARY pending [{String.Join(',', p.Pending |> Seq.map _.Seq)}] synced {synced} stored {p.Stored}"
                  | None -> ""
              let replicas =
                  match s.Replicas.TryFind room with
                  | Some r -> $" replicas [{String.Join(',', r |> Seq.map _.Seq)}]"
                  | None -> ""
              $"{room}: owner {a.Owner} e{a.Epoch}v{a.Version} last {a.LastSeq}{backup}; history to {(historyOf room s).LastSeq}{primary}{replicas}" ]
    let status = if n.Up then "up" else "DOWN"
    let unconfirmed = s.Unconfirmed |> Map.toList |> List.map (fun (room, posts) -> $"{room}:{posts.Length}")
    $"  node {n.Id} ({status}, incarnation {n.Incarnation}): view {Set.toList c.View} epoch {c.Epoch} leader {c.Leader} participant {c.Participant} peers {s.Peers.Count} unconfirmed {unconfirmed}\n"
    + String.Join("\n", rooms |> List.map (fun line -> "      " + line))
