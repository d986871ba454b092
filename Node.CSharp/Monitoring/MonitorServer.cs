using System.Net;
using System.Reflection;
using FormalChat.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace FormalChat.Node.Monitoring;

/// <summary>
/// `--metrics-port`: an HTTP server (Kestrel) on the node's host address with
///   /metrics      Prometheus text format (prometheus-net);
///   /status.json  this node's view of the cluster (Observation.NodeView);
///   /             the live dashboard, one embedded page that polls /status.json of this node and
///                 of its peers (each at its client port plus this node's offset, which is how
///                 `cluster` numbers them), so it works with no internet and no build step.
/// It only reads: the newest state the loop published, and the shell's counters and gauges.
/// </summary>
public sealed class MonitorServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private MonitorServer(WebApplication app) => _app = app;

    public static async Task<MonitorServer> StartAsync(IPEndPoint endpoint, int clientPort, Func<Observation.NodeView> view,
        NodeGauges gauges, ILogger log)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(endpoint));
        var app = builder.Build();
        Metrics.DefaultRegistry.AddBeforeCollectCallback(() => gauges.Update(view()));
        var dashboard = ReadDashboard();
        var offset = endpoint.Port - clientPort;

        app.MapMetrics("/metrics");
        app.MapGet("/status.json", (HttpContext context) =>
        {
            // The dashboard of one node reads its peers' status too: another port is another origin.
            context.Response.Headers.AccessControlAllowOrigin = "*";
            return Results.Json(new { dashboardPortOffset = offset, node = view() });
        });
        app.MapGet("/", () => Results.Content(dashboard, "text/html; charset=utf-8"));
        await app.StartAsync().ConfigureAwait(false);
        log.LogInformation("dashboard at http://{Endpoint}/, Prometheus metrics at /metrics", endpoint);
        return new MonitorServer(app);
    }

    private static string ReadDashboard()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("FormalChat.Node.Monitoring.dashboard.html")
                           ?? throw new InvalidOperationException("the dashboard page is not embedded in the node");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>The gauges, and the counters kept elsewhere (input rejections, bytes read), set from
/// their sources each time Prometheus scrapes.</summary>
public sealed class NodeGauges(ClientGateway clients, PeerNetwork peers, NodeInbox inbox, InputCounters rejected, string dataDirectory)
{
    private readonly Gauge _clients = Metrics.CreateGauge("formalchat_clients_connected", "Client connections open now.");
    private readonly Gauge _viewSize = Metrics.CreateGauge("formalchat_view_size", "Nodes this node believes live, itself included.");
    private readonly Gauge _leader = Metrics.CreateGauge("formalchat_leader_id", "The leader this node follows; 0 while an election runs.");
    private readonly Gauge _epoch = Metrics.CreateGauge("formalchat_epoch", "The newest election epoch this node knows.");
    private readonly Gauge _quorum = Metrics.CreateGauge("formalchat_has_quorum", "1 while this node sees a majority of the nodes it knows.");
    private readonly Gauge _lag = Metrics.CreateGauge("formalchat_room_replication_lag_messages",
        "On a room's owner: messages sequenced that its backup has not confirmed.", "room");
    private readonly Gauge _lanes = Metrics.CreateGauge("formalchat_inbox_queued_bytes", "Bytes of input waiting for the loop, by lane.", "lane");
    private readonly Gauge _sendQueues = Metrics.CreateGauge("formalchat_send_queued_bytes", "Bytes waiting to be sent, by link.", "link");
    private readonly Counter _received = Metrics.CreateCounter("formalchat_received_bytes_total", "Bytes of frames read, by link.", "link");
    private readonly Counter _rejected = Metrics.CreateCounter("formalchat_rejected_frames_total", "Input refused, by reason.", "reason");
    private readonly Gauge _logBytes = Metrics.CreateGauge("formalchat_log_bytes", "Bytes of this node's room logs on disk.");
    private readonly HashSet<string> _lagRooms = new();

    public void Update(Observation.NodeView view)
    {
        _clients.Set(clients.ConnectedClients);
        _viewSize.Set(view.Nodes.Count(node => node.InView));
        _leader.Set(view.Leader);
        _epoch.Set(view.Epoch);
        _quorum.Set(view.HasQuorum ? 1 : 0);
        var owned = new HashSet<string>();
        foreach (var room in view.Rooms.Where(room => room.ReplicationLag >= 0))
        {
            _lag.WithLabels(room.Room).Set(room.ReplicationLag);
            owned.Add(room.Room);
        }
        // A room this node no longer owns has no lag to report here.
        foreach (var gone in _lagRooms.Except(owned)) _lag.RemoveLabelled(gone);
        _lagRooms.Clear();
        _lagRooms.UnionWith(owned);
        _lanes.WithLabels("peers").Set(inbox.Peers.QueuedBytes);
        _lanes.WithLabels("clients").Set(inbox.Clients.QueuedBytes);
        _sendQueues.WithLabels("client").Set(clients.Outbound.Bytes);
        _sendQueues.WithLabels("peer").Set(peers.Outbound.Bytes);
        _received.WithLabels("peer").IncTo(inbox.Peers.TotalBytes);
        _received.WithLabels("client").IncTo(inbox.Clients.TotalBytes);
        _rejected.WithLabels("bad-client-frame").IncTo(rejected.BadClientFrames);
        _rejected.WithLabels("bad-peer-frame").IncTo(rejected.BadPeerFrames);
        _rejected.WithLabels("bad-datagram").IncTo(rejected.BadDatagrams);
        _rejected.WithLabels("tls-refused").IncTo(rejected.RefusedTlsConnections);
        _rejected.WithLabels("failed-resume").IncTo(rejected.FailedResumes);
        _rejected.WithLabels("throttled-resume").IncTo(rejected.ThrottledResumes);
        _rejected.WithLabels("failed-login").IncTo(rejected.FailedLogins);
        _rejected.WithLabels("throttled-login").IncTo(rejected.ThrottledLogins);
        _logBytes.Set(LogBytes());
    }

    private long LogBytes()
    {
        try
        {
            return new DirectoryInfo(dataDirectory).EnumerateFiles("*", SearchOption.AllDirectories).Sum(file => file.Length);
        }
        catch (IOException) { return 0; }
    }
}
