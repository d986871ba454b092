using System.Net;
using System.Net.Sockets;
using System.Text;
using FormalChat.Protocol;
using FormalChat.Transport;
using Microsoft.FSharp.Core;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>What an outsider on the machine can do to a test cluster: send datagrams to its
/// multicast group, listen to it, and open TCP connections to its peer ports.</summary>
public static class SecurityProbe
{
    public static IPEndPoint GroupOf(TestCluster cluster)
    {
        var group = cluster.MulticastGroup.Split(':');
        return new IPEndPoint(IPAddress.Parse(group[0]), int.Parse(group[1]));
    }

    public static void SendDatagram(TestCluster cluster, byte[] datagram)
    {
        var group = GroupOf(cluster);
        using var sender = MulticastSocket.Open(group, IPAddress.Loopback);
        sender.SendTo(datagram, group);
    }

    /// <summary>The next sealed heartbeat a node of the cluster multicasts, as it went on the wire.</summary>
    public static async Task<byte[]> CaptureHeartbeatAsync(TestCluster cluster, TimeSpan deadline)
    {
        var group = GroupOf(cluster);
        using var listener = MulticastSocket.Open(group, IPAddress.Loopback);
        using var timeout = new CancellationTokenSource(deadline);
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var count = await listener.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            if (Encoding.ASCII.GetString(buffer, 0, 6) == "FCHB1 ") return buffer[..count];
        }
    }

    /// <summary>A heartbeat from a node that does not exist, claiming to lead at a huge epoch (issue 11).</summary>
    public static byte[] FakeLeaderHeartbeat(int fakePeerPort)
    {
        var fake = new NodeInfo(99, new Endpoint("127.0.0.1", fakePeerPort), new Endpoint("127.0.0.1", fakePeerPort));
        var heartbeat = new Heartbeat(fake, 1_000_000, FSharpOption<int>.Some(99), new Load(0, 0, 0), Microsoft.FSharp.Collections.FSharpList<NodeInfo>.Empty);
        return Encoding.UTF8.GetBytes(Wire.encodePeerMessage(PeerMessage.NewHeartbeatSent(heartbeat)) + "\n");
    }

    public static long Counter(JObject status, string name) => (long)status["clusterSecurity"]![name]!;

    /// <summary>True once the other side has closed the connection (a read returns 0 or fails).</summary>
    public static async Task<bool> ClosedByNodeAsync(Socket socket, TimeSpan deadline)
    {
        using var timeout = new CancellationTokenSource(deadline);
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                if (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) == 0) return true;
            }
        }
        catch (SocketException) { return true; }
        catch (OperationCanceledException) { return false; }
    }
}
