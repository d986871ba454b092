using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FormalChat.CommandLine;
using FormalChat.Protocol;
using FormalChat.Transport;

namespace FormalChat.Client;

/// Listens to the nodes' multicast heartbeats for a moment and reports the nodes heard. It only
/// listens: it joins the group on the configured interface (127.0.0.1 by default; the socket
/// is set up as the nodes' is, by Transport.CSharp's MulticastSocket) and never sends. A
/// datagram that is not a heartbeat is ignored.
public static class MulticastListener
{
    public static async Task<IReadOnlyList<NodeCandidate>> ListenAsync(DiscoveryOptions discovery, CancellationToken cancel)
    {
        var group = new IPEndPoint(IPAddress.Parse(discovery.MulticastGroup.Host), discovery.MulticastGroup.Port);
        // The nodes on this host hold the same group and port; the shared setup lets us listen beside them.
        using var socket = MulticastSocket.Open(group, IPAddress.Parse(discovery.MulticastInterface));

        var collector = new HeartbeatCollector();
        var clock = Stopwatch.StartNew();
        var buffer = new byte[64 * 1024];
        while (!collector.IsComplete(clock.Elapsed) && !cancel.IsCancellationRequested)
        {
            var untilDone = HeartbeatCollector.MaxWait - clock.Elapsed;
            // Wake at least every 50 ms so the interval rule can end the wait between datagrams.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            wait.CancelAfter(TimeSpan.FromMilliseconds(Math.Clamp(untilDone.TotalMilliseconds, 1, 50)));
            int count;
            try
            {
                count = await socket.ReceiveAsync(buffer, SocketFlags.None, wait.Token);
            }
            catch (OperationCanceledException)
            {
                continue;
            }
            catch (SocketException)
            {
                continue;
            }
            var decoded = Wire.decodePeerMessage(SealedHeartbeat.Unwrap(Encoding.UTF8.GetString(buffer, 0, count).TrimEnd('\n')));
            if (decoded.IsOk && decoded.ResultValue is PeerMessage.HeartbeatSent { Item: var heartbeat })
                collector.Heard(heartbeat, clock.Elapsed);
        }
        return collector.Nodes;
    }
}
