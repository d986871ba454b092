using System.Net;
using System.Net.Sockets;
using FormalChat.Transport;

namespace FormalChat.Cluster.Tests.Transport;

/// <summary>The one multicast setup: loopback interface, TTL 1, loopback on, sockets share the port.</summary>
public sealed class MulticastSocketTests
{
    [Fact]
    public async Task TwoSocketsOnOneGroupHearEachOtherThroughTheLoopbackInterfaceWithTtlOne()
    {
        var loopback = IPAddress.Parse(MulticastSocket.DefaultInterface);
        using var first = MulticastSocket.Open(new IPEndPoint(IPAddress.Parse("239.255.71.9"), 0), loopback);
        var group = new IPEndPoint(IPAddress.Parse("239.255.71.9"), ((IPEndPoint)first.LocalEndPoint!).Port);
        using var second = MulticastSocket.Open(group, loopback);

        Assert.Equal(1, (int)second.GetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastTimeToLive)!);
        Assert.Equal(1, (int)second.GetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastLoopback)!);

        second.SendTo("heartbeat"u8.ToArray(), group);
        var buffer = new byte[64];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var read = await first.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
        Assert.Equal("heartbeat", System.Text.Encoding.UTF8.GetString(buffer, 0, read));
    }
}
