/// Command lines of the node and the client (Argu), parsed into immutable option records that
/// both C# consoles use. Parsing is pure: it returns the options or the text to print.
module FormalChat.Protocol.Config

open Argu

type ClusterArgs =
    | [<AltCommandLine("-n")>] Nodes of count: int
    | Base_Port of port: int
    | Heartbeat_Ms of milliseconds: int
    | Suspect_After of missed: int
    | Multicast of group: string
    | Interface of address: string
    | Data_Dir of path: string
    // TLS on the client ports (docs/SECURITY.md): one certificate for every node.
    | Tls_Cert of pem: string
    | Tls_Key of pem: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Tls_Cert _ -> "certificate (PEM, leaf first, then any intermediates) every node presents on its client and IRC ports; with --tls-key"
            | Tls_Key _ -> "private key (PEM, unencrypted) of --tls-cert"
            | Nodes _ -> "how many nodes to start (default 3)"
            | Base_Port _ -> "client port of node 1; node i listens on base+i-1, and for IRC clients on base+i-1+2000 (default 5001)"
            | Heartbeat_Ms _ -> "heartbeat interval in milliseconds (default 2000)"
            | Suspect_After _ -> "missed heartbeats before a node is suspected (default 3)"
            | Multicast _ -> "discovery group as group:port (default 239.255.77.1:5007)"
            | Interface _ -> "interface address for multicast (default 127.0.0.1)"
            | Data_Dir _ -> "base directory for the room logs; node i keeps its own in <path>/node-<i> (default ./data)"

/// What one client may cost its node: how fast it may send and how much may wait for it.
type ClientLimits =
    { /// Frames per second a client may send; beyond it (after the burst) the node reads its
      /// frames more slowly, and TCP slows the sender. 0: no limit.
      RatePerSecond: int
      Burst: int
      /// A client with more than this waiting to be sent to it is disconnected as too slow.
      MaxQueueBytes: int
      /// A connection that is not welcomed (no valid hello) within this time is closed, unless it
      /// has asked for status (a monitor). 0: never. Unregistered connections cost a slot of
      /// --max-clients each, so without this a crowd of silent ones locks real users out.
      HelloTimeoutMs: int
      /// Open connections one remote address may have at once; past it a new one is refused with
      /// server-full. 0: no limit.
      MaxConnectionsPerAddress: int }

    /// 256 per address: on the loopback-only default every client shares 127.0.0.1, so the limit
    /// must leave room for the largest local workload we run (the fan-out benchmark's 100
    /// receivers, a sender and status probes per node) while one address can still take at most
    /// 2.5% of the default --max-clients (10000).
    static member defaults =
        { RatePerSecond = 200
          Burst = 1000
          MaxQueueBytes = 1024 * 1024
          HelloTimeoutMs = 5000
          MaxConnectionsPerAddress = 256 }

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
            match this with
            | Tls_Cert _ -> "certificate (PEM, leaf first, then any intermediates, as nginx's ssl_certificate); with it and --tls-key the client and IRC ports accept TLS 1.2+ only"
            | Tls_Key _ -> "private key (PEM, unencrypted, as nginx's ssl_certificate_key) of --tls-cert"
            | Id _ -> "this node's id, a positive integer; the highest live id leads"
            | Port _ -> "TCP port for chat clients"
            | Peer_Port _ -> "TCP port for other nodes (default: client port + 1000)"
            | Host _ -> "address to listen on (default 127.0.0.1)"
            | Heartbeat_Ms _ -> "heartbeat interval in milliseconds (default 2000)"
            | Suspect_After _ -> "missed heartbeats before a node is suspected (default 3)"
            | Multicast _ -> "discovery group as group:port (default 239.255.77.1:5007)"
            | No_Multicast -> "no multicast discovery: use --peer seeds only"
            | Interface _ -> "interface address for multicast, TTL 1 (default 127.0.0.1)"
            | Peer _ -> "peer address host:port of another node (repeatable): seeds where multicast is absent"
            | Cluster_Key_File _ -> "file holding the cluster's shared secret, 32 random bytes as 64 hex digits, readable by its owner only (make one: openssl rand -hex 32); see docs/SECURITY.md"
            | Insecure_Cluster -> "run without a cluster key: peer links and heartbeats are not authenticated (for experiments only)"
            | Max_Clients _ -> "most chat clients this node accepts (default 10000)"
            | Max_Frame _ -> "largest accepted frame in bytes (default 65536)"
            | History _ -> "messages a client receives when it joins a room (default 50)"
            | Rebalance_Threshold _ -> "redirect clients when this node has this many percent above its fair share (default 50)"
            | No_Rebalance -> "never redirect clients to less loaded nodes"
            | Data_Dir _ -> "directory for this node's room logs, created if missing (default ./data/node-<id>)"
            | Fsync _ -> "always | batch | never: when the room logs are forced to disk (default batch; see docs/REPLICATION.md)"
            | Client_Rate _ -> $"frames per second a client may send before the node reads its frames more slowly; 0: no limit (default {ClientLimits.defaults.RatePerSecond})"
            | Client_Burst _ -> $"frames a client may send at once above --client-rate (default {ClientLimits.defaults.Burst})"
            | Max_Client_Queue_Bytes _ -> $"bytes waiting to be sent to one client beyond which it is too slow and is disconnected (default {ClientLimits.defaults.MaxQueueBytes})"
            | Metrics_Port _ -> "HTTP port (on --host) for /metrics (Prometheus), /status.json and the live dashboard at /; off by default (cluster: client port + 3000)"
            | Trace_File _ -> "write the spec actions this node takes as NDJSON to this file, for trace validation with TLC (spec/README.md); off by default"
            | Hello_Timeout _ -> $"seconds a new connection has to be welcomed (a valid hello) before it is closed; a connection that asks for status is a monitor and may stay; 0: never (default {ClientLimits.defaults.HelloTimeoutMs / 1000})"
            | Max_Connections_Per_Ip _ -> $"connections one remote address may have open at once; more are refused with server-full; 0: no limit (default {ClientLimits.defaults.MaxConnectionsPerAddress})"
            | Irc_Port _ -> "TCP port for IRC clients (RFC 1459/2812 subset, docs/IRC.md), on --host; off by default"
            | Cluster _ -> "start a local cluster: N node processes on this machine, stopped together by Ctrl+C"

type ClientArgs =
    | [<AltCommandLine("-n")>] Nick of nick: string
    | [<AltCommandLine("-s")>] Server of address: string
    | Peer of address: string
    | Multicast of group: string
    | Interface of address: string
    | Json
    // TLS to the node's client port (docs/SECURITY.md).
    | Tls
    | Tls_Ca of pem: string
    | Tls_Insecure_Skip_Verify
    | [<MainCommand; Hidden>] Positional of words: string list

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Tls -> "connect with TLS, trusting the system's certificate authorities"
            | Tls_Ca _ -> "connect with TLS, trusting only the CA (or self-signed certificate) in this PEM file"
            | Tls_Insecure_Skip_Verify -> "connect with TLS but accept any certificate: encrypted, NOT authenticated (anyone on the path can read everything); for tests only"
            | Nick _ -> "your nickname (letters, digits, '_' and '-')"
            | Server _ -> "node to connect to as host:port (default: discover the least-loaded node)"
            | Peer _ -> "client address host:port of any node to ask for the cluster (repeatable), instead of multicast"
            | Multicast _ -> "discovery group to listen to as group:port (default 239.255.77.1:5007)"
            | Interface _ -> "interface address for multicast (default 127.0.0.1)"
            | Json -> "print one JSON object per line for every event (for scripts)"
            | Positional _ -> "prior-art form: <nick> <host> <port>"

/// When a node forces its room logs to disk (docs/REPLICATION.md, "The log on disk"). Every
/// policy survives a killed process; they differ in what survives a power cut.
type FsyncPolicy =
    /// fsync before anything that depends on the write (an acknowledgement) leaves the node.
    | Always
    /// Every write goes to the operating system at once; fsync every heartbeat interval and at shutdown.
    | Batch
    /// The operating system decides when the writes reach the disk.
    | Never

type Timing =
    { HeartbeatIntervalMs: int
      SuspectAfter: int
      MulticastGroup: Endpoint option
      MulticastInterface: string }

/// TLS on the client ports: the certificate (chain) and its key, both PEM; the shell reads them.
type TlsFiles = { CertFile: string; KeyFile: string }

/// How the client checks the node's certificate: against CaFile when given, else the system's
/// authorities; SkipVerify accepts any certificate (encrypted, not authenticated).
type ClientTls = { CaFile: string option; SkipVerify: bool }

type NodeOptions =
    { Id: NodeId
      Host: string
      ClientPort: int
      PeerPort: int
      Timing: Timing
      Seeds: Endpoint list
      /// The shared secret that authenticates peer links and heartbeats (docs/SECURITY.md); the
      /// shell reads it. None only with InsecureCluster, which the shell checks when it starts.
      ClusterKeyFile: string option
      InsecureCluster: bool
      MaxClients: int
      MaxFrameBytes: int
      HistoryOnJoin: int
      Rebalance: NodeState.RebalancePolicy option
      /// Where this node keeps its room logs; no two nodes share one.
      DataDir: string
      Fsync: FsyncPolicy
      Clients: ClientLimits
      /// The HTTP port of /metrics, /status.json and the dashboard; None: not served.
      MetricsPort: int option
      /// Where to write the spec actions this node takes (spec/TraceFormalChat.tla); None: no trace.
      TraceFile: string option
      /// The port for IRC clients (docs/IRC.md); None: no IRC gateway.
      IrcPort: int option
      /// TLS on the client and IRC ports; None: plain text.
      Tls: TlsFiles option }

type ClusterOptions =
    { Nodes: int
      BasePort: int
      Timing: Timing
      /// Node i keeps its logs in <DataDir>/node-<i>.
      DataDir: string
      Tls: TlsFiles option }

type NodeCommand =
    | RunNode of NodeOptions
    | RunCluster of ClusterOptions

/// How a client finds a node when it is not told one, and where it goes after a failure.
type Discovery =
    { MulticastGroup: Endpoint
      MulticastInterface: string
      Seeds: Endpoint list }

type ClientOptions =
    { Nick: string
      /// None: discover the cluster and connect to the least-loaded node.
      Server: Endpoint option
      Discovery: Discovery
      Json: bool
      /// None: plain text.
      Tls: ClientTls option }

/// What to print when the command line is not usable (exit code 2), or the usage that --help
/// asked for (printed to standard output, exit code 0).
type UsageError = { Message: string; IsHelp: bool }

let defaultMulticast = { Host = "239.255.77.1"; Port = 5007 }

exception private Invalid of string

let private check condition message = if not condition then raise (Invalid message)

let private multicastGroup (text: string) : Endpoint =
    match Endpoint.tryParse text with
    | Some group when System.Net.IPAddress.TryParse(group.Host) |> fst -> group
    | _ -> raise (Invalid $"--multicast takes group:port, e.g. 239.255.77.1:5007, not '{text}'")

let private timingOf heartbeat suspect (multicast: string option) noMulticast (iface: string option) : Timing =
    check (heartbeat >= 10 && heartbeat <= 600_000) "--heartbeat-ms must be between 10 and 600000"
    check (suspect >= 1 && suspect <= 100) "--suspect-after must be between 1 and 100"
    let iface = defaultArg iface "127.0.0.1"
    check (System.Net.IPAddress.TryParse(iface) |> fst) $"--interface takes an IPv4 address, not '{iface}'"
    { HeartbeatIntervalMs = heartbeat
      SuspectAfter = suspect
      MulticastGroup = if noMulticast then None else Some(multicast |> Option.map multicastGroup |> Option.defaultValue defaultMulticast)
      MulticastInterface = iface }

let defaultDataDir = "./data"

/// Where `cluster` keeps the key it writes for its nodes: in the base data directory.
let clusterKeyFile (baseDir: string) : string = System.IO.Path.Combine(baseDir, "cluster.key")

/// Node i's own directory under a base data directory.
let nodeDataDir (baseDir: string) (id: NodeId) : string = System.IO.Path.Combine(baseDir, $"node-{id}")

let fsyncPolicyName (policy: FsyncPolicy) : string =
    match policy with
    | Always -> "always"
    | Batch -> "batch"
    | Never -> "never"

let private fsyncPolicy (text: string) : FsyncPolicy =
    match text.ToLowerInvariant() with
    | "always" -> Always
    | "batch" -> Batch
    | "never" -> Never
    | _ -> raise (Invalid $"--fsync takes always, batch or never, not '{text}'")

/// A path only: whether it can be created and locked is the node's to find out when it starts.
let private dataDir (text: string) : string =
    check (not (System.String.IsNullOrWhiteSpace text)) "--data-dir takes a directory path, not an empty one"
    text

let private tlsFiles (cert: string option) (key: string option) : TlsFiles option =
    match cert, key with
    | Some cert, Some key -> Some { CertFile = cert; KeyFile = key }
    | None, None -> None
    | _ -> raise (Invalid "--tls-cert and --tls-key go together: give both (PEM files) or neither")

let private validPort (name: string) (port: int) =
    check (port > 0 && port < 65536) $"{name} must be a port between 1 and 65535"
    port

let private parseWith<'T, 'R when 'T :> IArgParserTemplate> (programName: string) (argv: string array) (build: ParseResults<'T> -> 'R) : Result<'R, UsageError> =
    let parser = ArgumentParser.Create<'T>(programName = programName)
    try
        Ok(build (parser.ParseCommandLine(argv, raiseOnUsage = true)))
    with
    | :? ArguParseException as error -> Result.Error { Message = error.Message; IsHelp = (error.ErrorCode = ErrorCode.HelpText) }
    | Invalid reason -> Result.Error { Message = $"ERROR: {reason}\n\n{parser.PrintUsage()}"; IsHelp = false }

let parseNodeCommand (argv: string array) : Result<NodeCommand, UsageError> =
    parseWith<NodeArgs, NodeCommand> "Node.CSharp" argv (fun args ->
        match args.TryGetResult NodeArgs.Cluster with
        | Some cluster ->
            let nodes = cluster.GetResult(ClusterArgs.Nodes, defaultValue = 3)
            check (nodes >= 1 && nodes <= 64) "--nodes must be between 1 and 64"
            let basePort = validPort "--base-port" (cluster.GetResult(ClusterArgs.Base_Port, defaultValue = 5001))
            check (basePort + nodes - 1 + 3000 < 65536) "--base-port leaves no room for the peer ports (client port + 1000), IRC ports (+ 2000) and dashboards (+ 3000)"
            RunCluster
                { Nodes = nodes
                  BasePort = basePort
                  DataDir = cluster.TryGetResult ClusterArgs.Data_Dir |> Option.map dataDir |> Option.defaultValue defaultDataDir
                  Timing =
                    timingOf
                        (cluster.GetResult(ClusterArgs.Heartbeat_Ms, defaultValue = 2000))
                        (cluster.GetResult(ClusterArgs.Suspect_After, defaultValue = 3))
                        (cluster.TryGetResult ClusterArgs.Multicast)
                        false
                        (cluster.TryGetResult ClusterArgs.Interface)
                  Tls = tlsFiles (cluster.TryGetResult ClusterArgs.Tls_Cert) (cluster.TryGetResult ClusterArgs.Tls_Key) }
        | None ->
            let id = args.TryGetResult NodeArgs.Id
            let port = args.TryGetResult NodeArgs.Port
            check id.IsSome "--id is required (or use: cluster --nodes 3)"
            check port.IsSome "--port is required"
            check (id.Value >= 1) "--id must be a positive integer"
            let port = validPort "--port" port.Value
            let peerPort = validPort "--peer-port" (args.GetResult(NodeArgs.Peer_Port, defaultValue = port + 1000))
            check (peerPort <> port) "--peer-port must differ from --port"
            let seeds =
                args.GetResults NodeArgs.Peer
                |> List.map (fun text ->
                    match Endpoint.tryParse text with
                    | Some seed -> seed
                    | None -> raise (Invalid $"--peer takes host:port, not '{text}'"))
            let maxClients = args.GetResult(NodeArgs.Max_Clients, defaultValue = 10_000)
            check (maxClients >= 1 && maxClients <= 1_000_000) "--max-clients must be between 1 and 1000000"
            let maxFrame = args.GetResult(NodeArgs.Max_Frame, defaultValue = Wire.defaultMaxFrameBytes)
            check (maxFrame >= 256 && maxFrame <= 16 * 1024 * 1024) "--max-frame must be between 256 and 16777216"
            let history = args.GetResult(NodeArgs.History, defaultValue = 50)
            check (history >= 0 && history <= Rooms.historyCapacity) $"--history must be between 0 and {Rooms.historyCapacity}"
            let threshold = args.GetResult(NodeArgs.Rebalance_Threshold, defaultValue = 50)
            check (threshold >= 1 && threshold <= 10_000) "--rebalance-threshold must be between 1 and 10000 percent"
            let rate = args.GetResult(NodeArgs.Client_Rate, defaultValue = ClientLimits.defaults.RatePerSecond)
            check (rate >= 0 && rate <= 10_000_000) "--client-rate must be between 0 (no limit) and 10000000"
            let burst = args.GetResult(NodeArgs.Client_Burst, defaultValue = ClientLimits.defaults.Burst)
            check (burst >= 1 && burst <= 10_000_000) "--client-burst must be between 1 and 10000000"
            let queueBytes = args.GetResult(NodeArgs.Max_Client_Queue_Bytes, defaultValue = ClientLimits.defaults.MaxQueueBytes)
            check (queueBytes >= 65536 && queueBytes <= 1024 * 1024 * 1024) "--max-client-queue-bytes must be between 65536 and 1073741824"
            let metricsPort = args.TryGetResult NodeArgs.Metrics_Port |> Option.map (validPort "--metrics-port")
            check (metricsPort <> Some port && metricsPort <> Some peerPort) "--metrics-port must differ from --port and --peer-port"
            let helloTimeout = args.GetResult(NodeArgs.Hello_Timeout, defaultValue = float ClientLimits.defaults.HelloTimeoutMs / 1000.0)
            check (helloTimeout = 0.0 || (helloTimeout >= 0.1 && helloTimeout <= 3600.0)) "--hello-timeout must be 0 (never) or between 0.1 and 3600 seconds"
            let perAddress = args.GetResult(NodeArgs.Max_Connections_Per_Ip, defaultValue = ClientLimits.defaults.MaxConnectionsPerAddress)
            check (perAddress >= 0 && perAddress <= 1_000_000) "--max-connections-per-ip must be between 0 (no limit) and 1000000"
            let host = args.GetResult(NodeArgs.Host, defaultValue = "127.0.0.1")
            check (System.Net.IPAddress.TryParse(host) |> fst) $"--host takes an IP address, not '{host}'"
            let ircPort = args.TryGetResult NodeArgs.Irc_Port |> Option.map (validPort "--irc-port")
            check (ircPort <> Some port && ircPort <> Some peerPort) "--irc-port must differ from --port and --peer-port"
            RunNode
                { Id = id.Value
                  Host = host
                  ClientPort = port
                  PeerPort = peerPort
                  Timing =
                    timingOf
                        (args.GetResult(NodeArgs.Heartbeat_Ms, defaultValue = 2000))
                        (args.GetResult(NodeArgs.Suspect_After, defaultValue = 3))
                        (args.TryGetResult NodeArgs.Multicast)
                        (args.Contains NodeArgs.No_Multicast)
                        (args.TryGetResult NodeArgs.Interface)
                  Seeds = seeds
                  ClusterKeyFile = args.TryGetResult NodeArgs.Cluster_Key_File
                  InsecureCluster = args.Contains NodeArgs.Insecure_Cluster
                  MaxClients = maxClients
                  MaxFrameBytes = maxFrame
                  HistoryOnJoin = history
                  Rebalance =
                    if args.Contains NodeArgs.No_Rebalance then None
                    else Some { ThresholdPercent = threshold; MaxRedirectsPerTick = 100 }
                  DataDir =
                    args.TryGetResult NodeArgs.Data_Dir
                    |> Option.map dataDir
                    |> Option.defaultValue (nodeDataDir defaultDataDir id.Value)
                  Fsync = args.TryGetResult NodeArgs.Fsync |> Option.map fsyncPolicy |> Option.defaultValue Batch
                  Clients =
                    { RatePerSecond = rate
                      Burst = burst
                      MaxQueueBytes = queueBytes
                      HelloTimeoutMs = int (System.Math.Round(helloTimeout * 1000.0))
                      MaxConnectionsPerAddress = perAddress }
                  MetricsPort = metricsPort
                  TraceFile = args.TryGetResult NodeArgs.Trace_File
                  IrcPort = ircPort
                  Tls = tlsFiles (args.TryGetResult NodeArgs.Tls_Cert) (args.TryGetResult NodeArgs.Tls_Key) })

/// `alice localhost 5001` (the prior art's form) means `--nick alice --server localhost:5001`.
let parseClientCommand (argv: string array) : Result<ClientOptions, UsageError> =
    parseWith<ClientArgs, ClientOptions> "Client.CSharp" argv (fun args ->
        let positional = args.GetResult(ClientArgs.Positional, defaultValue = [])
        match positional |> List.tryFind (fun word -> word.StartsWith "-") with
        | Some flag -> raise (Invalid $"unknown option '{flag}'")
        | None -> ()
        check (positional.IsEmpty || not (args.Contains ClientArgs.Nick)) "give the nickname either as --nick or as the first word, not both"
        let nickWord, serverWords =
            match positional with
            | [] -> None, None
            | [ nick ] -> Some nick, None
            | [ nick; host; port ] -> Some nick, Some $"{host}:{port}"
            | [ nick; server ] -> Some nick, Some server
            | _ -> raise (Invalid "expected: <nick> [<host> <port>]")
        let nick =
            match args.TryGetResult ClientArgs.Nick, nickWord with
            | Some nick, _
            | None, Some nick -> nick
            | None, None -> raise (Invalid "--nick is required")
        match Chat.validateNick nick with
        | Result.Error reason -> raise (Invalid reason)
        | Ok _ -> ()
        let endpoint (flag: string) (text: string) =
            match Endpoint.tryParse text with
            | Some endpoint -> endpoint
            | None -> raise (Invalid $"{flag} takes host:port, not '{text}'")
        let iface = args.GetResult(ClientArgs.Interface, defaultValue = "127.0.0.1")
        check (System.Net.IPAddress.TryParse(iface) |> fst) $"--interface takes an IPv4 address, not '{iface}'"
        { Nick = nick
          Server = args.TryGetResult ClientArgs.Server |> Option.orElse serverWords |> Option.map (endpoint "--server")
          Discovery =
            { MulticastGroup = args.TryGetResult ClientArgs.Multicast |> Option.map multicastGroup |> Option.defaultValue defaultMulticast
              MulticastInterface = iface
              Seeds = args.GetResults ClientArgs.Peer |> List.map (endpoint "--peer") }
          Json = args.Contains ClientArgs.Json
          Tls =
            match args.TryGetResult ClientArgs.Tls_Ca, args.Contains ClientArgs.Tls_Insecure_Skip_Verify with
            | Some _, true -> raise (Invalid "--tls-ca and --tls-insecure-skip-verify exclude each other: trust a CA, or check nothing")
            | Some ca, false -> Some { CaFile = Some ca; SkipVerify = false }
            | None, true -> Some { CaFile = None; SkipVerify = true }
            | None, false -> if args.Contains ClientArgs.Tls then Some { CaFile = None; SkipVerify = false } else None })

let nodeConfigOf (options: NodeOptions) : NodeState.ProtocolConfig =
    { NodeState.ProtocolConfig.defaults with
        SuspectAfter = options.Timing.SuspectAfter
        HeartbeatIntervalMs = options.Timing.HeartbeatIntervalMs
        MaxClients = options.MaxClients
        HistoryOnJoin = options.HistoryOnJoin
        Rebalance = options.Rebalance }

let nodeInfoOf (options: NodeOptions) : NodeInfo =
    { Id = options.Id
      ClientEndpoint = { Host = options.Host; Port = options.ClientPort }
      PeerEndpoint = { Host = options.Host; Port = options.PeerPort } }

/// Node i of a local cluster: client port base+i-1, peer port 1000 above it, IRC port 2000 above
/// it, its dashboard and metrics 3000 above it, logs in <base>/node-<i>.
let clusterNodeOptions (cluster: ClusterOptions) (id: NodeId) : NodeOptions =
    let port = cluster.BasePort + id - 1
    { Id = id
      Host = "127.0.0.1"
      ClientPort = port
      PeerPort = port + 1000
      Timing = cluster.Timing
      Seeds = []
      ClusterKeyFile = Some(clusterKeyFile cluster.DataDir)
      InsecureCluster = false
      MaxClients = 10_000
      MaxFrameBytes = Wire.defaultMaxFrameBytes
      HistoryOnJoin = 50
      Rebalance = NodeState.ProtocolConfig.defaults.Rebalance
      DataDir = nodeDataDir cluster.DataDir id
      Fsync = Batch
      Clients = ClientLimits.defaults
      MetricsPort = Some(port + 3000)
      TraceFile = None
      IrcPort = Some(port + 2000)
      Tls = cluster.Tls }
