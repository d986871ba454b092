using System.Diagnostics;

namespace FormalChat.Node;

/// <summary>
/// One client's token bucket: up to <c>burst</c> frames at once, then <c>rate</c> a second. A frame
/// over the rate is not refused; the reader waits before taking it, so the client's own TCP
/// window fills and its sends slow down. Nothing is dropped.
/// </summary>
public sealed class ClientRateLimit(int ratePerSecond, int burst)
{
    private double _tokens = burst;
    private long _lastTimestamp = Stopwatch.GetTimestamp();

    public bool IsOff => ratePerSecond <= 0;

    /// <summary>True while the client is being slowed; the gateway tells it once each time this starts.</summary>
    public bool IsSlowing { get; private set; }

    /// <summary>Takes one frame's token; returns how long to wait before reading it (zero within the rate).</summary>
    public TimeSpan Take()
    {
        if (IsOff) return TimeSpan.Zero;
        var now = Stopwatch.GetTimestamp();
        _tokens = Math.Min(burst, _tokens + Stopwatch.GetElapsedTime(_lastTimestamp, now).TotalSeconds * ratePerSecond);
        _lastTimestamp = now;
        _tokens -= 1;
        IsSlowing = _tokens < 0;
        return IsSlowing ? TimeSpan.FromSeconds(-_tokens / ratePerSecond) : TimeSpan.Zero;
    }
}
