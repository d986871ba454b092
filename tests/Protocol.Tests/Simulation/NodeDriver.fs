/// The one node-stepping core of the simulated clusters. Both drivers, the synchronous
/// `Simulation.Nodes` and the timed, seeded `SimNetwork`, run every event through `step` (Node.step,
/// then the state's invariants) and hand every effect to `carryOut`, which calls the driver's
/// `Delivery` for it. The delivery policy, how and when a peer message, a heartbeat or a client
/// reply arrives, what a disk keeps and what a crash loses, is the only part that differs.
module FormalChat.Protocol.Tests.NodeDriver

open FormalChat.Protocol
open FormalChat.Protocol.NodeState

/// A node's address card, the same in every simulated cluster; nothing here opens a socket.
let infoOf (id: NodeId) : NodeInfo =
    { Id = id
      ClientEndpoint = { Host = "127.0.0.1"; Port = 5000 + id }
      PeerEndpoint = { Host = "127.0.0.1"; Port = 6000 + id } }

/// What a driver does with each kind of effect of one node's step, in the order the step
/// produced them. `'net` is the driver's world: an immutable value threaded through, or a
/// mutable one passed along unchanged.
type Delivery<'net> =
    { /// A peer message on the link from the first node to the second.
      Peer: NodeId -> NodeId -> PeerMessage -> 'net -> 'net
      /// A heartbeat datagram from the node to the others.
      Multicast: NodeId -> PeerMessage -> 'net -> 'net
      /// A reply to one client of the node.
      Reply: NodeId -> ClientId -> ServerReply -> 'net -> 'net
      /// The node closes one client's connection, with the reason.
      Close: NodeId -> ClientId -> string -> 'net -> 'net
      /// A write to the node's disk: AppendToLog or RewriteLog.
      Disk: NodeId -> Effect -> 'net -> 'net
      Log: NodeId -> LogLevel -> string -> 'net -> 'net
      /// The node has said goodbye.
      Stop: NodeId -> 'net -> 'net }

/// A delivery that drops every effect; a driver overrides the kinds it carries.
let ignoring<'net> : Delivery<'net> =
    { Peer = fun _ _ _ net -> net
      Multicast = fun _ _ net -> net
      Reply = fun _ _ _ net -> net
      Close = fun _ _ _ net -> net
      Disk = fun _ _ net -> net
      Log = fun _ _ _ net -> net
      Stop = fun _ net -> net }

/// One event at one node through Node.step; a broken invariant fails the test at once.
let step (config: ProtocolConfig) (id: NodeId) (state: NodeState) (event: Event) : NodeState * Effect list =
    let next, effects = Node.step config state event
    match NodeState.invariantViolations next with
    | [] -> ()
    | violations -> failwith $"""invariant broken at node {id} after {event}: {String.concat "; " violations}"""
    next, effects

/// Hands each effect of node `id`'s step to the delivery, in order.
let carryOut (delivery: Delivery<'net>) (id: NodeId) (effects: Effect list) (net: 'net) : 'net =
    effects
    |> List.fold
        (fun net effect ->
            match effect with
            | SendToPeer(info, message) -> delivery.Peer id info.Id message net
            | Multicast message -> delivery.Multicast id message net
            | SendToClients(clients, reply) -> clients |> Set.fold (fun net client -> delivery.Reply id client reply net) net
            | CloseClient(client, reason) -> delivery.Close id client reason net
            | AppendToLog _
            | RewriteLog _ -> delivery.Disk id effect net
            | Log(level, text) -> delivery.Log id level text net
            | Stop -> delivery.Stop id net)
        net
