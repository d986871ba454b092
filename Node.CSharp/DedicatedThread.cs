using System.Runtime.InteropServices;

namespace FormalChat.Node;

/// <summary>
/// The node's control path runs on threads of its own, not on the thread pool: under a flood the
/// pool's queue holds thousands of socket completions, and a tick, a heartbeat received or the
/// loop itself waiting behind them for a few hundred milliseconds is enough for peers to suspect
/// a perfectly live node. Where the system allows it (Linux, with CAP_SYS_NICE), these threads
/// also run at a higher priority than the node's socket work: when the cores are saturated it is
/// the chat traffic that waits, not the heartbeats.
/// </summary>
public static class DedicatedThread
{
    /// <summary>The nice value of the control threads (the default is 0; lower runs first).</summary>
    private const int ControlNice = -10;

    /// <summary>Runs <paramref name="work"/> on a new background thread; the task ends with it.</summary>
    public static Task RunAsync(string name, Action work)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                RaisePriority();
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

    /// <summary>Whether the control threads got their higher priority (false where not allowed).</summary>
    public static bool PriorityRaised { get; private set; }

    private static void RaisePriority()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            // On Linux a nice value belongs to a thread: PRIO_PROCESS with a thread id sets just this one.
            PriorityRaised = setpriority(PrioProcess, gettid(), ControlNice) == 0;
        }
        catch (Exception error) when (error is DllNotFoundException or EntryPointNotFoundException) { }
    }

    private const int PrioProcess = 0;

    [DllImport("libc", SetLastError = true)]
    private static extern int setpriority(int which, int who, int priority);

    [DllImport("libc")]
    private static extern int gettid();
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
