/// Every message that crosses a wire: between nodes, and between a client and its node.
namespace FormalChat.Protocol

/// The protocol version every frame carries; a frame of another version is refused.
[<AutoOpen>]
module ProtocolVersion =
    let protocolVersion = 1

/// LCR election message: the candidate travels clockwise around the ring (spec: type "election").
type ElectionMessage =
    { Candidate: NodeId
      Epoch: Epoch }

/// Announcement of the elected leader, forwarded once around the ring (spec: type "leader").
type LeaderMessage =
    { Leader: NodeId
      Epoch: Epoch }

type Heartbeat =
    { From: NodeInfo
      Epoch: Epoch
      Leader: NodeId option
      Load: Load
      /// Nodes the sender knows, so seeds can introduce nodes that have no multicast.
      Known: NodeInfo list }

type ChatLine =
    { From: string
      FromNode: NodeId
      Text: string }

type PrivateLine =
    { From: string
      FromNode: NodeId
      To: string
      Text: string }

/// Node-to-node messages, over multicast (heartbeats) and the TCP peer links (the rest).
type PeerMessage =
    | HeartbeatSent of Heartbeat
    | Election of ElectionMessage
    | LeaderAnnounced of LeaderMessage
    /// A node shutting down on purpose, so peers need not wait for K missed heartbeats.
    | LeaveAnnounced of NodeId
    | BroadcastForwarded of ChatLine
    | PrivateForwarded of PrivateLine
    | UserJoined of nick: string * node: NodeId
    | UserLeft of nick: string * node: NodeId
    /// The full list of a node's local users, sent to a node that has just appeared.
    | UsersListed of node: NodeId * nicks: string list

/// Client-to-node requests.
type ClientRequest =
    | Hello of nick: string
    | Say of text: string
    | Whisper of toNick: string * text: string
    | Who
    | Status
    | Quit

type UserEntry = { Nick: string; Node: NodeId }

type NodeStatus =
    { Id: NodeId
      ClientEndpoint: Endpoint
      Load: Load
      IsLeader: bool
      IsSelf: bool }

type ClusterStatus =
    { Self: NodeId
      Leader: NodeId option
      Epoch: Epoch
      Nodes: NodeStatus list }

/// Why a request was refused; each case has a stable code on the wire.
type ErrorCode =
    | NickTaken
    | NickInvalid
    | HelloFirst
    | AlreadyHello
    | NoSuchUser
    | ServerFull
    | TextInvalid
    | BadFrame
    | FrameTooLarge
    | VersionMismatch

/// Node-to-client messages.
type ServerReply =
    | Welcome of nick: string * node: NodeId * leader: NodeId option
    | Message of ChatLine
    | Private of PrivateLine
    | WhoListed of UserEntry list
    | StatusReported of ClusterStatus
    | Error of code: ErrorCode * reason: string
    | Notice of text: string
