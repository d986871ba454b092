using FormalChat.Protocol;
using FormalChat.Transport;
using Microsoft.FSharp.Collections;

namespace FormalChat.Node;

/// <summary>
/// A turn's frames to clients, joined where that changes nothing a client sees: consecutive
/// sends to the same clients (a flood's messages to a room's members) become one buffer, queued
/// once on each connection, instead of one queue operation per frame per member. Each client
/// still gets its frames in the order the effects gave them; a run ends at a send to other
/// clients, at a close, and at the end of the turn. A run of several frames is joined into a
/// pooled <see cref="SharedFrameBuffer"/>, which goes back to the pool once every connection has
/// written it (or dropped it), so a flood's runs are no garbage for the collector.
/// </summary>
public sealed class ClientFrameRuns(Action<FSharpSet<long>, ReadOnlyMemory<byte>> send)
{
    /// <summary>A run is queued once it holds this much: far under the smallest
    /// --max-client-queue-bytes (64 KiB), so joining frames never makes a client look slow.</summary>
    public const int MaxRunBytes = 16 * 1024;

    private readonly List<ReadOnlyMemory<byte>> _frames = new();
    private FSharpSet<long>? _clients;
    private int _bytes;

    public void Add(FSharpSet<long> clients, ReadOnlyMemory<byte> frame)
    {
        if (_clients is not null && !SameClients(_clients, clients)) Flush();
        _clients = clients;
        _frames.Add(frame);
        _bytes += frame.Length;
        if (_bytes >= MaxRunBytes) Flush();
    }

    /// <summary>Queues the run so far on its clients' connections.</summary>
    public void Flush()
    {
        if (_clients is null) return;
        if (_frames.Count == 1) send(_clients, _frames[0]);
        else
        {
            var joined = SharedFrameBuffer.Join(_frames, _bytes);
            try { send(_clients, joined.Memory); }
            finally { joined.Release(); }
        }
        _frames.Clear();
        _clients = null;
        _bytes = 0;
    }

    private static bool SameClients(FSharpSet<long> a, FSharpSet<long> b) =>
        ReferenceEquals(a, b) || (a.Count == b.Count && a.Equals(b));
}

/// <summary>
/// A turn's frames to peers, one buffer per peer link: a link is FIFO and the frames keep their
/// order on it; links have no order between them, so gathering per link changes nothing the
/// protocol sees. A peer gets one queue operation per turn (or per MaxBatchBytes), not one per
/// message.
/// </summary>
public sealed class PeerFrameBatches(Action<Endpoint, ReadOnlyMemory<byte>> send)
{
    /// <summary>A peer's batch is queued once it holds this much.</summary>
    public const int MaxBatchBytes = 64 * 1024;

    private readonly Dictionary<Endpoint, (List<ReadOnlyMemory<byte>> Frames, int Bytes)> _batches = new();
    private readonly List<Endpoint> _order = new();

    public void Add(Endpoint peer, ReadOnlyMemory<byte> frame)
    {
        if (!_batches.TryGetValue(peer, out var batch))
        {
            batch = (new List<ReadOnlyMemory<byte>>(), 0);
            _order.Add(peer);
        }
        batch.Frames.Add(frame);
        batch.Bytes += frame.Length;
        _batches[peer] = batch;
        if (batch.Bytes >= MaxBatchBytes) Send(peer, batch);
    }

    /// <summary>Queues every peer's batch so far on its link.</summary>
    public void Flush()
    {
        foreach (var peer in _order)
        {
            if (_batches.TryGetValue(peer, out var batch) && batch.Frames.Count > 0) Send(peer, batch);
        }
        _order.Clear();
        _batches.Clear();
    }

    private void Send(Endpoint peer, (List<ReadOnlyMemory<byte>> Frames, int Bytes) batch)
    {
        send(peer, Joined(batch.Frames, batch.Bytes));
        batch.Frames.Clear();
        _batches[peer] = (batch.Frames, 0);
    }

    /// <summary>The frames as one buffer of their own (the frame itself when there is one): a peer
    /// link may hold it while it connects, so it is not pooled as client runs are.</summary>
    private static ReadOnlyMemory<byte> Joined(List<ReadOnlyMemory<byte>> frames, int bytes)
    {
        if (frames.Count == 1) return frames[0];
        var joined = new byte[bytes];
        var at = 0;
        foreach (var frame in frames)
        {
            frame.Span.CopyTo(joined.AsSpan(at));
            at += frame.Length;
        }
        return joined;
    }
}
