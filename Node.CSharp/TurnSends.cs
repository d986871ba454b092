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
/// message. A batch of several frames is joined into a pooled <see cref="SharedFrameBuffer"/>
/// that the link holds until it has written it or dropped it (PeerNetwork), so a flood's batches
/// are no garbage for the collector.
/// </summary>
public sealed class PeerFrameBatches(Action<Endpoint, ReadOnlyMemory<byte>> send)
{
    /// <summary>A peer's batch is queued once it holds this much.</summary>
    public const int MaxBatchBytes = 64 * 1024;

    /// <summary>One per peer this node has sent to, kept from turn to turn: a node has a few
    /// peers, so they are looked up by a scan (by reference first: the core hands out the same
    /// endpoint objects) rather than by hashing a record per frame.</summary>
    private readonly List<Batch> _batches = new();

    public void Add(Endpoint peer, ReadOnlyMemory<byte> frame)
    {
        var batch = BatchOf(peer);
        batch.Frames.Add(frame);
        batch.Bytes += frame.Length;
        if (batch.Bytes >= MaxBatchBytes) Send(batch);
    }

    /// <summary>Queues every peer's batch so far on its link, in the order the peers were first sent to.</summary>
    public void Flush()
    {
        foreach (var batch in _batches)
        {
            if (batch.Frames.Count > 0) Send(batch);
        }
    }

    private Batch BatchOf(Endpoint peer)
    {
        foreach (var batch in _batches)
        {
            if (ReferenceEquals(batch.Peer, peer)) return batch;
        }
        foreach (var batch in _batches)
        {
            if (batch.Peer.Equals(peer)) return batch;
        }
        var added = new Batch(peer);
        _batches.Add(added);
        return added;
    }

    private void Send(Batch batch)
    {
        if (batch.Frames.Count == 1) send(batch.Peer, batch.Frames[0]);
        else
        {
            var joined = SharedFrameBuffer.Join(batch.Frames, batch.Bytes);
            try { send(batch.Peer, joined.Memory); }
            finally { joined.Release(); }
        }
        batch.Frames.Clear();
        batch.Bytes = 0;
    }

    private sealed class Batch(Endpoint peer)
    {
        public Endpoint Peer { get; } = peer;
        public List<ReadOnlyMemory<byte>> Frames { get; } = new();
        public int Bytes { get; set; }
    }
}
