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
    /// client lane is held back, to look again at whether it may be read).</summary>
    public void Wait(TimeSpan timeout) => _doorbell.Wait(timeout);

    /// <summary>A peer frame that belongs in the control lane: heartbeats already travel
    /// unordered by multicast, so taking one out of its TCP link's order changes nothing.</summary>
    public static bool IsControl(PeerMessage message) => message.IsHeartbeatSent;

    /// <summary>A client request answered from the state without changing it, and needed
    /// promptly (a client choosing a node, an operator looking at an overloaded one).</summary>
    public static bool IsControl(ClientRequest request) => request.IsStatus;
}

/// <summary>
/// A FIFO lane bounded in bytes with one reader. Writers wait while it is full (a lane that is
/// empty always takes one item, however large, so no frame waits forever). The reader takes
/// everything written so far in one go, under one lock, and then reads it without any: under a
/// flood the loop reads hundreds of events a turn while socket readers write, and a lock per
/// event had them contending (a fifth of a node's CPU in the 3-node flood's profile). The bytes
/// the reader has taken but not yet read still count, so the bound holds.
/// </summary>
public sealed class BoundedLane<T>
{
    private readonly object _lock = new();
    /// <summary>Written to under the lock.</summary>
    private Queue<(T Item, int Bytes)> _written = new();
    /// <summary>The reader's: taken from <see cref="_written"/> in one go, read without the lock.</summary>
    private Queue<(T Item, int Bytes)> _taken = new();
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
    public async ValueTask WriteAsync(T item, int bytes, CancellationToken cancel)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (HasRoomFor(bytes))
                {
                    Add(item, bytes);
                    break;
                }
                _space ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _space.Task;
                // Looked at again once the waiter is set: the reader frees bytes without the lock,
                // then looks for a waiter, so either this sees the room or the reader sees this.
                if (HasRoomFor(bytes)) continue;
            }
            await wait.WaitAsync(cancel).ConfigureAwait(false);
        }
        _readerDoorbell.Ring();
    }

    private bool HasRoomFor(int bytes)
    {
        var queued = Interlocked.Read(ref _queuedBytes);
        return queued == 0 || queued + bytes <= _capacityBytes;
    }

    /// <summary>Adds an item whatever the lane holds: for the few events that must not wait or be
    /// lost (a connection opened or closed), each small and one per connection.</summary>
    public void Force(T item, int bytes)
    {
        lock (_lock) Add(item, bytes);
        _readerDoorbell.Ring();
    }

    /// <summary>The next item; only the one reader calls this.</summary>
    public bool TryRead(out T item)
    {
        if (_taken.Count == 0 && !TakeWritten())
        {
            item = default!;
            return false;
        }
        var (next, bytes) = _taken.Dequeue();
        item = next;
        Interlocked.Add(ref _queuedBytes, -bytes);
        if (Volatile.Read(ref _space) is not null)
        {
            TaskCompletionSource? space;
            lock (_lock)
            {
                space = _space;
                _space = null;
            }
            space?.TrySetResult();
        }
        return true;
    }

    /// <summary>Everything written so far becomes the reader's, in one go.</summary>
    private bool TakeWritten()
    {
        lock (_lock)
        {
            if (_written.Count == 0) return false;
            (_written, _taken) = (_taken, _written);
            return true;
        }
    }

    private void Add(T item, int bytes)
    {
        _written.Enqueue((item, bytes));
        Interlocked.Add(ref _queuedBytes, bytes);
        Interlocked.Add(ref _totalBytes, bytes);
    }
}

/// <summary>Wakes the single reader when something was written; rings while nobody waits are
/// remembered, so a write between the reader's last look and its wait is never missed.</summary>
public sealed class Doorbell
{
    private readonly SemaphoreSlim _rung = new(0, 1);

    public void Ring()
    {
        if (_rung.CurrentCount == 0)
        {
            try { _rung.Release(); } catch (SemaphoreFullException) { }
        }
    }

    public void Wait(TimeSpan timeout) => _rung.Wait(timeout);
}
