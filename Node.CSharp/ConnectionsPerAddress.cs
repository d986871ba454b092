using System.Net;

namespace FormalChat.Node;

/// <summary>
/// How many client connections each remote address has open, against --max-connections-per-ip
/// (0: no limit). Accepting tasks call it concurrently; a lock keeps check-and-count one step.
/// </summary>
public sealed class ConnectionsPerAddress
{
    private readonly int _limit;
    private readonly Dictionary<IPAddress, int> _open = new();

    public ConnectionsPerAddress(int limit) => _limit = limit;

    /// <summary>Counts one more connection from <paramref name="address"/>, unless it already has the limit.</summary>
    public bool TryAdd(IPAddress address)
    {
        if (_limit <= 0) return true;
        lock (_open)
        {
            var open = _open.GetValueOrDefault(address);
            if (open >= _limit) return false;
            _open[address] = open + 1;
            return true;
        }
    }

    /// <summary>A connection counted by TryAdd has ended.</summary>
    public void Remove(IPAddress address)
    {
        if (_limit <= 0) return;
        lock (_open)
        {
            var open = _open.GetValueOrDefault(address) - 1;
            if (open > 0) _open[address] = open;
            else _open.Remove(address);
        }
    }
}
