/// Client load balancing between nodes: a node far above its fair share of clients sends the
/// excess to the least-loaded node.
module FormalChat.Protocol.Rebalance

open FormalChat.Protocol.NodeState
open FormalChat.Protocol.ClientReplies

/// A node far above its fair share of clients for K heartbeats in a row sends the excess to
/// the least-loaded node.
let rebalance (config: ProtocolConfig) (state: NodeState) : NodeState * Effect list =
    let others = livePeers state |> List.map (fun info -> info, clientsOn state info.Id)
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
            { state with OverloadedTicks = 0 },
            Log(Info, $"redirecting {movers.Length} client(s) to node {info.Id}: {why}")
            :: [ for client in movers do
                     reply client (Redirected(info.Id, info.ClientEndpoint, why))
                     CloseClient(client, $"redirected to node {info.Id}") ]
    | _ -> { state with OverloadedTicks = 0 }, []

