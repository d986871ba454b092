namespace FormalChat.Cluster.Tests.RawClients;

/// <summary>
/// Checks one room's sequence numbers as one client received them. A frame whose seq was
/// already seen is a duplicate; a new seq lower than the last one seen is out of order. The
/// counts are written by the client's reader only and read by the test when it is done, so
/// plain fields with volatile reads are enough.
/// </summary>
public sealed class SeqChecker
{
    private readonly HashSet<long> _seen = new();
    private long _last;
    private int _frames;
    private int _distinct;
    private int _duplicates;
    private int _outOfOrder;

    public int Frames => Volatile.Read(ref _frames);
    public int Distinct => Volatile.Read(ref _distinct);
    public int Duplicates => Volatile.Read(ref _duplicates);
    public int OutOfOrder => Volatile.Read(ref _outOfOrder);

    /// <summary>Counts one frame; returns false for a duplicate.</summary>
    public bool Observe(long seq)
    {
        Volatile.Write(ref _frames, _frames + 1);
        if (!_seen.Add(seq))
        {
            Volatile.Write(ref _duplicates, _duplicates + 1);
            return false;
        }
        if (seq < _last) Volatile.Write(ref _outOfOrder, _outOfOrder + 1);
        _last = seq;
        Volatile.Write(ref _distinct, _distinct + 1);
        return true;
    }
}
