using System.Net;
using System.Net.Sockets;
using System.Text;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node;

/// <summary>
/// UDP multicast for discovery and heartbeats. Sends leave through the configured interface
/// (127.0.0.1 by default) with TTL 1, so they never go past this host's first hop. A datagram
/// that is not a valid heartbeat is dropped and counted.
/// </summary>
public sealed class MulticastDiscovery : IDisposable
{
    private readonly IPEndPoint _group;
    private readonly Socket _socket;
    private readonly NodeInbox _inbox;
    private readonly InputCounters _counters;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stopping = new();

    public MulticastDiscovery(Endpoint group, string interfaceAddress, NodeInbox inbox, InputCounters counters, ILogger log)
    {
        _group = new IPEndPoint(IPAddress.Parse(group.Host), group.Port);
        _inbox = inbox;
        _counters = counters;
        _log = log;
        var outgoing = IPAddress.Parse(interfaceAddress);
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        // Bound to the group address itself: only this group's datagrams arrive here.
        _socket.Bind(_group);
        _socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.AddMembership, new MulticastOption(_group.Address, outgoing));
        _socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastInterface, outgoing.GetAddressBytes());
        _socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastTimeToLive, 1);
        _socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastLoopback, true);
    }

    /// <summary>Heartbeats are received on a thread of their own (see DedicatedThread).</summary>
    public void Start() => _ = DedicatedThread.RunAsync("multicast receiver", ReceiveLoop);

    public void Send(ReadOnlyMemory<byte> datagram)
    {
        try { _socket.SendTo(datagram.Span, SocketFlags.None, _group); }
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
            // Decoded from the bytes, so a datagram that is not UTF-8 is refused like any bad frame.
            if (length > 0 && buffer[length - 1] == (byte)'\n') length--;
            var decoded = Wire.decodePeerMessageUtf8(new ReadOnlyMemory<byte>(buffer, 0, length));
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
