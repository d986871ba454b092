/// Client load balancing between nodes: a node far above its fair share of clients sends the
/// excess to the least-loaded node.
module FormalChat.Protocol.Rebalance

open FormalChat.Protocol.NodeState
open FormalChat.Protocol.ClientReplies

/// How long redirected clients may take to show in their target's heartbeats before this node
/// stops counting them there: reconnecting and the nickname's grant take a round trip or two,
/// far less than this, unless they went elsewhere.
let redirectArrivalTicks (config: ProtocolConfig) : int = 4 * config.SuspectAfter

/// The last redirect's clients, still on their way to a live target that has not reported them.
let private stillArriving (state: NodeState) : RedirectInFlight option =
    match state.Redirected with
    | Some redirect when
        redirect.TicksLeft > 0
        && state.Coordination.View.Contains redirect.Target
        && clientsOn state redirect.Target < redirect.Expected ->
        Some { redirect with TicksLeft = redirect.TicksLeft - 1 }
    | _ -> None

/// A node far above its fair share of clients for K heartbeats in a row sends the excess to
/// the least-loaded node. The clients it sent count at their target until its heartbeats show
/// them (stillArriving): otherwise a target slow to welcome them looks empty, and this node
/// sends it more, falling below its own share.
let rebalance (config: ProtocolConfig) (state: NodeState) : NodeState * Effect list =
    let arriving = stillArriving state
    let state = { state with Redirected = arriving }
    let clientsAt (node: NodeId) =
        match arriving with
        | Some redirect when redirect.Target = node -> max redirect.Expected (clientsOn state node)
        | _ -> clientsOn state node
    let others = livePeers state |> List.map (fun info -> info, clientsAt info.Id)
    let mine = clientsOn state (self state)
    let total = mine + List.sumBy snd others
    let fairShare = (total + others.Length) / (others.Length + 1)
    let excess target = min (mine - fairShare) (fairShare - snd target)
    match config.Rebalance, List.sortBy (fun (info: NodeInfo, clients) -> clients, info.Id) others with
    | Some policy, (target :: _) when mine * 100 > fairShare * (100 + policy.ThresholdPercent) && excess target > 0 ->
        if state.OverloadedTicks + 1 < config.SuspectAfter then
            { state with OverloadedTicks = state.OverloadedTicks + 1 }, []
        else
            let info, clients = target
            let movers = state.Chat.LocalNicks.Values |> Seq.sortDescending |> Seq.truncate (min (excess target) policy.MaxRedirectsPerTick) |> List.ofSeq
            let why = $"node {info.Id} has {clients} clients, this node {mine}"
            let redirect = { Target = info.Id; Expected = clients + movers.Length; TicksLeft = redirectArrivalTicks config }
            { state with OverloadedTicks = 0; Redirected = Some redirect },
            Log(Info, $"redirecting {movers.Length} client(s) to node {info.Id}: {why}")
            :: [ for client in movers do
                     reply client (Redirected(info.Id, info.ClientEndpoint, why))
                     CloseClient(client, $"redirected to node {info.Id}") ]
    | _ -> { state with OverloadedTicks = 0 }, []

