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

    private TimeSpan _gcPausedAtLastTick = GC.GetTotalPauseDuration();

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
        var pausedSinceLast = _gcPausedBefore - _gcPausedAtLastTick;
        _lastTick = startedTimestamp;
        _gcPausedAtLastTick = _gcPausedBefore;
        if (sinceLast.TotalMilliseconds > 2 * heartbeatIntervalMs)
        {
            log.LogWarning("the loop fell behind: a tick came {Milliseconds:0} ms after the last one (interval {Interval} ms; {Paused:0} ms of it paused for garbage collection)",
                sinceLast.TotalMilliseconds, heartbeatIntervalMs, pausedSinceLast.TotalMilliseconds);
        }
    }

    private long _turnStarted;
    private TimeSpan _turnGcBefore;

    /// <summary>Called when a turn starts taking events.</summary>
    public void TurnStarting()
    {
        _turnStarted = Stopwatch.GetTimestamp();
        _turnGcBefore = GC.GetTotalPauseDuration();
    }

    /// <summary>Called when the turn's effects are carried out: a turn that held the loop long
    /// is what delays the next tick, so it is named with where its time went.</summary>
    public void TurnEnded(int events, long effectsStartedTimestamp)
    {
        var total = Stopwatch.GetElapsedTime(_turnStarted);
        if (total <= LongStep) return;
        var stepping = Stopwatch.GetElapsedTime(_turnStarted, effectsStartedTimestamp);
        var paused = GC.GetTotalPauseDuration() - _turnGcBefore;
        log.LogWarning("one turn took {Milliseconds:0} ms: {Events} events stepped in {Stepping:0} ms, their effects carried out in {Effects:0} ms; {Paused:0} ms of it paused for garbage collection",
            total.TotalMilliseconds, events, stepping.TotalMilliseconds, (total - stepping).TotalMilliseconds, paused.TotalMilliseconds);
    }

    /// <summary>Called when the loop wakes, with how long after an event arrived: a loop that
    /// did nothing yet woke late was kept off the CPU (other processes, at least as urgent as its
    /// raised priority), which no turn's split explains. In the paced fan-out on a loaded machine
    /// this, not the loop's own work, made the latency tail (up to 97 ms from ring to wake).</summary>
    public void Woke(TimeSpan afterRing)
    {
        if (afterRing <= LongStep) return;
        log.LogWarning("the loop woke {Milliseconds:0} ms after an event arrived: the machine kept it from running (it had nothing else to do)",
            afterRing.TotalMilliseconds);
    }

    private static string Describe(Event handled) => handled switch
    {
        Event.PeerMessageReceived peer => $"peer {peer.Item.GetType().Name}",
        Event.ClientRequested client => $"client {client.Item2.GetType().Name}",
        _ => handled.GetType().Name,
    };
}
