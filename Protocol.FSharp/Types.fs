/// Identifiers and values shared by every part of the protocol.
namespace FormalChat.Protocol

/// A node's identity. Integers, compared as integers: the highest live id wins the election.
type NodeId = int

/// An election round. Every round carries one, so messages of an older round are ignored.
type Epoch = int64

/// A connection the shell accepted from a chat client; the shell assigns the numbers.
type ClientId = int64

type Endpoint =
    { Host: string
      Port: int }
    override this.ToString() = $"{this.Host}:{this.Port}"

module Endpoint =
    /// Parses "host:port"; the host defaults to 127.0.0.1 when only a port is given.
    let tryParse (text: string) : Endpoint option =
        let text = text.Trim()
        let colon = text.LastIndexOf ':'
        let host, portText =
            if colon < 0 then "127.0.0.1", text
            else text.Substring(0, colon), text.Substring(colon + 1)
        match System.Int32.TryParse portText with
        | true, port when port > 0 && port < 65536 && host <> "" ->
            let host = if host = "localhost" then "127.0.0.1" else host
            Some { Host = host; Port = port }
        | _ -> None

/// Where a node can be reached: clients connect to ClientEndpoint, nodes to PeerEndpoint.
type NodeInfo =
    { Id: NodeId
      ClientEndpoint: Endpoint
      PeerEndpoint: Endpoint }

/// What a node reports about its own load in every heartbeat.
type Load =
    { Clients: int
      Rooms: int
      MessagesPerSecond: int }

module Load =
    let zero = { Clients = 0; Rooms = 0; MessagesPerSecond = 0 }
