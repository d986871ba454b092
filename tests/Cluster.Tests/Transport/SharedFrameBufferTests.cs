using System.Text;
using System.Threading.Channels;
using FormalChat.Transport;

namespace FormalChat.Cluster.Tests.Transport;

/// <summary>
/// A pooled run of frames queued on many connections (Transport.CSharp/SharedFrameBuffer.cs):
/// every connection holds it until it has written it or dropped it, and only the last holder's
/// release returns the array, so no connection ever writes bytes that went back to the pool.
/// </summary>
public sealed class SharedFrameBufferTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static SharedFrameBuffer Join(params string[] lines)
    {
        var frames = lines.Select(line => Frames.Of(line)).ToList();
        return SharedFrameBuffer.Join(frames, frames.Sum(frame => frame.Length));
    }

    private static Channel<string> Collect(IFrameConnection connection)
    {
        var frames = Channel.CreateUnbounded<string>();
        _ = connection.ReadFramesAsync(1024, frame => frames.Writer.TryWrite(Encoding.UTF8.GetString(frame.Span)));
        return frames;
    }

    private static async Task<string> NextAsync(Channel<string> frames)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        return await frames.Reader.ReadAsync(deadline.Token);
    }

    [Fact]
    public async Task ARunQueuedOnTwoConnectionsIsReturnedOnlyOnceBothHaveWrittenIt()
    {
        var (left1, right1) = InMemoryConnection.CreatePair(maxQueuedBytes: 64 * 1024);
        var (left2, right2) = InMemoryConnection.CreatePair(maxQueuedBytes: 64 * 1024);
        await using var _ = left1;
        await using var __ = right1;
        await using var ___ = left2;
        await using var ____ = right2;
        var run = Join("one", "two");

        Assert.True(left1.TrySend(run.Memory));
        Assert.True(left2.TrySend(run.Memory));
        run.Release();

        foreach (var received in new[] { Collect(right1), Collect(right2) })
        {
            Assert.Equal("one", await NextAsync(received));
            Assert.Equal("two", await NextAsync(received));
        }
        await Eventually.TrueAsync(() => Task.FromResult(run.References == 0), Deadline, "both write loops let go of the run");
    }

    [Fact]
    public async Task ARunStillQueuedWhenTheConnectionClosesIsLetGoByTheClose()
    {
        // Nobody reads the right end, and the pipe holds 1 KB: the first frame fills it, and the
        // write loop waits in its flush while the run waits in the queue.
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 64 * 1024, transportBufferBytes: 1024);
        await using var _ = left;
        await using var __ = right;
        Assert.True(left.TrySend(Frames.Of(new string('x', 2047))));
        await Eventually.TrueAsync(() => Task.FromResult(left.QueuedBytes == 0), Deadline, "the write loop took the first frame");
        var run = Join("one", "two");

        Assert.True(left.TrySend(run.Memory));
        Assert.Equal(2, run.References);
        await left.CloseAsync("test over");
        Assert.Equal(1, run.References);
        run.Release();
        Assert.Equal(0, run.References);
    }

    [Fact]
    public void ReleasingMoreOftenThanRetainingIsRefused()
    {
        var run = Join("one", "two");
        run.Release();
        Assert.Throws<InvalidOperationException>(() => run.Release());
        Assert.Throws<InvalidOperationException>(() => run.Retain());
    }
}
