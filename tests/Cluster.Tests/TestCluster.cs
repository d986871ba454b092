using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Newtonsoft.Json.Linq;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace FormalChat.Cluster.Tests;

/// <summary>
/// Node processes on 127.0.0.1 for one test: free ports, a multicast port of its own so tests
/// never hear each other, a temporary data directory of its own (node i keeps its logs in
/// node-i under it, and a node started again with the same id reads them back), short
/// heartbeats, and kill -9 for crash tests. Disposal stops them all and deletes the data.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    public const int HeartbeatMs = 100;
    // K = 5, not the default 3: starting a dotnet process takes both cores for a moment, and a
    // test must not mistake that stall for a crash. Benchmarks measure with K = 3.
    public static int SuspectAfter { get; set; } = 5;

    /// <summary>Nodes start with tiered compilation (quick, unoptimized code first): a node as
    /// shipped compiles everything fully optimized at first call (Node.CSharp.csproj), which makes
    /// each start slower, and the hundreds of nodes the tests start would add minutes to CI; the
    /// JIT changes nothing the tests check. The benchmarks turn it off to measure the node as shipped.</summary>
    public static bool QuickStart { get; set; } = true;

    private readonly Dictionary<int, Process> _nodes = new();
    private readonly Dictionary<int, int> _clientPorts = new();
    private readonly List<string> _output = new();
    private readonly Dictionary<int, TestClient> _probes = new();
    private readonly int _multicastPort = Ports.FreeUdp();
    private readonly string _dataDirectory = Directory.CreateTempSubdirectory("formalchat-test-").FullName;

    public TestCluster()
    {
        // Every test cluster is authenticated, as a real one is: one fresh key for its nodes.
        FormalChat.Node.Security.ClusterKey.WriteNew(ClusterKeyFile);
    }

    /// <summary>The key file every node of this cluster is given, unless a test passes its own
    /// --cluster-key-file or --insecure-cluster.</summary>
    public string ClusterKeyFile => Path.Combine(_dataDirectory, "cluster.key");

    /// <summary>Nodes that also serve /metrics, /status.json and the dashboard, each at its
    /// client port + <see cref="DashboardPortOffset"/> (as `cluster` numbers them).</summary>
    private bool _dashboards;
    public const int DashboardPortOffset = 3000;

    public static async Task<TestCluster> StartAsync(int nodes, params string[] extraArguments) =>
        await StartAsync(nodes, dashboards: false, extraArguments);

    /// <summary>Trace validation: node i writes its spec actions to <see cref="TracePath"/>(i)
    /// (--trace-file), with the environment variables <paramref name="environment"/> gives it.</summary>
    public static async Task<TestCluster> StartTracedAsync(int nodes, string traceDirectory, Func<int, IReadOnlyDictionary<string, string>>? environment = null)
    {
        var cluster = new TestCluster { _traceDirectory = traceDirectory, _environment = environment };
        for (var id = 1; id <= nodes; id++) cluster.StartNode(id);
        await cluster.WaitUntilListeningAsync();
        return cluster;
    }

    private string? _traceDirectory;
    private Func<int, IReadOnlyDictionary<string, string>>? _environment;

    public string TracePath(int id) => Path.Combine(_traceDirectory ?? throw new InvalidOperationException("not a traced cluster"), $"node-{id}.ndjson");

    public static async Task<TestCluster> StartAsync(int nodes, bool dashboards, params string[] extraArguments)
    {
        var cluster = new TestCluster { _dashboards = dashboards };
        for (var id = 1; id <= nodes; id++) cluster.StartNode(id, extraArguments);
        await cluster.WaitUntilListeningAsync();
        return cluster;
    }

    public int ClientPort(int id) => _clientPorts[id];
    public string MulticastGroup => $"239.255.77.1:{_multicastPort}";
    public int PeerPort(int id) => _clientPorts[id] + 1000;
    public int DashboardPort(int id) => _clientPorts[id] + DashboardPortOffset;
    public string DataDir(int id) => Path.Combine(_dataDirectory, $"node-{id}");

    public string Output { get { lock (_output) return string.Join("\n", _output); } }

    public void StartNode(int id, params string[] extraArguments)
    {
        if (_nodes.TryGetValue(id, out var previous))
        {
            // A node started again with the same id reads back the logs its previous run left.
            if (!previous.HasExited) throw new InvalidOperationException($"node {id} is still running");
            previous.Dispose();
        }
        var port = _clientPorts.TryGetValue(id, out var known) ? known : Ports.FreeTcpPair();
        _clientPorts[id] = port;
        var start = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Node.CSharp.dll"));
        foreach (var argument in new[]
                 {
                     "--id", id.ToString(), "--port", port.ToString(), "--heartbeat-ms", HeartbeatMs.ToString(),
                     "--suspect-after", SuspectAfter.ToString(), "--multicast", $"239.255.77.1:{_multicastPort}",
                     "--interface", "127.0.0.1", "--data-dir", DataDir(id),
                 }.Concat(_dashboards ? ["--metrics-port", (port + DashboardPortOffset).ToString()] : [])
                  .Concat(_traceDirectory is null ? [] : ["--trace-file", TracePath(id)])
                  .Concat(KeyArguments(extraArguments))
                  .Concat(extraArguments))
        {
            start.ArgumentList.Add(argument);
        }
        if (QuickStart) start.Environment["DOTNET_TieredCompilation"] = "1";
        foreach (var (name, value) in _environment?.Invoke(id) ?? new Dictionary<string, string>()) start.Environment[name] = value;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"node {id} did not start");
        process.OutputDataReceived += (_, line) => { if (line.Data is { } text) lock (_output) _output.Add(text); };
        process.ErrorDataReceived += (_, line) => { if (line.Data is { } text) lock (_output) _output.Add(text); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _nodes[id] = process;
    }

    private string[] KeyArguments(string[] extraArguments) =>
        extraArguments.Contains("--cluster-key-file") || extraArguments.Contains("--insecure-cluster") ? [] : ["--cluster-key-file", ClusterKeyFile];

    public async Task WaitUntilListeningAsync()
    {
        foreach (var id in _nodes.Keys.Where(id => !_nodes[id].HasExited))
        {
            await Eventually.TrueAsync(() => Ports.Accepts(_clientPorts[id]), TimeSpan.FromSeconds(20), $"node {id} listening", () => Output);
        }
    }

    /// <summary>kill -9: no goodbye, the others must notice by missed heartbeats.</summary>
    public void Kill(int id)
    {
        _nodes[id].Kill(entireProcessTree: true);
        _nodes[id].WaitForExit();
    }

    /// <summary>SIGTERM: the node announces its leave before exiting.</summary>
    public async Task StopGracefullyAsync(int id)
    {
        using (var kill = Process.Start("kill", ["-TERM", _nodes[id].Id.ToString()])) await kill.WaitForExitAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _nodes[id].WaitForExitAsync(deadline.Token);
    }

    public int ExitCode(int id) => _nodes[id].ExitCode;

    public bool HasExited(int id) => _nodes[id].HasExited;

    /// <summary>The node's process id, for sampling its memory in /proc.</summary>
    public int ProcessId(int id) => _nodes[id].Id;

    /// <summary>Resident memory of a node process, for benchmarks.</summary>
    public double NodeMemoryMegabytes(int id)
    {
        _nodes[id].Refresh();
        return _nodes[id].WorkingSet64 / (1024.0 * 1024.0);
    }

    /// <summary>Asks node <paramref name="id"/> for its view of the cluster, through a client of its own.</summary>
    public async Task<JObject> StatusAsync(int id)
    {
        if (!_probes.TryGetValue(id, out var probe) || probe.Closed)
        {
            probe = await TestClient.OpenAsync(ClientPort(id));
            _probes[id] = probe;
        }
        await probe.SendAsync(new JObject { ["type"] = "status" });
        return await probe.NextAsync(frame => (string?)frame["type"] == "status");
    }

    /// <summary>
    /// Waits until some node has logged <paramref name="line"/>. A node's output reaches the test
    /// through its own pipe, so a line can arrive after another node's answer that it caused.
    /// </summary>
    public Task WaitForOutputAsync(string line, TimeSpan deadline) =>
        Eventually.TrueAsync(() => Task.FromResult(Output.Contains(line)), deadline, $"a node logs \"{line}\"", () => Output);

    /// <summary>Waits until every listed node reports the same leader and the expected view.</summary>
    public async Task WaitForLeaderAsync(int leader, int[] nodes, TimeSpan deadline)
    {
        JObject? last = null;
        await Eventually.TrueAsync(async () =>
        {
            foreach (var id in nodes)
            {
                last = await StatusAsync(id);
                var view = last["nodes"]!.Select(node => (int)node["id"]!).OrderBy(x => x);
                if ((int?)last["leader"] != leader || !view.SequenceEqual(nodes.OrderBy(x => x))) return false;
            }
            return true;
        }, deadline, $"leader {leader} agreed by nodes {string.Join(",", nodes)}", () => $"last status: {last}\n{Output}");
    }

    public async ValueTask DisposeAsync()
    {
        // FORMALCHAT_TEST_LOGS=<dir> keeps every test cluster's node logs for a post-mortem.
        if (Environment.GetEnvironmentVariable("FORMALCHAT_TEST_LOGS") is { Length: > 0 } logs)
        {
            Directory.CreateDirectory(logs);
            await File.WriteAllTextAsync(Path.Combine(logs, $"cluster-{Guid.NewGuid():N}.log"), Output);
        }
        foreach (var probe in _probes.Values) await probe.DisposeAsync();
        foreach (var process in _nodes.Values)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            process.Dispose();
        }
        Directory.Delete(_dataDirectory, recursive: true);
    }
}

public static class Ports
{
    /// <summary>A free client port whose peer port (+1000) is free too.</summary>
    public static int FreeTcpPair()
    {
        while (true)
        {
            var port = FreeTcp();
            if (port + 1000 < 65536 && IsFree(port + 1000)) return port;
        }
    }

    public static int FreeTcp()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public static int FreeUdp()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static bool IsFree(int port)
    {
        try
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException) { return false; }
    }

    public static async Task<bool> Accepts(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException) { return false; }
    }
}

/// <summary>Tests wait on conditions with a deadline, never on fixed sleeps.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan deadline, string what, Func<string>? context = null)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < deadline)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception error) when (error is IOException or SocketException or TimeoutException or InvalidOperationException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException($"not true within {deadline.TotalSeconds:0.#} s: {what}\n{context?.Invoke()}");
    }
}
