using System.Net;
using System.Net.Sockets;
using FormalChat.Node.Security;
using FormalChat.Protocol;
using FormalChat.Transport;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node;

/// <summary>
/// UDP multicast for discovery and heartbeats. Sends leave through the configured interface
/// (127.0.0.1 by default) with TTL 1, so they never go past this host's first hop (the socket
/// setup is Transport.CSharp's MulticastSocket, shared with the client). A datagram
/// that is not a valid heartbeat is dropped and counted. With a cluster key, every datagram is
/// sealed with an HMAC and a counter (Security/HeartbeatSeal.cs), and one that is forged or
/// replayed is dropped before it is decoded.
/// </summary>
public sealed class MulticastDiscovery : IDisposable
{
    private readonly IPEndPoint _group;
    private readonly Socket _socket;
    private readonly NodeInbox _inbox;
    private readonly InputCounters _counters;
    private readonly ILogger _log;
    private readonly ClusterSecurity _security;
    private readonly CancellationTokenSource _stopping = new();

    public MulticastDiscovery(Endpoint group, string interfaceAddress, NodeInbox inbox, InputCounters counters, ILogger log, ClusterSecurity security)
    {
        _security = security;
        _group = new IPEndPoint(IPAddress.Parse(group.Host), group.Port);
        _inbox = inbox;
        _counters = counters;
        _log = log;
        // Bound to the group address itself: only this group's datagrams arrive here.
        _socket = MulticastSocket.Open(_group, IPAddress.Parse(interfaceAddress));
    }

    /// <summary>Heartbeats are received on a thread of their own (see DedicatedThread).</summary>
    public void Start() => _ = DedicatedThread.RunAsync("multicast receiver", ReceiveLoop);

    public void Send(ReadOnlyMemory<byte> datagram)
    {
        try { _socket.SendTo(_security.SealHeartbeat(datagram).Span, SocketFlags.None, _group); }
        catch (SocketException error) { _log.LogWarning("multicast heartbeat not sent: {Reason}", error.Message); }
    }

    private void ReceiveLoop()
    {
        var buffer = new byte[64 * 1024];
        while (!_stopping.IsCancellationRequested)
        {
            EndPoint sender = new IPEndPoint(IPAddress.Loopback, 0);
            int length;
            try { length = _socket.ReceiveFrom(buffer, SocketFlags.None, ref sender); }
            catch (ObjectDisposedException) { return; }
            catch (SocketException error)
            {
                if (_stopping.IsCancellationRequested) return;
                _log.LogDebug("multicast receive failed: {Reason}", error.Message);
                continue;
            }
            // Opened (MAC checked) from the raw bytes; an authentic datagram is our own nodes' UTF-8.
            var text = _security.OpenHeartbeat(buffer.AsSpan(0, length), sender.ToString() ?? "unknown");
            if (text is null) continue; // counted and logged by ClusterSecurity
            var decoded = Wire.decodePeerMessage(text);
            if (decoded.IsOk && decoded.ResultValue.IsHeartbeatSent && _inbox.TryControl(Event.NewPeerMessageReceived(decoded.ResultValue))) continue;
            // A heartbeat the full control lane cannot take is dropped like a lost datagram.
            var reason = !decoded.IsOk ? decoded.ErrorValue.Reason
                : decoded.ResultValue.IsHeartbeatSent ? "the control lane is full"
                : "only heartbeats travel by multicast";
            var count = _counters.CountBadDatagram();
            _log.LogDebug("dropped a datagram from {Sender}: {Reason} ({Count} dropped so far)", sender, reason, count);
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _socket.Dispose();
        _stopping.Dispose();
    }
}
