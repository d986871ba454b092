namespace FormalChat.Client;

/// What a failover did, told to the user in one line: where the client is now, where it was,
/// why it moved, and where each room resumed.
public sealed record ReconnectReport(int Node, int Previous, bool Redirected, string Reason, IReadOnlyList<(string Room, long Seq)> Resumed)
{
    /// "reconnected to node 2 after node 3 failed; resumed #lobby from 1042, #dev from 7", or
    /// "moved to node 2 (redirected: <reason>); resumed #lobby from 1042".
    public string Describe()
    {
        var resumed = string.Join(", ", Resumed.Select(point => $"{point.Room} from {point.Seq}"));
        var moved = Redirected ? $"moved to node {Node} (redirected: {Reason})" : $"reconnected to node {Node} after node {Previous} failed";
        return resumed.Length == 0 ? moved : $"{moved}; resumed {resumed}";
    }
}
