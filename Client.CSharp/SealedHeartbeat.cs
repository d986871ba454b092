namespace FormalChat.Client;

/// <summary>
/// Heartbeats of a cluster with a key arrive sealed: "FCHB1 &lt;mac&gt; &lt;incarnation&gt; &lt;counter&gt;
/// &lt;sent at&gt; &lt;JSON&gt;" (Node.CSharp/Security/HeartbeatSeal.cs). A client has no key, so it cannot
/// check the MAC: it takes the JSON as a hint of where nodes are, like an unsealed heartbeat
/// (docs/SECURITY.md says what that leaves open).
/// </summary>
public static class SealedHeartbeat
{
    private const string Prefix = "FCHB1 ";
    private const int SealWords = 5;

    public static string Unwrap(string datagram)
    {
        if (!datagram.StartsWith(Prefix, StringComparison.Ordinal)) return datagram;
        var start = 0;
        for (var word = 0; word < SealWords; word++)
        {
            var space = datagram.IndexOf(' ', start);
            if (space < 0) return datagram;
            start = space + 1;
        }
        return datagram[start..];
    }
}
