using System.Diagnostics;
using Microsoft.Extensions.Logging;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node;

/// <summary>
/// Says in the log when the loop falls behind: a tick taken much later than its interval (the
/// peers may then suspect this node), or one step that took long. Those are the moments an
/// operator needs to see to explain a suspicion or an election under load.
/// </summary>
public sealed class LoopWatch(int heartbeatIntervalMs, ILogger log)
{
    private static readonly TimeSpan LongStep = TimeSpan.FromMilliseconds(50);

    private long _lastTick = Stopwatch.GetTimestamp();

    private TimeSpan _gcPausedBefore;

    /// <summary>Called just before a step.</summary>
    public long Starting()
    {
        _gcPausedBefore = GC.GetTotalPauseDuration();
        return Stopwatch.GetTimestamp();
    }

    public void Stepped(Event handled, long startedTimestamp)
    {
        var took = Stopwatch.GetElapsedTime(startedTimestamp);
        if (took > LongStep)
        {
            var paused = GC.GetTotalPauseDuration() - _gcPausedBefore;
            log.LogWarning("one step took {Milliseconds:0} ms ({Event}; {Paused:0} ms of it paused for garbage collection)",
                took.TotalMilliseconds, Describe(handled), paused.TotalMilliseconds);
        }
        if (!handled.IsTicked) return;
        var sinceLast = Stopwatch.GetElapsedTime(_lastTick, startedTimestamp);
        _lastTick = startedTimestamp;
        if (sinceLast.TotalMilliseconds > 2 * heartbeatIntervalMs)
        {
            log.LogWarning("the loop fell behind: a tick came {Milliseconds:0} ms after the last one (interval {Interval} ms)",
                sinceLast.TotalMilliseconds, heartbeatIntervalMs);
        }
    }

    private static string Describe(Event handled) => handled switch
    {
        Event.PeerMessageReceived peer => $"peer {peer.Item.GetType().Name}",
        Event.ClientRequested client => $"client {client.Item2.GetType().Name}",
        _ => handled.GetType().Name,
    };
}
