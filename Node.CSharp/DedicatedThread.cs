namespace FormalChat.Node;

/// <summary>
/// The node's control path runs on threads of its own, not on the thread pool: under a flood the
/// pool's queue holds thousands of socket completions, and a tick, a heartbeat received or the
/// loop itself waiting behind them for a few hundred milliseconds is enough for peers to suspect
/// a perfectly live node.
/// </summary>
public static class DedicatedThread
{
    /// <summary>Runs <paramref name="work"/> on a new background thread; the task ends with it.</summary>
    public static Task RunAsync(string name, Action work)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                work();
                done.SetResult();
            }
            catch (Exception error)
            {
                done.SetException(error);
            }
        })
        { IsBackground = true, Name = name };
        thread.Start();
        return done.Task;
    }
}

/// <summary>Calls <c>ring</c> every interval from a thread of its own, on a schedule that does not
/// drift; a ring that comes late (the machine was busy) is not made up with a burst.</summary>
public sealed class Ticker : IDisposable
{
    private readonly CancellationTokenSource _stopping = new();

    public Ticker(TimeSpan interval, Action ring)
    {
        _ = DedicatedThread.RunAsync("ticker", () =>
        {
            var intervalMs = (long)interval.TotalMilliseconds;
            var next = Environment.TickCount64 + intervalMs;
            while (!_stopping.Token.WaitHandle.WaitOne((int)Math.Max(0, next - Environment.TickCount64)))
            {
                ring();
                next += intervalMs;
                if (next < Environment.TickCount64) next = Environment.TickCount64 + intervalMs;
            }
        });
    }

    public void Dispose()
    {
        _stopping.Cancel();
    }
}
