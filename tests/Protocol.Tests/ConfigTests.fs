/// The node and client command lines: defaults, the cluster subcommand, the prior-art client
/// form, and a usable message for every command line that cannot run.
module FormalChat.Protocol.Tests.ConfigTests

open Expecto
open FormalChat.Protocol
open FormalChat.CommandLine
open Xunit

let private words (commandLine: string) : string array =
    commandLine.Split(' ', System.StringSplitOptions.RemoveEmptyEntries)

let private runNode (commandLine: string) : NodeOptions =
    match NodeCommandLine.parse (words commandLine) with
    | Ok(RunNode options) -> options
    | other -> failwith $"expected a node, got {other}"

let private runCluster (commandLine: string) : ClusterOptions =
    match NodeCommandLine.parse (words commandLine) with
    | Ok(RunCluster options) -> options
    | other -> failwith $"expected a cluster, got {other}"

let private nodeUsage (commandLine: string) : UsageError =
    match NodeCommandLine.parse (words commandLine) with
    | Result.Error usage ->
        Assert.False(System.String.IsNullOrWhiteSpace usage.Message, "an error says what is wrong")
        usage
    | Ok command -> failwith $"expected an error for '{commandLine}', got {command}"

let private nodeError (commandLine: string) : string =
    match NodeCommandLine.parse (words commandLine) with
    | Result.Error usage ->
        Assert.False(System.String.IsNullOrWhiteSpace usage.Message, "an error says what is wrong")
        Assert.False(usage.IsHelp, "a mistake is not a request for help")
        usage.Message
    | Ok command -> failwith $"expected an error for '{commandLine}', got {command}"

let private client (commandLine: string) : ClientOptions =
    match ClientCommandLine.parse (words commandLine) with
    | Ok options -> options
    | Result.Error usage -> failwith $"expected client options for '{commandLine}', got: {usage.Message}"

let private clientError (commandLine: string) : string =
    match ClientCommandLine.parse (words commandLine) with
    | Result.Error usage ->
        Assert.False(System.String.IsNullOrWhiteSpace usage.Message, "an error says what is wrong")
        Assert.False(usage.IsHelp, "a mistake is not a request for help")
        usage.Message
    | Ok options -> failwith $"expected an error for '{commandLine}', got {options}"

// ---------------------------------------------------------------------------------------------
// Node.

let ``a node given only --id and --port gets the documented defaults`` () =
    let options = runNode "--id 3 --port 5003"

    Assert.Equal(3, options.Id)
    Assert.Equal(5003, options.ClientPort)
    Assert.Equal(6003, options.PeerPort)
    Assert.Equal("127.0.0.1", options.Host)
    Assert.Equal(2000, options.Timing.HeartbeatIntervalMs)
    Assert.Equal(3, options.Timing.SuspectAfter)
    Assert.Equal(Some { Host = "239.255.77.1"; Port = 5007 }, options.Timing.MulticastGroup)
    Assert.Equal("127.0.0.1", options.Timing.MulticastInterface)
    Assert.Empty options.Seeds
    Assert.Equal(10_000, options.MaxClients)
    Assert.Equal(64 * 1024, options.MaxFrameBytes)
    Assert.Equal(50, options.HistoryOnJoin)
    Assert.Equal(Some { NodeState.ThresholdPercent = 50; NodeState.MaxRedirectsPerTick = 100 }, options.Rebalance)
    Assert.Equal("./data/node-3", options.DataDir)
    Assert.Equal(Batch, options.Fsync)
    Assert.Equal(5000, options.Clients.HelloTimeoutMs)
    Assert.Equal(256, options.Clients.MaxConnectionsPerAddress)

let ``a node or a cluster's node given no protocol flags runs ProtocolConfig.defaults`` () =
    let cluster = runCluster "cluster --nodes 2"

    Assert.Equal(NodeState.ProtocolConfig.defaults, NodeCommandLine.protocolConfig (runNode "--id 3 --port 5003"))
    Assert.Equal(NodeState.ProtocolConfig.defaults, NodeCommandLine.protocolConfig (ClusterCommandLine.nodeOptions cluster 2))

let ``--hello-timeout and --max-connections-per-ip are read, 0 turning each off`` () =
    let options = runNode "--id 3 --port 5003 --hello-timeout 0.5 --max-connections-per-ip 8"
    Assert.Equal(500, options.Clients.HelloTimeoutMs)
    Assert.Equal(8, options.Clients.MaxConnectionsPerAddress)
    let off = runNode "--id 3 --port 5003 --hello-timeout 0 --max-connections-per-ip 0"
    Assert.Equal(0, off.Clients.HelloTimeoutMs)
    Assert.Equal(0, off.Clients.MaxConnectionsPerAddress)

let ``every node flag is read`` () =
    let options =
        runNode
            "--id 7 -p 5100 --peer-port 7100 --heartbeat-ms 100 --suspect-after 5 --multicast 239.1.2.3:6000 --interface 127.0.0.1 --peer 127.0.0.1:6001 --peer localhost:6002 --max-clients 20 --max-frame 4096 --history 7 --rebalance-threshold 25 --data-dir /var/lib/formalchat/seven --fsync always"

    Assert.Equal(7, options.Id)
    Assert.Equal(5100, options.ClientPort)
    Assert.Equal(7100, options.PeerPort)
    Assert.Equal(100, options.Timing.HeartbeatIntervalMs)
    Assert.Equal(5, options.Timing.SuspectAfter)
    Assert.Equal(Some { Host = "239.1.2.3"; Port = 6000 }, options.Timing.MulticastGroup)
    Assert.Equal<Endpoint list>([ { Host = "127.0.0.1"; Port = 6001 }; { Host = "127.0.0.1"; Port = 6002 } ], options.Seeds)
    Assert.Equal(20, options.MaxClients)
    Assert.Equal(4096, options.MaxFrameBytes)
    Assert.Equal(7, options.HistoryOnJoin)
    Assert.Equal(Some { NodeState.ThresholdPercent = 25; NodeState.MaxRedirectsPerTick = 100 }, options.Rebalance)
    Assert.Equal("/var/lib/formalchat/seven", options.DataDir)
    Assert.Equal(Always, options.Fsync)

let ``--fsync takes each policy by name`` (name: string) =
    let policy = (runNode $"--id 1 --port 5001 --fsync {name}").Fsync

    Assert.Equal(name.ToLowerInvariant(), policy.Name)

let ``an empty --data-dir is an error that says why`` () =
    match NodeCommandLine.parse [| "--id"; "1"; "--port"; "5001"; "--data-dir"; " " |] with
    | Result.Error usage ->
        Assert.False usage.IsHelp
        Assert.Contains("--data-dir", usage.Message)
    | Ok command -> failwith $"expected an error, got {command}"

let ``--no-rebalance turns redirects off`` () =
    Assert.Equal(None, (runNode "--id 1 --port 5001 --no-rebalance").Rebalance)

let ``--no-multicast leaves only the seeds`` () =
    let options = runNode "--id 1 --port 5001 --no-multicast --peer 127.0.0.1:6002"

    Assert.Equal(None, options.Timing.MulticastGroup)

let ``--cluster-key-file and --insecure-cluster are read, and a cluster gives every node its key`` () =
    let keyed = runNode "--id 1 --port 5001 --cluster-key-file /etc/formalchat/cluster.key"
    let insecure = runNode "--id 1 --port 5001 --insecure-cluster"
    let cluster = runCluster "cluster --nodes 2 --data-dir /tmp/fc"

    Assert.Equal(Some "/etc/formalchat/cluster.key", keyed.ClusterKeyFile)
    Assert.False keyed.InsecureCluster
    Assert.Equal(None, insecure.ClusterKeyFile)
    Assert.True insecure.InsecureCluster
    // Whether a node may start without a key is the shell's to decide (it reads the file).
    Assert.Equal(None, (runNode "--id 1 --port 5001").ClusterKeyFile)
    Assert.Equal(Some(ClusterCommandLine.keyFile "/tmp/fc"), (ClusterCommandLine.nodeOptions cluster 2).ClusterKeyFile)
    Assert.False (ClusterCommandLine.nodeOptions cluster 2).InsecureCluster

let ``the node's protocol config and addresses come from its options`` () =
    let options = runNode "--id 2 --port 5002 --heartbeat-ms 100 --suspect-after 4 --max-clients 9 --history 12 --no-rebalance"

    let config = NodeCommandLine.protocolConfig options
    let info = NodeCommandLine.nodeInfo options

    Assert.Equal(4, config.SuspectAfter)
    Assert.Equal(100, config.HeartbeatIntervalMs)
    Assert.Equal(9, config.MaxClients)
    Assert.Equal(12, config.HistoryOnJoin)
    Assert.Equal(None, config.Rebalance)
    Assert.Equal({ Id = 2; ClientEndpoint = { Host = "127.0.0.1"; Port = 5002 }; PeerEndpoint = { Host = "127.0.0.1"; Port = 6002 } }, info)

let ``cluster --nodes 3 --base-port 5001 starts three nodes on consecutive ports`` () =
    let cluster = runCluster "cluster --nodes 3 --base-port 5001"

    Assert.Equal(3, cluster.Nodes)
    Assert.Equal(5001, cluster.BasePort)
    Assert.Equal(2000, cluster.Timing.HeartbeatIntervalMs)
    Assert.Equal(3, cluster.Timing.SuspectAfter)
    Assert.Equal(Some Defaults.multicastGroup, cluster.Timing.MulticastGroup)
    let nodes = [ for id in 1..3 -> ClusterCommandLine.nodeOptions cluster id ]
    Assert.Equal<int list>([ 5001; 5002; 5003 ], nodes |> List.map (fun node -> node.ClientPort))
    Assert.Equal<int list>([ 6001; 6002; 6003 ], nodes |> List.map (fun node -> node.PeerPort))
    Assert.All(nodes, fun node -> Assert.Equal("127.0.0.1", node.Host))
    Assert.Equal<string list>([ "./data/node-1"; "./data/node-2"; "./data/node-3" ], nodes |> List.map (fun node -> node.DataDir))
    Assert.All(nodes, fun node -> Assert.Equal(Batch, node.Fsync))

let ``cluster --data-dir gives each node its own directory under it`` () =
    let cluster = runCluster "cluster --nodes 2 --data-dir /tmp/chat"

    Assert.Equal("/tmp/chat", cluster.DataDir)
    Assert.Equal<string list>([ "/tmp/chat/node-1"; "/tmp/chat/node-2" ], [ for id in 1..2 -> (ClusterCommandLine.nodeOptions cluster id).DataDir ])

let ``cluster without flags starts three nodes from port 5001`` () =
    let cluster = runCluster "cluster"

    Assert.Equal(3, cluster.Nodes)
    Assert.Equal(5001, cluster.BasePort)

let ``cluster reads its timing flags`` () =
    let cluster = runCluster "cluster -n 5 --base-port 7001 --heartbeat-ms 100 --suspect-after 2 --multicast 239.255.0.9:7777"

    Assert.Equal(5, cluster.Nodes)
    Assert.Equal(100, cluster.Timing.HeartbeatIntervalMs)
    Assert.Equal(2, cluster.Timing.SuspectAfter)
    Assert.Equal(Some { Host = "239.255.0.9"; Port = 7777 }, cluster.Timing.MulticastGroup)

let ``--irc-port is off by default and read when given`` () =
    Assert.Equal(None, (runNode "--id 1 --port 5001").IrcPort)
    Assert.Equal(Some 7001, (runNode "--id 1 --port 5001 --irc-port 7001").IrcPort)

let ``cluster gives node i the IRC port client port + 2000`` () =
    let cluster = runCluster "cluster --nodes 3 --base-port 5001"

    Assert.Equal<int option list>([ Some 7001; Some 7002; Some 7003 ], [ for id in 1..3 -> (ClusterCommandLine.nodeOptions cluster id).IrcPort ])

let ``a node command line that cannot run is an error that says why`` (commandLine: string, mentions: string) =
    let message = nodeError commandLine

    if mentions <> "" then Assert.Contains(mentions, message)

let ``--help is an Error marked as help, carrying the usage text`` () =
    for commandLine in [ "--help"; "--id 3 --help"; "cluster --help" ] do
        let usage = nodeUsage commandLine
        Assert.True(usage.IsHelp, $"'{commandLine}' asks for help")
        Assert.Contains("--heartbeat-ms", usage.Message)
        Assert.Contains("--suspect-after", usage.Message)

    Assert.Contains("--peer", (nodeUsage "--help").Message)
    Assert.Contains("--data-dir", (nodeUsage "--help").Message)
    Assert.Contains("--fsync", (nodeUsage "--help").Message)
    Assert.Contains("--data-dir", (nodeUsage "cluster --help").Message)

let ``the client's --help is an Error marked as help, carrying the usage text`` () =
    match ClientCommandLine.parse [| "--help" |] with
    | Result.Error usage ->
        Assert.True usage.IsHelp
        Assert.Contains("--nick", usage.Message)
        Assert.Contains("--json", usage.Message)
    | Ok options -> failwith $"expected the usage, got {options}"

// ---------------------------------------------------------------------------------------------
// Client.

let private defaultDiscovery = { MulticastGroup = Defaults.multicastGroup; MulticastInterface = "127.0.0.1"; Seeds = [] }

let ``a client given --nick and --server connects there, as text`` () =
    let options = client "--nick alice --server 127.0.0.1:5001"

    Assert.Equal(
        { Nick = "alice"; Server = Some { Host = "127.0.0.1"; Port = 5001 }; Discovery = defaultDiscovery; Json = false; Tls = None; Password = None; AskPassword = false },
        options)

let ``the prior-art form 'alice localhost 5001' means alice on 127.0.0.1:5001`` () =
    let options = client "alice localhost 5001"

    Assert.Equal(
        { Nick = "alice"; Server = Some { Host = "127.0.0.1"; Port = 5001 }; Discovery = defaultDiscovery; Json = false; Tls = None; Password = None; AskPassword = false },
        options)

let ``TLS flags: the node takes a PEM certificate and key together, the client --tls with the system's trust, a CA file or no check`` () =
    Assert.Equal(None, (runNode "--id 1 --port 5001").Tls)
    Assert.Equal(Some { CertFile = "c.pem"; KeyFile = "k.pem" }, (runNode "--id 1 --port 5001 --tls-cert c.pem --tls-key k.pem").Tls)
    Assert.Contains("--tls-key", nodeError "--id 1 --port 5001 --tls-cert c.pem")
    let cluster = runCluster "cluster --nodes 2 --tls-cert c.pem --tls-key k.pem"
    Assert.Equal(Some { CertFile = "c.pem"; KeyFile = "k.pem" }, (ClusterCommandLine.nodeOptions cluster 2).Tls)
    Assert.Equal(None, (client "--nick alice").Tls)
    Assert.Equal(Some { CaFile = None; SkipVerify = false }, (client "--nick alice --tls").Tls)
    Assert.Equal(Some { CaFile = Some "ca.pem"; SkipVerify = false }, (client "--nick alice --tls-ca ca.pem").Tls)
    Assert.Equal(Some { CaFile = None; SkipVerify = true }, (client "--nick alice --tls --tls-insecure-skip-verify").Tls)
    match ClientCommandLine.parse (words "--nick alice --tls-ca ca.pem --tls-insecure-skip-verify") with
    | Result.Error usage -> Assert.Contains("exclude", usage.Message)
    | Ok options -> failwith $"expected an error, got {options}"

let ``--json turns on JSON output`` () =
    Assert.True((client "--nick alice --server 127.0.0.1:5001 --json").Json)
    Assert.True((client "--json alice localhost 5002").Json)

let ``a client given only a nickname discovers the cluster through the default multicast group`` () =
    for options in [ client "--nick bob"; client "bob" ] do
        Assert.Equal(None, options.Server)
        Assert.Equal(defaultDiscovery, options.Discovery)

let ``a client reads its discovery flags`` () =
    let options = client "--nick bob --peer 127.0.0.1:5002 --peer localhost:5003 --multicast 239.1.2.3:6000 --interface 127.0.0.1"

    Assert.Equal(None, options.Server)
    Assert.Equal(
        { MulticastGroup = { Host = "239.1.2.3"; Port = 6000 }
          MulticastInterface = "127.0.0.1"
          Seeds = [ { Host = "127.0.0.1"; Port = 5002 }; { Host = "127.0.0.1"; Port = 5003 } ] },
        options.Discovery)

let ``a client command line that cannot run is an error that says why`` (commandLine: string, mentions: string) =
    let message = clientError commandLine

    if mentions <> "" then Assert.Contains(mentions, message)

let ``a client command line with an unknown flag or a stray word is an error`` (commandLine: string, mentions: string) =
    Assert.Contains(mentions, clientError commandLine)

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "Config" [
        testCase "a node given only --id and --port gets the documented defaults"
            ``a node given only --id and --port gets the documented defaults``
        testCase "a node or a cluster's node given no protocol flags runs ProtocolConfig.defaults"
            ``a node or a cluster's node given no protocol flags runs ProtocolConfig.defaults``
        testCase "--hello-timeout and --max-connections-per-ip are read, 0 turning each off"
            ``--hello-timeout and --max-connections-per-ip are read, 0 turning each off``
        testCase "every node flag is read"
            ``every node flag is read``
        testTheory "--fsync takes each policy by name"
            [ "always"; "batch"; "never"; "NEVER" ]
            ``--fsync takes each policy by name``
        testCase "an empty --data-dir is an error that says why"
            ``an empty --data-dir is an error that says why``
        testCase "--no-rebalance turns redirects off"
            ``--no-rebalance turns redirects off``
        testCase "--no-multicast leaves only the seeds"
            ``--no-multicast leaves only the seeds``
        testCase "--cluster-key-file and --insecure-cluster are read, and a cluster gives every node its key"
            ``--cluster-key-file and --insecure-cluster are read, and a cluster gives every node its key``
        testCase "the node's protocol config and addresses come from its options"
            ``the node's protocol config and addresses come from its options``
        testCase "cluster --nodes 3 --base-port 5001 starts three nodes on consecutive ports"
            ``cluster --nodes 3 --base-port 5001 starts three nodes on consecutive ports``
        testCase "cluster --data-dir gives each node its own directory under it"
            ``cluster --data-dir gives each node its own directory under it``
        testCase "cluster without flags starts three nodes from port 5001"
            ``cluster without flags starts three nodes from port 5001``
        testCase "cluster reads its timing flags"
            ``cluster reads its timing flags``
        testCase "--irc-port is off by default and read when given"
            ``--irc-port is off by default and read when given``
        testCase "cluster gives node i the IRC port client port + 2000"
            ``cluster gives node i the IRC port client port + 2000``
        testTheory "a node command line that cannot run is an error that says why"
            [ ("--id 3 --port 5003 --irc-port 0", "--irc-port")
              ("--id 3 --port 5003 --irc-port 70000", "--irc-port")
              ("--id 3 --port 5003 --irc-port 5003", "--irc-port")
              ("--id 3 --port 5003 --irc-port 6003", "--irc-port")
              ("--id 3 --port 5003 --irc-port", "--irc-port")
              ("--port 5003", "--id")
              ("--id 3", "--port")
              ("--id 0 --port 5003", "--id")
              ("--id -4 --port 5003", "")
              ("--id three --port 5003", "")
              ("--id 3 --port 70000", "--port")
              ("--id 3 --port 0", "--port")
              ("--id 3 --port abc", "")
              ("--id 3 --port 5003 --peer-port 5003", "--peer-port")
              ("--id 3 --port 5003 --peer nowhere", "--peer")
              ("--id 3 --port 5003 --peer 127.0.0.1:99999", "--peer")
              ("--id 3 --port 5003 --multicast banana", "--multicast")
              ("--id 3 --port 5003 --interface eth0", "--interface")
              ("--id 3 --port 5003 --heartbeat-ms 0", "--heartbeat-ms")
              ("--id 3 --port 5003 --suspect-after 0", "--suspect-after")
              ("--id 3 --port 5003 --max-clients 0", "--max-clients")
              ("--id 3 --port 5003 --history -1", "")
              ("--id 3 --port 5003 --history 2001", "--history")
              ("--id 3 --port 5003 --rebalance-threshold 0", "--rebalance-threshold")
              ("--id 3 --port 5003 --frobnicate", "--frobnicate")
              ("--id 3 --port 5003 --fsync sometimes", "--fsync")
              ("--id 3 --port 5003 --fsync", "--fsync")
              ("--id 3 --port 5003 --data-dir", "--data-dir")
              ("cluster --data-dir", "--data-dir")
              ("cluster --nodes 0", "--nodes")
              ("cluster --base-port 65000", "--base-port")
              ("cluster --bogus", "--bogus")
              ("--id 3 --port 5003 --hello-timeout -1", "--hello-timeout")
              ("--id 3 --port 5003 --hello-timeout 0.01", "--hello-timeout")
              ("--id 3 --port 5003 --hello-timeout soon", "--hello-timeout")
              ("--id 3 --port 5003 --max-connections-per-ip -1", "--max-connections-per-ip")
              ("--id 3 --port 5003 --max-connections-per-ip many", "--max-connections-per-ip")
              ("cluster --nodes 3 --base-port 63534", "--base-port") ]
            ``a node command line that cannot run is an error that says why``
        testCase "--help is an Error marked as help, carrying the usage text"
            ``--help is an Error marked as help, carrying the usage text``
        testCase "the client's --help is an Error marked as help, carrying the usage text"
            ``the client's --help is an Error marked as help, carrying the usage text``
        testCase "a client given --nick and --server connects there, as text"
            ``a client given --nick and --server connects there, as text``
        testCase "the prior-art form 'alice localhost 5001' means alice on 127.0.0.1:5001"
            ``the prior-art form 'alice localhost 5001' means alice on 127.0.0.1:5001``
        testCase "TLS flags: the node takes a PEM certificate and key together, the client --tls with the system's trust, a CA file or no check"
            ``TLS flags: the node takes a PEM certificate and key together, the client --tls with the system's trust, a CA file or no check``
        testCase "--json turns on JSON output"
            ``--json turns on JSON output``
        testCase "a client given only a nickname discovers the cluster through the default multicast group"
            ``a client given only a nickname discovers the cluster through the default multicast group``
        testCase "a client reads its discovery flags"
            ``a client reads its discovery flags``
        testTheory "a client command line that cannot run is an error that says why"
            [ ("--nick al!ce --server 127.0.0.1:5001", "letters")
              ("--nick abcdefghijklmnopqrstuvwxyz0123456", "32")
              ("--server 127.0.0.1:5001", "--nick")
              ("", "--nick")
              ("--nick alice --server nowhere", "--server")
              ("--nick alice --server 127.0.0.1:0", "--server")
              ("alice localhost", "--server")
              ("alice localhost 5001 extra", "")
              ("--nick bob --peer nowhere", "--peer")
              ("--nick bob --multicast banana", "--multicast")
              ("--nick bob --interface eth0", "--interface") ]
            ``a client command line that cannot run is an error that says why``
        testTheory "a client command line with an unknown flag or a stray word is an error"
            [ ("--nick alice --volume 11", "--volume")
              ("--nick alice --frobnicate", "--frobnicate")
              // A stray word is read as a second nickname; the error says to give the nickname once.
              ("--nick alice bob", "--nick")
              ("--nick alice --json -x", "-x") ]
            ``a client command line with an unknown flag or a stray word is an error``
    ]
