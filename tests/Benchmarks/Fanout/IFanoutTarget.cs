namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// A server under test with its clients in place: one sender and the receivers, all in one
/// room, the warm-up message already delivered to everyone. Disposal stops every process the
/// target started.
/// </summary>
public interface IFanoutTarget : IAsyncDisposable
{
    IReadOnlyList<DeliveryLog> Receivers { get; }

    /// <summary>Sends message <paramref name="number"/> from the sender; blocks while the server does not read,
    /// and throws once a send timeout passes.</summary>
    void Send(int number);

    /// <summary>Called right before the first send: starts asking each server every 250 ms (status, or PING)
    /// on a connection opened during set-up; see <see cref="PeriodicProbe"/>.</summary>
    void StartProbes();

    /// <summary>Called once the run has ended: the slowest answer of each server while it ran, as text.</summary>
    Task<string> StopProbesAsync();

    /// <summary>Called right after the last send: how long the server(s) take to answer a probe (status, or PING), as text.</summary>
    Task<string> ProbeAsync();

    /// <summary>Called at the end: elections during the run, "n/a" where there is no such thing.</summary>
    Task<string> ElectionsAsync();

    /// <summary>Called at the end: suspicions during the run, "n/a" where there is no such thing.</summary>
    string Suspicions();

    /// <summary>Duplicate and out-of-order frames summed over receivers, by the protocol's own numbering.</summary>
    (int Duplicates, int OutOfOrder) Anomalies();

    /// <summary>Peak resident memory of each server process, MB.</summary>
    string PeakMemory();

    /// <summary>Anything odd: disconnected receivers, server complaints; empty when nothing was.</summary>
    string Notes();
}
