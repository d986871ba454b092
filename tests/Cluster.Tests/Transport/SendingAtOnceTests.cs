using System.Net;
using System.Net.Sockets;
using System.Text;
using FormalChat.Transport;

namespace FormalChat.Cluster.Tests.Transport;

/// <summary>
/// A connection over a socket that sends at once (FramedConnection.Open with sendsNow, as the
/// node's client port opens them): frames go to the socket on the sender's thread while nothing
/// is queued, and what the socket does not take waits for the write loop. The guarantees of the
/// queued path still hold: order, the byte bound, the close after sending.
/// </summary>
public sealed class SendingAtOnceTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    /// <summary>A sending end that sends at once, and the socket of the other end.</summary>
    private static async Task<(FramedConnection Sender, Socket Other)> PairAsync(long maxQueuedBytes, ByteGauge? gauge = null)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var accepted = await listener.AcceptSocketAsync();
        return (FramedConnection.Open(accepted, maxQueuedBytes, gauge, sendsNow: true), client);
    }

    [Fact]
    public async Task FramesKeepTheirOrderWhenTheSocketTakesOnlyPartOfThem()
    {
        var (sender, other) = await PairAsync(maxQueuedBytes: 64L * 1024 * 1024);
        await using var _ = sender;
        using var __ = other;
        await using var receiver = FramedConnection.Open(other, maxQueuedBytes: 1024);
        var frames = Enumerable.Range(0, 16_000).Select(n => Frames.Of($"{n:D6} {new string('x', 1000)}")).ToList();

        // Nobody reads yet: the socket's buffers fill, a frame goes in part, the rest queues.
        foreach (var frame in frames) Assert.True(sender.TrySend(frame));
        Assert.True(sender.QueuedBytes > 0, "16 MB do not fit in the socket's buffers");

        var next = 0;
        var reading = receiver.ReadFramesAsync(2048, frame => Encoding.UTF8.GetString(frame.Span) == Encoding.UTF8.GetString(frames[next++].Span[..^1]));
        await Eventually.TrueAsync(() => Task.FromResult(Volatile.Read(ref next) == frames.Count || reading.IsCompleted), Deadline, "every frame arrived");
        Assert.False(reading.IsCompleted, "a frame arrived out of order or cut");
        Assert.Equal(0, sender.QueuedBytes);

        // Once the queue is empty, frames go at once again, still behind the ones before.
        Assert.True(sender.TrySend(Frames.Of("last")));
        frames.Add(Frames.Of("last"));
        await Eventually.TrueAsync(() => Task.FromResult(Volatile.Read(ref next) == frames.Count), Deadline, "the last frame arrived");
    }

    [Fact]
    public async Task AReaderTooSlowForTheByteBoundIsDisconnectedAndItsBytesUncounted()
    {
        var gauge = new ByteGauge();
        var (sender, other) = await PairAsync(maxQueuedBytes: 64 * 1024, gauge);
        await using var _ = sender;
        using var __ = other;
        var frame = Frames.Of(new string('x', 1023));

        var accepted = 0;
        while (accepted < 1_000_000 && sender.TrySend(frame)) accepted++;

        Assert.True(accepted < 1_000_000, "the socket's buffers and the queue have a bound");
        Assert.StartsWith(Frames.TooSlowPrefix, await sender.Closed.WaitAsync(Deadline));
        Assert.False(sender.TrySend(frame), "a closed connection takes nothing more");
        await Eventually.TrueAsync(() => Task.FromResult(gauge.Bytes == 0 && sender.QueuedBytes == 0), Deadline, "dropped frames leave the gauge");
    }

    [Fact]
    public async Task ClosingAfterSendingDeliversEveryFrameThenTheEnd()
    {
        var (sender, other) = await PairAsync(maxQueuedBytes: 64L * 1024 * 1024);
        await using var _ = sender;
        await using var receiver = FramedConnection.Open(other, maxQueuedBytes: 1024);
        var received = 0;
        var reading = receiver.ReadFramesAsync(2048, frame => frame.Span.SequenceEqual(Encoding.UTF8.GetBytes($"last words {received++}")));

        for (var n = 0; n < 2_000; n++) Assert.True(sender.TrySend(Frames.Of($"last words {n}")));
        await sender.CloseAfterSendingAsync("said goodbye").WaitAsync(Deadline);

        Assert.Equal(Frames.ClosedByOtherSide, await reading.WaitAsync(Deadline));
        Assert.Equal(2_000, received);
        Assert.Equal("said goodbye", await sender.Closed.WaitAsync(Deadline));
        Assert.False(sender.TrySend(Frames.Of("too late")), "nothing is sent after the close");
    }
}
