using System.Diagnostics;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// Every server process a run starts, so a benchmark stopped with Ctrl+C or an unhandled error
/// still kills them: nodes and ngircd must never outlive the benchmark. Targets also stop
/// their own processes when disposed; this is the safety net.
/// </summary>
public static class ChildProcesses
{
    private static readonly HashSet<int> Pids = new();
    private static int _hooked;

    public static void Track(int pid)
    {
        if (Interlocked.Exchange(ref _hooked, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
            Console.CancelKeyPress += (_, _) => KillAll();
        }
        lock (Pids) Pids.Add(pid);
    }

    public static void Untrack(int pid)
    {
        lock (Pids) Pids.Remove(pid);
    }

    private static void KillAll()
    {
        int[] pids;
        lock (Pids) pids = Pids.ToArray();
        foreach (var pid in pids)
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill(entireProcessTree: true);
            }
            catch (ArgumentException) { }
            catch (InvalidOperationException) { }
        }
    }
}
