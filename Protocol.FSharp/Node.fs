/// One node: the single entry point `step` that the C# shell calls for every event. It wires
/// the failure detector, the election and the chat together and returns the effects to carry
/// out. Nothing here reads a clock or touches a socket: time arrives as Tick events.
module FormalChat.Protocol.Node

open FormalChat.Protocol.Chat

type ProtocolConfig =
    { /// K: a peer that misses this many heartbeats in a row is suspected.
      SuspectAfter: int
      HeartbeatIntervalMs: int
      MaxClients: int
      MaxTextLength: int }

module ProtocolConfig =
    let defaults =
        { SuspectAfter = 3
          HeartbeatIntervalMs = 2000
          MaxClients = 10_000
          MaxTextLength = 4000 }

type PeerEntry = { Info: NodeInfo; Load: Load }

type NodeState =
    { Info: NodeInfo
      Coordination: Coordination
      /// Every node ever heard of, with its addresses and its last reported load. The view in
      /// Coordination says which of them are believed live.
      Peers: Map<NodeId, PeerEntry>
      Chat: ChatState
      /// Heartbeat intervals since start. No election before the second tick: a node that has
      /// just started first listens for a full interval, so a cluster started together runs one
      /// round, not one per node.
      TicksSinceStart: int
      MessagesSinceTick: int
      Load: Load
      Stopped: bool }

type Event =
    | Ticked
    | PeerMessageReceived of PeerMessage
    | ClientConnected of ClientId
    | ClientRequested of ClientId * ClientRequest
    | ClientDisconnected of ClientId
    | ShutdownRequested

type LogLevel =
    | Debug
    | Info
    | Warning

/// What the shell must do after a step. Effects are carried out in list order: a Log follows
/// the change it reports, and a CloseClient follows the last reply to that client.
type Effect =
    | SendToPeer of NodeInfo * PeerMessage
    | Multicast of PeerMessage
    /// One reply to many local clients: the shell encodes it once.
    | SendToClients of ClientId list * ServerReply
    | CloseClient of ClientId * reason: string
    | Log of LogLevel * string
    /// The node has said goodbye; the shell may exit.
    | Stop

let listenTicksBeforeElection = 2

let init (info: NodeInfo) : NodeState =
    { Info = info
      Coordination = Coordination.init info.Id
      Peers = Map.empty
      Chat = Chat.empty
      TicksSinceStart = 0
      MessagesSinceTick = 0
      Load = Load.zero
      Stopped = false }

let private self (state: NodeState) = state.Info.Id
let private reply client message = SendToClients([ client ], message)
let private refuse client code reason = reply client (Error(code, reason))
let private toEveryLocal (state: NodeState) message = SendToClients(namedClients state.Chat, message)

let private livePeers (state: NodeState) : NodeInfo list =
    [ for id in state.Coordination.View do
          if id <> self state then
              match state.Peers.TryFind id with
              | Some peer -> peer.Info
              | None -> () ]

let private toEveryPeer (state: NodeState) message =
    [ for info in livePeers state -> SendToPeer(info, message) ]

let heartbeatOf (state: NodeState) : Heartbeat =
    { From = state.Info
      Epoch = state.Coordination.Epoch
      Leader = state.Coordination.Leader
      Load = state.Load
      Known = [ for KeyValue(_, peer) in state.Peers -> peer.Info ] }

let clusterStatus (state: NodeState) : ClusterStatus =
    let leader = state.Coordination.Leader
    let row id (info: NodeInfo) (load: Load) : NodeStatus =
        { Id = id; ClientEndpoint = info.ClientEndpoint; Load = load; IsLeader = (leader = Some id); IsSelf = (id = self state) }
    { Self = self state
      Leader = leader
      Epoch = state.Coordination.Epoch
      Nodes =
        [ for id in state.Coordination.View do
              // This node's own client count is live; the rest of its load is as of the last tick.
              if id = self state then row id state.Info { state.Load with Clients = (localNicks state.Chat).Length }
              else
                  match state.Peers.TryFind id with
                  | Some peer -> row id peer.Info peer.Load
                  | None -> () ] }

/// The sender's addresses and load, and the nodes it introduces that this node has not met.
let private rememberPeers (heartbeat: Heartbeat) (state: NodeState) : Map<NodeId, PeerEntry> =
    let introduced =
        heartbeat.Known |> List.filter (fun info -> info.Id <> self state && not (state.Peers.ContainsKey info.Id))
    let peers =
        introduced |> List.fold (fun (peers: Map<NodeId, PeerEntry>) (info: NodeInfo) -> peers.Add(info.Id, { PeerEntry.Info = info; Load = Load.zero })) state.Peers
    peers.Add(heartbeat.From.Id, { PeerEntry.Info = heartbeat.From; Load = heartbeat.Load })

// ---------------------------------------------------------------------------------------------
// Coordination: run the spec's transitions and turn their ring messages into effects.

/// Ring messages addressed to this node itself (a ring of one) are handled at once.
let rec private deliverRing (sent: Sent list) (state: NodeState) : NodeState * Effect list =
    sent
    |> List.fold
        (fun (state, effects) message ->
            if message.To = self state then
                let next, more = handlePeerMessage message.Message state
                next, effects @ more
            else
                match state.Peers.TryFind message.To with
                | Some peer -> state, effects @ [ SendToPeer(peer.Info, message.Message) ]
                | None -> state, effects @ [ Log(Warning, $"no address for node {message.To}; dropped {message.Message}") ])
        (state, [])

/// Runs a coordination transition and reports, in words, what changed in the view and leadership.
and private coordinate (transition: Coordination -> Coordination * Sent list) (state: NodeState) : NodeState * Effect list =
    let before = state.Coordination
    let after, sent = transition before
    let state = { state with Coordination = after }
    let viewLogs, state = reportViewChange before state
    let electionLogs =
        [ match before.Participant, after.Participant, after.Leader with
          | false, true, None when after.Epoch > before.Epoch && sent |> List.exists (fun m -> m.Message = Election { Candidate = self state; Epoch = after.Epoch }) ->
              Log(Info, $"election started for epoch {after.Epoch}: node {self state} is a candidate")
          | _ -> ()
          if after.Leader <> before.Leader || after.Epoch <> before.Epoch then
              match after.Leader with
              | Some leader when leader = self state ->
                  Log(Info, $"election won: node {leader} is the leader for epoch {after.Epoch}")
              | Some leader -> Log(Info, $"leader is node {leader} (epoch {after.Epoch})")
              | None -> () ]
    let leaderNotice =
        match after.Leader with
        | Some leader when after.Leader <> before.Leader -> [ toEveryLocal state (Notice $"leader is now node {leader} (epoch {after.Epoch})") ]
        | _ -> []
    let state, ringEffects = deliverRing sent state
    state, viewLogs @ electionLogs @ leaderNotice @ ringEffects

/// Nodes that joined or left the view are logged; users of departed nodes are forgotten and
/// a node that just appeared is told who is online here.
and private reportViewChange (before: Coordination) (state: NodeState) : Effect list * NodeState =
    let after = state.Coordination
    let joined = Set.difference after.View before.View
    let departed = Set.difference before.View after.View
    if joined.IsEmpty && departed.IsEmpty then
        [], state
    else
        let chat, goneUsers = forgetNodesOutside after.View state.Chat
        let state = { state with Chat = chat }
        let effects =
            [ for id in joined do
                  Log(Info, $"node {id} joined the view {Set.toList after.View}")
                  match state.Peers.TryFind id with
                  | Some peer -> SendToPeer(peer.Info, UsersListed(self state, localNicks chat))
                  | None -> ()
              for id in departed do
                  Log(Warning, $"node {id} left the view {Set.toList after.View}")
              for user in goneUsers do
                  toEveryLocal state (Notice $"{user.Nick} left (node {user.Node} is gone)") ]
        effects, state

and private maybeStartElection (state: NodeState) : NodeState * Effect list =
    if state.TicksSinceStart >= listenTicksBeforeElection && Election.needsElection state.Coordination then
        coordinate Election.startElection state
    else
        state, []

and handlePeerMessage (message: PeerMessage) (state: NodeState) : NodeState * Effect list =
    match message with
    | HeartbeatSent heartbeat when heartbeat.From.Id = self state -> state, []
    | HeartbeatSent heartbeat ->
        let state = { state with Peers = rememberPeers heartbeat state }
        let state, effects =
            coordinate (fun c -> FailureDetector.recvHeartbeat heartbeat.From.Id heartbeat.Epoch heartbeat.Leader c, []) state
        let state, more = maybeStartElection state
        state, effects @ more
    | Election election -> coordinate (Election.recvElection election) state
    | LeaderAnnounced leader -> coordinate (Election.recvLeader leader) state
    | LeaveAnnounced node ->
        let state, effects = coordinate (fun c -> FailureDetector.recvLeave node c, []) state
        let state, more = maybeStartElection state
        state, Log(Info, $"node {node} announced it is leaving") :: effects @ more
    | BroadcastForwarded line -> state, [ toEveryLocal state (Message line) ]
    | PrivateForwarded line ->
        match clientOfNick line.To state.Chat with
        | Some client -> state, [ reply client (Private line) ]
        | None -> state, [ Log(Debug, $"private message for {line.To}, who is not here; dropped") ]
    | UserJoined(nick, node) ->
        let chat = { state.Chat with Directory = state.Chat.Directory.Add(nick, node) }
        // Two nodes accepted the same nickname at once: the user on the higher node keeps it.
        match clientOfNick nick state.Chat with
        | Some client when node > self state ->
            let chat = { chat with Sessions = chat.Sessions.Remove client }
            { state with Chat = chat },
            [ refuse client NickTaken $"the nickname {nick} was taken on node {node} at the same moment"
              CloseClient(client, "nickname conflict") ]
        | Some _ -> state, []
        | None -> { state with Chat = chat }, [ toEveryLocal state (Notice $"{nick} joined on node {node}") ]
    | UserLeft(nick, node) ->
        if state.Chat.Directory.TryFind nick = Some node then
            { state with Chat = { state.Chat with Directory = state.Chat.Directory.Remove nick } },
            [ toEveryLocal state (Notice $"{nick} left") ]
        else
            state, []
    | UsersListed(node, nicks) ->
        let others = state.Chat.Directory |> Map.filter (fun _ at -> at <> node)
        let directory =
            nicks |> List.fold (fun directory nick -> if Map.containsKey nick directory then directory else Map.add nick node directory) others
        { state with Chat = { state.Chat with Directory = directory } }, []

// ---------------------------------------------------------------------------------------------
// Clients.

let private hello (config: ProtocolConfig) (client: ClientId) (nick: string) (state: NodeState) =
    match state.Chat.Sessions.TryFind client, validateNick nick with
    | Some(Named current), _ -> state, [ refuse client AlreadyHello $"you are already {current}" ]
    | _, Result.Error reason -> state, [ refuse client NickInvalid reason ]
    | _, Ok nick when state.Chat.Directory.ContainsKey nick ->
        state, [ refuse client NickTaken $"the nickname {nick} is already in use on node {state.Chat.Directory[nick]}" ]
    | _, Ok nick when (localNicks state.Chat).Length >= config.MaxClients ->
        state, [ refuse client ServerFull $"node {self state} has its maximum of {config.MaxClients} users"; CloseClient(client, "server full") ]
    | _, Ok nick ->
        let others = toEveryLocal state (Notice $"{nick} joined")
        let chat =
            { Sessions = state.Chat.Sessions.Add(client, Named nick)
              Directory = state.Chat.Directory.Add(nick, self state) }
        { state with Chat = chat },
        [ others
          reply client (Welcome(nick, self state, state.Coordination.Leader))
          Log(Info, $"{nick} connected (client {client})") ]
        @ toEveryPeer state (UserJoined(nick, self state))

let private disconnect (client: ClientId) (state: NodeState) =
    let chat = { state.Chat with Sessions = state.Chat.Sessions.Remove client }
    match nickOf client state.Chat with
    | Some nick ->
        let chat = { chat with Directory = chat.Directory.Remove nick }
        let state = { state with Chat = chat }
        state,
        [ toEveryLocal state (Notice $"{nick} left"); Log(Info, $"{nick} disconnected (client {client})") ]
        @ toEveryPeer state (UserLeft(nick, self state))
    | None -> { state with Chat = chat }, []

let private say (config: ProtocolConfig) (client: ClientId) (nick: string) (text: string) (state: NodeState) =
    match validateText config.MaxTextLength text with
    | Result.Error reason -> state, [ refuse client TextInvalid reason ]
    | Ok text ->
        let line = { ChatLine.From = nick; FromNode = self state; Text = text }
        { state with MessagesSinceTick = state.MessagesSinceTick + 1 },
        toEveryLocal state (Message line) :: toEveryPeer state (BroadcastForwarded line)

let private whisper (config: ProtocolConfig) (client: ClientId) (nick: string) (target: string) (text: string) (state: NodeState) =
    match validateText config.MaxTextLength text, state.Chat.Directory.TryFind target with
    | Result.Error reason, _ -> state, [ refuse client TextInvalid reason ]
    | _, None -> state, [ refuse client NoSuchUser $"nobody called {target} is online" ]
    | Ok text, Some node ->
        let line = { PrivateLine.From = nick; FromNode = self state; To = target; Text = text }
        let delivery =
            if node = self state then
                [ for recipient in Option.toList (clientOfNick target state.Chat) do
                      if recipient <> client then reply recipient (Private line) ]
            else
                match state.Peers.TryFind node with
                | Some peer -> [ SendToPeer(peer.Info, PrivateForwarded line) ]
                | None -> []
        { state with MessagesSinceTick = state.MessagesSinceTick + 1 }, delivery @ [ reply client (Private line) ]

let private request (config: ProtocolConfig) (client: ClientId) (request: ClientRequest) (state: NodeState) =
    match request, nickOf client state.Chat with
    | Hello nick, _ -> hello config client nick state
    | Quit, _ ->
        let state, effects = disconnect client state
        state, effects @ [ CloseClient(client, "bye") ]
    | _, None -> state, [ refuse client HelloFirst "say hello with a nickname first" ]
    | Say text, Some nick -> say config client nick text state
    | Whisper(target, text), Some nick -> whisper config client nick target text state
    | Who, Some _ ->
        let users = [ for KeyValue(nick, node) in state.Chat.Directory -> { Nick = nick; Node = node } ]
        state, [ reply client (WhoListed users) ]
    | Status, Some _ -> state, [ reply client (StatusReported(clusterStatus state)) ]

// ---------------------------------------------------------------------------------------------
// Time.

let private tick (config: ProtocolConfig) (state: NodeState) =
    let load =
        { Clients = (localNicks state.Chat).Length
          Rooms = 0
          MessagesPerSecond = state.MessagesSinceTick * 1000 / max 1 config.HeartbeatIntervalMs }
    let state = { state with TicksSinceStart = min (state.TicksSinceStart + 1) listenTicksBeforeElection; MessagesSinceTick = 0; Load = load }
    let state, effects = coordinate (fun c -> FailureDetector.tick config.SuspectAfter c, []) state
    let state, more = maybeStartElection state
    state, Multicast(HeartbeatSent(heartbeatOf state)) :: effects @ more

let private shutdown (state: NodeState) =
    { state with Stopped = true },
    Log(Info, $"node {self state} is leaving the cluster") :: toEveryPeer state (LeaveAnnounced(self state)) @ [ Stop ]

/// The one entry point: the next state and the effects to carry out, in order.
let step (config: ProtocolConfig) (state: NodeState) (event: Event) : NodeState * Effect list =
    if state.Stopped then
        state, []
    else
        match event with
        | Ticked -> tick config state
        | PeerMessageReceived message -> handlePeerMessage message state
        | ClientConnected client when state.Chat.Sessions.Count >= config.MaxClients ->
            state, [ refuse client ServerFull $"node {self state} has its maximum of {config.MaxClients} clients"; CloseClient(client, "server full") ]
        | ClientConnected client -> { state with Chat = { state.Chat with Sessions = state.Chat.Sessions.Add(client, Anonymous) } }, []
        | ClientRequested(client, message) -> request config client message state
        | ClientDisconnected client -> disconnect client state
        | ShutdownRequested -> shutdown state
