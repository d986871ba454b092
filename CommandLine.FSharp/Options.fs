/// What the consoles' command lines parse into: immutable option records, and the defaults of
/// the shell's own settings (addresses, ports, files). The protocol's parameters and their
/// defaults are not here: they are `ProtocolConfig` in the core.
namespace FormalChat.CommandLine

open FormalChat.Protocol
open FormalChat.Protocol.NodeState

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

/// When a node forces its room logs to disk (docs/REPLICATION.md, "The log on disk"). Every
/// policy survives a killed process; they differ in what survives a power cut.
type FsyncPolicy =
    /// fsync before anything that depends on the write (an acknowledgement) leaves the node.
    | Always
    /// Every write goes to the operating system at once; fsync every heartbeat interval and at shutdown.
    | Batch
    /// The operating system decides when the writes reach the disk.
    | Never

    /// The policy's name on the command line (--fsync) and in the node's log.
    member this.Name =
        match this with
        | Always -> "always"
        | Batch -> "batch"
        | Never -> "never"

    static member All = [ Always; Batch; Never ]

type Timing =
    { HeartbeatIntervalMs: int
      SuspectAfter: int
      MulticastGroup: Endpoint option
      MulticastInterface: string }

/// TLS on the client ports: the certificate (chain) and its key, both PEM; the shell reads them.
type TlsFiles = { CertFile: string; KeyFile: string }

/// How the client checks the node's certificate: against CaFile when given, else the system's
/// authorities; SkipVerify accepts any certificate (encrypted, not authenticated).
type ClientTlsOptions = { CaFile: string option; SkipVerify: bool }

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
      Rebalance: RebalancePolicy option
      /// Where this node keeps its room logs; no two nodes share one.
      DataDir: string
      Fsync: FsyncPolicy
      Clients: ClientLimits
      /// The HTTP port of /metrics, /status.json and the dashboard; None: not served.
      MetricsPort: int option
      /// Where to write the spec actions this node takes (spec/TraceFormalChat.tla; its replication
      /// variables go to this path + ".replication", spec/TraceReplication.tla); None: no trace.
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
type DiscoveryOptions =
    { MulticastGroup: Endpoint
      MulticastInterface: string
      Seeds: Endpoint list }

type ClientOptions =
    { Nick: string
      /// None: discover the cluster and connect to the least-loaded node.
      Server: Endpoint option
      Discovery: DiscoveryOptions
      Json: bool
      /// None: plain text.
      Tls: ClientTlsOptions option
      /// The password of a registered nickname, sent with every hello (docs/SECURITY.md).
      Password: string option
      /// Ask for the password on the terminal before connecting.
      AskPassword: bool }

/// What to print when the command line is not usable (exit code 2), or the usage that --help
/// asked for (printed to standard output, exit code 0).
type UsageError = { Message: string; IsHelp: bool }

/// The shell's defaults, each written once; the usage texts print them from here.
[<RequireQualifiedAccess>]
module Defaults =
    /// Loopback: a node listens, and multicasts, on this machine only unless told otherwise.
    let host = "127.0.0.1"
    let multicastGroup = { Host = "239.255.77.1"; Port = 5007 }
    let dataDir = "./data"
    let fsync = Batch
    /// A node's peer port, unless given, is its client port plus this.
    let peerPortOffset = 1000
