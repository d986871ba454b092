using Microsoft.Extensions.Logging;

namespace FormalChat.Node.Security;

/// <summary>
/// A warning logged at most once per interval: a flood of forged datagrams or handshakes must be
/// visible in the log without becoming a flood of log lines. The lines it holds back are counted
/// and the next line says how many.
/// </summary>
public sealed class ThrottledWarning(ILogger log, TimeSpan interval)
{
    private readonly object _gate = new();
    private DateTime _lastLoggedUtc = DateTime.MinValue;
    private long _heldBack;

    public void Log(string message)
    {
        long heldBack;
        lock (_gate)
        {
            var now = DateTime.UtcNow;
            if (now - _lastLoggedUtc < interval)
            {
                _heldBack++;
                return;
            }
            _lastLoggedUtc = now;
            heldBack = _heldBack;
            _heldBack = 0;
        }
        if (heldBack == 0) log.LogWarning("{Message}", message);
        else log.LogWarning("{Message} (and {HeldBack} more like it since the last such line)", message, heldBack);
    }
}
