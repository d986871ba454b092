using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using FormalChat.Protocol;
using static FormalChat.Protocol.NodeState;

namespace FormalChat.Node;

/// <summary>
/// Everything the node's loop reads, in three lanes it serves in priority order:
/// <list type="number">
/// <item>control: ticks, heartbeats, status requests and shutdown. Few and small; they decide
/// whether this node is suspected, so no amount of chat may queue in front of them;</item>
/// <item>peers: frames from other nodes over TCP, in each link's order (the specs assume FIFO
/// links, so ring and replication messages are not pulled ahead of the room traffic beside them);</item>
/// <item>clients: chat requests, read only while the node keeps up.</item>
/// </list>
/// The peer and client lanes are bounded in bytes: a socket reader that finds its lane full waits,
/// stops reading, and TCP pushes back on whoever sends.
/// </summary>
public sealed class NodeInbox
{
    /// <summary>Bytes of decoded client frames waiting for the loop: several full turns (a turn
    /// takes at most 512 events). Deeper was only worse: at 4 MB a flood of short `say` frames
    /// queued over 100,000 decoded requests, seconds of backlog that every collection copied into
    /// an older generation (with this lane and pooled client runs, a 1-node flood's GC pauses
    /// fell from 16% of its time to 6%).</summary>
    public const long ClientLaneBytes = 256 * 1024;

    /// <summary>Bytes of peer frames waiting: room for a whole state transfer and then some.</summary>
    public const long PeerLaneBytes = 64 * 1024 * 1024;

    /// <summary>Events the control lane holds at most of those that others send (heartbeats,
    /// status requests): a forged or flooding sender must not fill it, nor keep the loop's turns
    /// busy with it. Ticks and shutdown always go in.</summary>
    public const int MaxControlBacklog = 1024;

    private readonly Channel<Event> _control = Channel.CreateUnbounded<Event>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Doorbell _doorbell = new();
    private int _controlBacklog;

    public NodeInbox()
    {
        Peers = new BoundedLane<Event>(PeerLaneBytes, _doorbell);
        Clients = new BoundedLane<Event>(ClientLaneBytes, _doorbell);
    }

    public BoundedLane<Event> Peers { get; }

    public BoundedLane<Event> Clients { get; }

    /// <summary>The node's own control events (ticks, shutdown): they never wait and are never lost.</summary>
    public void Control(Event controlEvent)
    {
        Interlocked.Increment(ref _controlBacklog);
        _control.Writer.TryWrite(controlEvent);
        _doorbell.Ring();
    }

    /// <summary>A control event from outside (a heartbeat, a status request): false when the
    /// control lane already holds MaxControlBacklog events, and the caller sends it the ordinary way.</summary>
    public bool TryControl(Event controlEvent)
    {
        if (Volatile.Read(ref _controlBacklog) >= MaxControlBacklog) return false;
        Control(controlEvent);
        return true;
    }

    public bool TryReadControl(out Event controlEvent)
    {
        if (!_control.Reader.TryRead(out controlEvent!)) return false;
        Interlocked.Decrement(ref _controlBacklog);
        return true;
    }

    /// <summary>Waits until any lane may have something, or the timeout passes (used while the
    /// client lane is held back, to look again at whether it may be read). Returns how long the
    /// loop took to wake after it was rung (zero when it did not block).</summary>
    public TimeSpan Wait(TimeSpan timeout) => _doorbell.Wait(timeout);

    /// <summary>A peer frame that belongs in the control lane: heartbeats already travel
    /// unordered by multicast, so taking one out of its TCP link's order changes nothing.</summary>
    public static bool IsControl(PeerMessage message) => message.IsHeartbeatSent;

    /// <summary>A client request answered from the state without changing it, and needed
    /// promptly (a client choosing a node, an operator looking at an overloaded one).</summary>
    public static bool IsControl(ClientRequest request) => request.IsStatus;
}

/// <summary>
/// A FIFO lane bounded in bytes with one reader. Writers wait while it is full (a lane that is
/// empty always takes one item, however large, so no frame waits forever). Nothing takes a lock
/// per item: under a flood the loop reads hundreds of events a turn while several socket readers
/// write, and a lock per event had them contending (a fifth of a node's CPU samples in the
/// 3-node flood10's profile).
/// </summary>
public sealed class BoundedLane<T>
{
    private readonly ConcurrentQueue<(T Item, int Bytes)> _items = new();
    private readonly long _capacityBytes;
    private readonly Doorbell _readerDoorbell;
    private TaskCompletionSource? _space;
    private long _queuedBytes;
    private long _totalBytes;

    public BoundedLane(long capacityBytes, Doorbell readerDoorbell)
    {
        _capacityBytes = capacityBytes;
        _readerDoorbell = readerDoorbell;
    }

    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>Every byte that ever went through the lane (for /metrics).</summary>
    public long TotalBytes => Interlocked.Read(ref _totalBytes);

    /// <summary>Adds an item, waiting while the lane is full.</summary>
    public ValueTask WriteAsync(T item, int bytes, CancellationToken cancel)
    {
        if (!TryReserve(bytes)) return WriteLaterAsync(item, bytes, cancel);
        Enqueue(item, bytes);
        return ValueTask.CompletedTask;
    }

    private async ValueTask WriteLaterAsync(T item, int bytes, CancellationToken cancel)
    {
        await ReserveAsync(bytes, cancel).ConfigureAwait(false);
        Enqueue(item, bytes);
    }

    /// <summary>Adds the items in order, together, waiting while the lane has no room for all of
    /// them (an empty lane takes them however many bytes they are), and wakes the reader once:
    /// what one socket read brought becomes one write here, not one per frame.</summary>
    public ValueTask WriteAllAsync(List<(T Item, int Bytes)> items, long bytes, CancellationToken cancel)
    {
        if (!TryReserve(bytes)) return WriteAllLaterAsync(items, bytes, cancel);
        EnqueueAll(items, bytes);
        return ValueTask.CompletedTask;
    }

    private async ValueTask WriteAllLaterAsync(List<(T Item, int Bytes)> items, long bytes, CancellationToken cancel)
    {
        await ReserveAsync(bytes, cancel).ConfigureAwait(false);
        EnqueueAll(items, bytes);
    }

    private void EnqueueAll(List<(T Item, int Bytes)> items, long bytes)
    {
        foreach (var item in items) _items.Enqueue(item);
        Interlocked.Add(ref _totalBytes, bytes);
        _readerDoorbell.Ring();
    }

    private async ValueTask ReserveAsync(long bytes, CancellationToken cancel)
    {
        while (!TryReserve(bytes))
        {
            var space = Volatile.Read(ref _space) ?? NewWaiter();
            // Looked at again once the waiter is set: the reader frees bytes, then looks for a
            // waiter, so either this sees the room or the reader sees this waiter.
            if (HasRoomFor(bytes)) continue;
            await space.Task.WaitAsync(cancel).ConfigureAwait(false);
        }
    }

    /// <summary>The waiter the reader wakes next: this one, or one another writer set first.</summary>
    private TaskCompletionSource NewWaiter()
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return Interlocked.CompareExchange(ref _space, waiter, null) ?? waiter;
    }

    /// <summary>Counts the bytes in if they fit (or the lane is empty): writers race for the room.</summary>
    private bool TryReserve(long bytes)
    {
        while (true)
        {
            var queued = Interlocked.Read(ref _queuedBytes);
            if (queued != 0 && queued + bytes > _capacityBytes) return false;
            if (Interlocked.CompareExchange(ref _queuedBytes, queued + bytes, queued) == queued) return true;
        }
    }

    private bool HasRoomFor(long bytes)
    {
        var queued = Interlocked.Read(ref _queuedBytes);
        return queued == 0 || queued + bytes <= _capacityBytes;
    }

    /// <summary>Adds an item whatever the lane holds: for the few events that must not wait or be
    /// lost (a connection opened or closed), each small and one per connection.</summary>
    public void Force(T item, int bytes)
    {
        Interlocked.Add(ref _queuedBytes, bytes);
        Enqueue(item, bytes);
    }

    private void Enqueue(T item, int bytes)
    {
        _items.Enqueue((item, bytes));
        Interlocked.Add(ref _totalBytes, bytes);
        _readerDoorbell.Ring();
    }

    /// <summary>The next item; only the one reader calls this.</summary>
    public bool TryRead(out T item)
    {
        if (!_items.TryDequeue(out var next))
        {
            item = default!;
            return false;
        }
        item = next.Item;
        Interlocked.Add(ref _queuedBytes, -next.Bytes);
        if (Volatile.Read(ref _space) is not null) Interlocked.Exchange(ref _space, null)?.TrySetResult();
        return true;
    }
}

/// <summary>
/// The events one connection's reader decoded from one socket read, gathered so they go into
/// their lane together (<see cref="BoundedLane{T}.WriteAllAsync"/>): the loop is woken once per
/// read and takes its frames in one turn, instead of a wake-up, and a turn's fixed costs, per
/// frame. In the connection's order; only that connection's reader uses it.
/// </summary>
public sealed class LaneBatch<T>(BoundedLane<T> lane, CancellationToken cancel)
{
    /// <summary>Bytes gathered beyond which they go on before the read's end: a batch stays small
    /// beside its lane (the client lane holds 256 KB), so the lane takes it while it holds others.</summary>
    public const long MaxBytes = 32 * 1024;

    /// <summary>Items a batch's list keeps room for between reads: one connection's tiny frames
    /// must not keep a large list alive for it.</summary>
    private const int KeptCapacity = 256;

    private List<(T Item, int Bytes)> _items = new();
    private long _bytes;

    public ValueTask AddAsync(T item, int bytes)
    {
        _items.Add((item, bytes));
        _bytes += bytes;
        return _bytes >= MaxBytes ? HandOnAsync() : ValueTask.CompletedTask;
    }

    /// <summary>Puts what was gathered into the lane, waiting while it has no room.</summary>
    public ValueTask HandOnAsync() => _items.Count == 0 ? ValueTask.CompletedTask : WriteAsync();

    private async ValueTask WriteAsync()
    {
        await lane.WriteAllAsync(_items, _bytes, cancel).ConfigureAwait(false);
        if (_items.Capacity > KeptCapacity) _items = new();
        else _items.Clear();
        _bytes = 0;
    }
}

/// <summary>Wakes the single reader when something was written; rings while nobody waits are
/// remembered, so a write between the reader's last look and its wait is never missed. A ring
/// while one is pending costs one read: under a flood every write rings, and the semaphore this
/// replaced took a lock per ring that writers and the loop contended for.</summary>
public sealed class Doorbell
{
    private readonly ManualResetEventSlim _event = new(initialState: false, spinCount: 0);
    /// <summary>1 once rung, until the reader takes the ring.</summary>
    private int _rung;
    /// <summary>When the pending ring came (Stopwatch timestamp): how late the reader woke is how
    /// long the machine kept the loop from running (LoopWatch.Woke).</summary>
    private long _rungAt;

    public void Ring()
    {
        if (Volatile.Read(ref _rung) == 1) return;
        // Before the exchange, so the reader that takes the ring sees its time (racing rings
        // each write theirs; the difference is the race, microseconds).
        Volatile.Write(ref _rungAt, Stopwatch.GetTimestamp());
        if (Interlocked.Exchange(ref _rung, 1) == 0) _event.Set();
    }

    /// <summary>Returns once rung (at once if rung since the last wait) or when the timeout
    /// passes; the caller then looks at everything it reads. Returns how long after the ring the
    /// reader woke, zero when it did not block.</summary>
    public TimeSpan Wait(TimeSpan timeout)
    {
        var wokeLate = TimeSpan.Zero;
        if (Interlocked.Exchange(ref _rung, 0) == 0)
        {
            if (_event.Wait(timeout)) wokeLate = Stopwatch.GetElapsedTime(Volatile.Read(ref _rungAt));
            Interlocked.Exchange(ref _rung, 0);
        }
        // A ring between the exchange and the reset is not lost: it set _rung again, and the
        // next wait returns at once.
        _event.Reset();
        return wokeLate;
    }
}
