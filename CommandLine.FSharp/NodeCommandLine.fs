/// The node console's command line: one node (`--id`, `--port`, …) or a local `cluster`.
module FormalChat.CommandLine.NodeCommandLine

open Argu
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.CommandLine.ClusterCommandLine
open FormalChat.CommandLine.Validation

type NodeArgs =
    | Id of id: int
    | [<AltCommandLine("-p")>] Port of port: int
    | Peer_Port of port: int
    | Host of address: string
    | Heartbeat_Ms of milliseconds: int
    | Suspect_After of missed: int
    | Multicast of group: string
    | No_Multicast
    | Interface of address: string
    | Peer of address: string
    | Cluster_Key_File of path: string
    | Insecure_Cluster
    | Max_Clients of count: int
    | Max_Frame of bytes: int
    | History of messages: int
    | Rebalance_Threshold of percent: int
    | No_Rebalance
    | Data_Dir of path: string
    | Fsync of policy: string
    | Client_Rate of messages_per_second: int
    | Client_Burst of messages: int
    | Max_Client_Queue_Bytes of bytes: int
    | Metrics_Port of port: int
    | Trace_File of path: string
    | Hello_Timeout of seconds: float
    | Max_Connections_Per_Ip of count: int
    | Irc_Port of port: int
    // TLS on the client ports (docs/SECURITY.md).
    | Tls_Cert of pem: string
    | Tls_Key of pem: string
    | [<CliPrefix(CliPrefix.None)>] Cluster of ParseResults<ClusterArgs>

    interface IArgParserTemplate with
        member this.Usage =
            let protocol = ProtocolConfig.defaults
            let clients = ClientLimits.defaults
            match this with
            | Tls_Cert _ -> "certificate (PEM, leaf first, then any intermediates, as nginx's ssl_certificate); with it and --tls-key the client and IRC ports accept TLS 1.2+ only"
            | Tls_Key _ -> "private key (PEM, unencrypted, as nginx's ssl_certificate_key) of --tls-cert"
            | Id _ -> "this node's id, a positive integer; the highest live id leads"
            | Port _ -> "TCP port for chat clients"
            | Peer_Port _ -> $"TCP port for other nodes (default: client port + {Defaults.peerPortOffset})"
            | Host _ -> $"address to listen on (default {Defaults.host})"
            | Heartbeat_Ms _ -> $"heartbeat interval in milliseconds (default {protocol.HeartbeatIntervalMs})"
            | Suspect_After _ -> $"missed heartbeats before a node is suspected (default {protocol.SuspectAfter})"
            | Multicast _ -> $"discovery group as group:port (default {Defaults.multicastGroup})"
            | No_Multicast -> "no multicast discovery: use --peer seeds only"
            | Interface _ -> $"interface address for multicast, TTL 1 (default {Defaults.host})"
            | Peer _ -> "peer address host:port of another node (repeatable): seeds where multicast is absent"
            | Cluster_Key_File _ -> "file holding the cluster's shared secret, 32 random bytes as 64 hex digits, readable by its owner only (make one: openssl rand -hex 32); see docs/SECURITY.md"
            | Insecure_Cluster -> "run without a cluster key: peer links and heartbeats are not authenticated (for experiments only)"
            | Max_Clients _ -> $"most chat clients this node accepts (default {protocol.MaxClients})"
            | Max_Frame _ -> $"largest accepted frame in bytes (default {Wire.defaultMaxFrameBytes})"
            | History _ -> $"messages a client receives when it joins a room (default {protocol.HistoryOnJoin})"
            | Rebalance_Threshold _ -> $"redirect clients when this node has this many percent above its fair share (default {RebalancePolicy.defaults.ThresholdPercent})"
            | No_Rebalance -> "never redirect clients to less loaded nodes"
            | Data_Dir _ -> $"directory for this node's room logs, created if missing (default {Defaults.dataDir}/node-<id>)"
            | Fsync _ -> $"always | batch | never: when the room logs are forced to disk (default {Defaults.fsync.Name}; see docs/REPLICATION.md)"
            | Client_Rate _ -> $"frames per second a client may send before the node reads its frames more slowly; 0: no limit (default {clients.RatePerSecond})"
            | Client_Burst _ -> $"frames a client may send at once above --client-rate (default {clients.Burst})"
            | Max_Client_Queue_Bytes _ -> $"bytes waiting to be sent to one client beyond which it is too slow and is disconnected (default {clients.MaxQueueBytes})"
            | Metrics_Port _ -> $"HTTP port (on --host) for /metrics (Prometheus), /status.json and the live dashboard at /; off by default (cluster: client port + {metricsPortOffset})"
            | Trace_File _ -> "write the spec actions this node takes as NDJSON to this file (its replication variables to FILE.replication), for trace validation with TLC (spec/README.md); off by default"
            | Hello_Timeout _ -> $"seconds a new connection has to be welcomed (a valid hello) before it is closed; a connection that asks for status is a monitor and may stay; 0: never (default {clients.HelloTimeoutMs / 1000})"
            | Max_Connections_Per_Ip _ -> $"connections one remote address may have open at once; more are refused with server-full; 0: no limit (default {clients.MaxConnectionsPerAddress})"
            | Irc_Port _ -> "TCP port for IRC clients (RFC 1459/2812 subset, docs/IRC.md), on --host; off by default"
            | Cluster _ -> "start a local cluster: N node processes on this machine, stopped together by Ctrl+C"

let private clientLimitsOf (args: ParseResults<NodeArgs>) : ClientLimits =
    let defaults = ClientLimits.defaults
    let rate = args.GetResult(NodeArgs.Client_Rate, defaultValue = defaults.RatePerSecond)
    check (rate >= 0 && rate <= 10_000_000) "--client-rate must be between 0 (no limit) and 10000000"
    let burst = args.GetResult(NodeArgs.Client_Burst, defaultValue = defaults.Burst)
    check (burst >= 1 && burst <= 10_000_000) "--client-burst must be between 1 and 10000000"
    let queueBytes = args.GetResult(NodeArgs.Max_Client_Queue_Bytes, defaultValue = defaults.MaxQueueBytes)
    check (queueBytes >= 65536 && queueBytes <= 1024 * 1024 * 1024) "--max-client-queue-bytes must be between 65536 and 1073741824"
    let helloTimeout = args.GetResult(NodeArgs.Hello_Timeout, defaultValue = float defaults.HelloTimeoutMs / 1000.0)
    check (helloTimeout = 0.0 || (helloTimeout >= 0.1 && helloTimeout <= 3600.0)) "--hello-timeout must be 0 (never) or between 0.1 and 3600 seconds"
    let perAddress = args.GetResult(NodeArgs.Max_Connections_Per_Ip, defaultValue = defaults.MaxConnectionsPerAddress)
    check (perAddress >= 0 && perAddress <= 1_000_000) "--max-connections-per-ip must be between 0 (no limit) and 1000000"
    { RatePerSecond = rate
      Burst = burst
      MaxQueueBytes = queueBytes
      HelloTimeoutMs = int (System.Math.Round(helloTimeout * 1000.0))
      MaxConnectionsPerAddress = perAddress }

/// The protocol's parameters a node may be given, each defaulting to ProtocolConfig.defaults.
let private protocolOf (args: ParseResults<NodeArgs>) : ProtocolConfig =
    let defaults = ProtocolConfig.defaults
    let maxClients = args.GetResult(NodeArgs.Max_Clients, defaultValue = defaults.MaxClients)
    check (maxClients >= 1 && maxClients <= 1_000_000) "--max-clients must be between 1 and 1000000"
    let history = args.GetResult(NodeArgs.History, defaultValue = defaults.HistoryOnJoin)
    check (history >= 0 && history <= Rooms.historyCapacity) $"--history must be between 0 and {Rooms.historyCapacity}"
    let threshold = args.GetResult(NodeArgs.Rebalance_Threshold, defaultValue = RebalancePolicy.defaults.ThresholdPercent)
    check (threshold >= 1 && threshold <= 10_000) "--rebalance-threshold must be between 1 and 10000 percent"
    { defaults with
        HeartbeatIntervalMs = args.GetResult(NodeArgs.Heartbeat_Ms, defaultValue = defaults.HeartbeatIntervalMs)
        SuspectAfter = args.GetResult(NodeArgs.Suspect_After, defaultValue = defaults.SuspectAfter)
        MaxClients = maxClients
        HistoryOnJoin = history
        Rebalance =
            if args.Contains NodeArgs.No_Rebalance then None
            else Some { RebalancePolicy.defaults with ThresholdPercent = threshold } }

let private nodeOf (args: ParseResults<NodeArgs>) : NodeOptions =
    let id = args.TryGetResult NodeArgs.Id
    let port = args.TryGetResult NodeArgs.Port
    check id.IsSome "--id is required (or use: cluster --nodes 3)"
    check port.IsSome "--port is required"
    check (id.Value >= 1) "--id must be a positive integer"
    let port = validPort "--port" port.Value
    let peerPort = validPort "--peer-port" (args.GetResult(NodeArgs.Peer_Port, defaultValue = port + Defaults.peerPortOffset))
    check (peerPort <> port) "--peer-port must differ from --port"
    let seeds = args.GetResults NodeArgs.Peer |> List.map (endpoint "--peer")
    let maxFrame = args.GetResult(NodeArgs.Max_Frame, defaultValue = Wire.defaultMaxFrameBytes)
    check (maxFrame >= 256 && maxFrame <= 16 * 1024 * 1024) "--max-frame must be between 256 and 16777216"
    let protocol = protocolOf args
    let clients = clientLimitsOf args
    let metricsPort = args.TryGetResult NodeArgs.Metrics_Port |> Option.map (validPort "--metrics-port")
    check (metricsPort <> Some port && metricsPort <> Some peerPort) "--metrics-port must differ from --port and --peer-port"
    let host = args.GetResult(NodeArgs.Host, defaultValue = Defaults.host)
    check (System.Net.IPAddress.TryParse(host) |> fst) $"--host takes an IP address, not '{host}'"
    let ircPort = args.TryGetResult NodeArgs.Irc_Port |> Option.map (validPort "--irc-port")
    check (ircPort <> Some port && ircPort <> Some peerPort) "--irc-port must differ from --port and --peer-port"
    { Id = id.Value
      Host = host
      ClientPort = port
      PeerPort = peerPort
      Timing =
        timing
            protocol.HeartbeatIntervalMs
            protocol.SuspectAfter
            (args.TryGetResult NodeArgs.Multicast)
            (args.Contains NodeArgs.No_Multicast)
            (args.TryGetResult NodeArgs.Interface)
      Seeds = seeds
      ClusterKeyFile = args.TryGetResult NodeArgs.Cluster_Key_File
      InsecureCluster = args.Contains NodeArgs.Insecure_Cluster
      MaxClients = protocol.MaxClients
      MaxFrameBytes = maxFrame
      HistoryOnJoin = protocol.HistoryOnJoin
      Rebalance = protocol.Rebalance
      DataDir =
        args.TryGetResult NodeArgs.Data_Dir
        |> Option.map dataDir
        |> Option.defaultValue (nodeDataDir Defaults.dataDir id.Value)
      Fsync = args.TryGetResult NodeArgs.Fsync |> Option.map fsyncPolicy |> Option.defaultValue Defaults.fsync
      Clients = clients
      MetricsPort = metricsPort
      TraceFile = args.TryGetResult NodeArgs.Trace_File
      IrcPort = ircPort
      Tls = tlsFiles (args.TryGetResult NodeArgs.Tls_Cert) (args.TryGetResult NodeArgs.Tls_Key) }

let parse (argv: string array) : Result<NodeCommand, UsageError> =
    parseWith<NodeArgs, NodeCommand> "Node.CSharp" argv (fun args ->
        match args.TryGetResult NodeArgs.Cluster with
        | Some cluster -> RunCluster(ClusterCommandLine.ofArguments cluster)
        | None -> RunNode(nodeOf args))

/// The protocol parameters the node runs with: its options over ProtocolConfig.defaults.
let protocolConfig (options: NodeOptions) : ProtocolConfig =
    { ProtocolConfig.defaults with
        SuspectAfter = options.Timing.SuspectAfter
        HeartbeatIntervalMs = options.Timing.HeartbeatIntervalMs
        MaxClients = options.MaxClients
        HistoryOnJoin = options.HistoryOnJoin
        Rebalance = options.Rebalance }

let nodeInfo (options: NodeOptions) : NodeInfo =
    { Id = options.Id
      ClientEndpoint = { Host = options.Host; Port = options.ClientPort }
      PeerEndpoint = { Host = options.Host; Port = options.PeerPort } }
