using System.Net;
using System.Net.Sockets;

namespace FormalChat.Transport;

/// <summary>
/// The one multicast socket setup, for the nodes' heartbeats and the client's discovery: bound to
/// the group (so only its datagrams arrive), joined and sending through one interface (127.0.0.1
/// by default) with TTL 1, so nothing goes past this host's first hop, and loopback on, so nodes
/// on one host hear each other. ReuseAddress lets every node and client on the host share the port.
/// </summary>
public static class MulticastSocket
{
    public const string DefaultInterface = "127.0.0.1";

    public const int DefaultTimeToLive = 1;

    public static Socket Open(IPEndPoint group, IPAddress interfaceAddress, int timeToLive = DefaultTimeToLive)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(group);
            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.AddMembership, new MulticastOption(group.Address, interfaceAddress));
            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastInterface, interfaceAddress.GetAddressBytes());
            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastTimeToLive, timeToLive);
            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastLoopback, true);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
