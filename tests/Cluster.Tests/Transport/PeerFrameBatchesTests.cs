using System.Runtime.InteropServices;
using System.Text;
using FormalChat.Node;
using FormalChat.Protocol;
using FormalChat.Transport;

namespace FormalChat.Cluster.Tests.Transport;

/// <summary>
/// A turn's frames to peers (Node.CSharp/TurnSends.cs): one buffer per peer, frames in their
/// order, and a joined buffer that goes back to the pool once the link that took it lets go.
/// </summary>
public sealed class PeerFrameBatchesTests
{
    private static readonly Endpoint PeerA = new("127.0.0.1", 7001);
    private static readonly Endpoint PeerB = new("127.0.0.1", 7002);

    [Fact]
    public void EachPeerGetsItsTurnsFramesAsOneBufferInOrderAndALoneFrameAsItIs()
    {
        var sent = new List<(Endpoint Peer, string Bytes)>();
        var lone = Frames.Of("lone");
        ReadOnlyMemory<byte> loneSent = default;
        var batches = new PeerFrameBatches((peer, frame) =>
        {
            sent.Add((peer, Encoding.UTF8.GetString(frame.Span)));
            if (peer.Equals(PeerB)) loneSent = frame;
        });

        batches.Add(PeerA, Frames.Of("one"));
        // An equal endpoint that is another object is the same peer.
        batches.Add(new Endpoint("127.0.0.1", 7001), Frames.Of("two"));
        batches.Add(PeerB, lone);
        batches.Add(PeerA, Frames.Of("three"));
        batches.Flush();

        Assert.Equal([(PeerA, "one\ntwo\nthree\n"), (PeerB, "lone\n")], sent);
        Assert.True(lone.Equals(loneSent), "a lone frame is sent as it is, not copied");

        sent.Clear();
        batches.Flush();
        Assert.Empty(sent);
    }

    [Fact]
    public void AJoinedBatchIsHeldOnlyByTheLinkThatTookIt()
    {
        SharedFrameBuffer? taken = null;
        var batches = new PeerFrameBatches((_, frame) =>
        {
            Assert.True(MemoryMarshal.TryGetMemoryManager(frame, out taken), "several frames go as a pooled buffer");
            SharedFrameBuffer.Retain(frame); // as PeerNetwork's link does
        });

        batches.Add(PeerA, Frames.Of("one"));
        batches.Add(PeerA, Frames.Of("two"));
        batches.Flush();

        Assert.NotNull(taken);
        Assert.Equal(1, taken.References);
        taken.Release();
        Assert.Equal(0, taken.References);
    }
}
