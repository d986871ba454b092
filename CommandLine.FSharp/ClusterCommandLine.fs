/// `Node.CSharp cluster`: N node processes on this machine, and the options each one runs with.
module FormalChat.CommandLine.ClusterCommandLine

open Argu
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.CommandLine.Validation

let private defaultNodes = 3
let private defaultBasePort = 5001

/// Node i of a cluster listens for IRC clients this far above its client port.
let ircPortOffset = 2000

/// Node i of a cluster serves its dashboard and metrics this far above its client port.
let metricsPortOffset = 3000

type ClusterArgs =
    | [<AltCommandLine("-n")>] Nodes of count: int
    | Base_Port of port: int
    | Heartbeat_Ms of milliseconds: int
    | Suspect_After of missed: int
    | Multicast of group: string
    | Interface of address: string
    | Data_Dir of path: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Nodes _ -> $"how many nodes to start (default {defaultNodes})"
            | Base_Port _ -> $"client port of node 1; node i listens on base+i-1, and for IRC clients on base+i-1+{ircPortOffset} (default {defaultBasePort})"
            | Heartbeat_Ms _ -> $"heartbeat interval in milliseconds (default {ProtocolConfig.defaults.HeartbeatIntervalMs})"
            | Suspect_After _ -> $"missed heartbeats before a node is suspected (default {ProtocolConfig.defaults.SuspectAfter})"
            | Multicast _ -> $"discovery group as group:port (default {Defaults.multicastGroup})"
            | Interface _ -> $"interface address for multicast (default {Defaults.host})"
            | Data_Dir _ -> $"base directory for the room logs; node i keeps its own in <path>/node-<i> (default {Defaults.dataDir})"

/// Where `cluster` keeps the key it writes for its nodes: in the base data directory.
let keyFile (baseDir: string) : string = System.IO.Path.Combine(baseDir, "cluster.key")

/// Node i's own directory under a base data directory.
let nodeDataDir (baseDir: string) (id: NodeId) : string = System.IO.Path.Combine(baseDir, $"node-{id}")

let internal ofArguments (cluster: ParseResults<ClusterArgs>) : ClusterOptions =
    let nodes = cluster.GetResult(ClusterArgs.Nodes, defaultValue = defaultNodes)
    check (nodes >= 1 && nodes <= 64) "--nodes must be between 1 and 64"
    let basePort = validPort "--base-port" (cluster.GetResult(ClusterArgs.Base_Port, defaultValue = defaultBasePort))
    check
        (basePort + nodes - 1 + metricsPortOffset < 65536)
        $"--base-port leaves no room for the peer ports (client port + {Defaults.peerPortOffset}), IRC ports (+ {ircPortOffset}) and dashboards (+ {metricsPortOffset})"
    { Nodes = nodes
      BasePort = basePort
      DataDir = cluster.TryGetResult ClusterArgs.Data_Dir |> Option.map dataDir |> Option.defaultValue Defaults.dataDir
      Timing =
        timing
            (cluster.GetResult(ClusterArgs.Heartbeat_Ms, defaultValue = ProtocolConfig.defaults.HeartbeatIntervalMs))
            (cluster.GetResult(ClusterArgs.Suspect_After, defaultValue = ProtocolConfig.defaults.SuspectAfter))
            (cluster.TryGetResult ClusterArgs.Multicast)
            false
            (cluster.TryGetResult ClusterArgs.Interface) }

/// Node i of a local cluster: client port base+i-1, its peer, IRC and dashboard ports at fixed
/// offsets above it, logs in <base>/node-<i>, and every other setting at its default.
let nodeOptions (cluster: ClusterOptions) (id: NodeId) : NodeOptions =
    let port = cluster.BasePort + id - 1
    { Id = id
      Host = Defaults.host
      ClientPort = port
      PeerPort = port + Defaults.peerPortOffset
      Timing = cluster.Timing
      Seeds = []
      ClusterKeyFile = Some(keyFile cluster.DataDir)
      InsecureCluster = false
      MaxClients = ProtocolConfig.defaults.MaxClients
      MaxFrameBytes = Wire.defaultMaxFrameBytes
      HistoryOnJoin = ProtocolConfig.defaults.HistoryOnJoin
      Rebalance = ProtocolConfig.defaults.Rebalance
      DataDir = nodeDataDir cluster.DataDir id
      Fsync = Defaults.fsync
      Clients = ClientLimits.defaults
      MetricsPort = Some(port + metricsPortOffset)
      TraceFile = None
      IrcPort = Some(port + ircPortOffset) }
