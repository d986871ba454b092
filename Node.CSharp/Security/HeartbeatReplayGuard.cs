namespace FormalChat.Node.Security;

/// <summary>
/// Remembers, per sender incarnation, the highest heartbeat counter accepted, and refuses a
/// datagram whose counter is not above it (a replayed copy) or whose send time is far from ours
/// (an old recording played to a node that has forgotten the counters, after a restart). Only
/// authentic datagrams reach it, so only nodes holding the key add incarnations; it keeps at most
/// MaxIncarnations of them and forgets the one heard from longest ago. Pure: the caller gives the time.
/// </summary>
public sealed class HeartbeatReplayGuard
{
    /// <summary>How far a heartbeat's send time may be from this node's clock. Nodes on different
    /// hosts need clocks within this of each other (NTP keeps them far closer).</summary>
    public const long MaxClockSkewMs = 30_000;

    public const int MaxIncarnations = 1024;

    public enum Verdict { Accepted, Replayed, Stale }

    private readonly Dictionary<ulong, (long Counter, long HeardAtMs)> _last = new();

    public Verdict Check(HeartbeatSeal.Opened heartbeat, long nowUnixMs)
    {
        if (Math.Abs(nowUnixMs - heartbeat.SentAtUnixMs) > MaxClockSkewMs) return Verdict.Stale;
        if (_last.TryGetValue(heartbeat.Incarnation, out var last) && heartbeat.Counter <= last.Counter) return Verdict.Replayed;
        if (!_last.ContainsKey(heartbeat.Incarnation) && _last.Count >= MaxIncarnations) ForgetOldest();
        _last[heartbeat.Incarnation] = (heartbeat.Counter, nowUnixMs);
        return Verdict.Accepted;
    }

    private void ForgetOldest()
    {
        var oldest = _last.MinBy(entry => entry.Value.HeardAtMs).Key;
        _last.Remove(oldest);
    }
}
