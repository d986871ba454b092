using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using FormalChat.Transport;

namespace FormalChat.Cluster.Tests.Transport;

/// <summary>
/// The framed connection (Transport.CSharp) on its own: frame limit, one close reason for every
/// way it ends, the send queue bounded in bytes, the in-memory pair, and the same code over a
/// loopback socket and over a stream. Waits are deadlines on conditions, never fixed sleeps.
/// </summary>
public sealed class FramedConnectionTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static string Text(ReadOnlyMemory<byte> frame) => Encoding.UTF8.GetString(frame.Span);

    /// <summary>Reads every frame of <paramref name="connection"/> into a channel, as text.</summary>
    private static (Channel<string> Frames, Task<string> Reading) Collect(IFrameConnection connection, int maxFrameBytes = 1024)
    {
        var frames = Channel.CreateUnbounded<string>();
        var reading = connection.ReadFramesAsync(maxFrameBytes, frame => frames.Writer.TryWrite(Text(frame)));
        return (frames, reading);
    }

    private static async Task<string> NextAsync(Channel<string> frames)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        return await frames.Reader.ReadAsync(deadline.Token);
    }

    [Fact]
    public async Task InMemoryPairCarriesFramesBothWaysInOrderWithoutTheirLineEndings()
    {
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 1024 * 1024);
        await using var _ = left;
        await using var __ = right;
        var (toRight, _) = Collect(right);
        var (toLeft, _) = Collect(left);

        for (var n = 0; n < 1000; n++) Assert.True(left.TrySend(Frames.Of($"frame {n}")));
        Assert.True(right.TrySend(Encoding.UTF8.GetBytes("crlf\r\n")));

        for (var n = 0; n < 1000; n++) Assert.Equal($"frame {n}", await NextAsync(toRight));
        Assert.Equal("crlf", await NextAsync(toLeft));
    }

    [Fact]
    public async Task AFrameSplitAcrossWritesIsHandedOverWhole()
    {
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 1024);
        await using var _ = left;
        await using var __ = right;
        var (toRight, _) = Collect(right);

        left.TrySend(Encoding.UTF8.GetBytes("{\"type\":"));
        left.TrySend(Encoding.UTF8.GetBytes("\"hello\"}\nsecond"));
        left.TrySend(Encoding.UTF8.GetBytes("\n"));

        Assert.Equal("{\"type\":\"hello\"}", await NextAsync(toRight));
        Assert.Equal("second", await NextAsync(toRight));
    }

    [Fact]
    public async Task AFrameOverTheLimitStopsTheReadingWithItsReason()
    {
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 64 * 1024);
        await using var _ = left;
        await using var __ = right;
        var oversized = new TaskCompletionSource<int>();
        var handed = new List<string>();
        var reading = right.ReadFramesAsync(100, frame => { handed.Add(Text(frame)); return true; }, length => oversized.TrySetResult(length));

        left.TrySend(Frames.Of("small"));
        left.TrySend(Frames.Of(new string('x', 101)));

        Assert.Equal(Frames.Oversized(100), await reading.WaitAsync(Deadline));
        Assert.Equal(["small"], handed);
        Assert.True(await oversized.Task.WaitAsync(Deadline) > 100);
    }

    [Fact]
    public async Task TheEndOfAReadComesAfterItsFramesAlsoWhenAFrameStopsTheReading()
    {
        // Each case is one write, so one read: the in-memory pipe hands over what one flush put in.
        static async Task<(List<string> Heard, string Reason)> ReadOneWrite(string bytes)
        {
            var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 64 * 1024);
            await using var _ = left;
            await using var __ = right;
            var heard = new List<string>();
            var firstReadEnded = new TaskCompletionSource<List<string>>(TaskCreationOptions.RunContinuationsAsynchronously);
            var reading = right.ReadFramesAsync(100,
                frame => { heard.Add(Text(frame)); return ValueTask.FromResult(Text(frame) != "bad"); },
                length => heard.Add("oversized"),
                () => { heard.Add("end"); firstReadEnded.TrySetResult([.. heard]); return ValueTask.CompletedTask; });
            left.TrySend(Encoding.UTF8.GetBytes(bytes));
            var atFirstEnd = await firstReadEnded.Task.WaitAsync(Deadline);
            await left.CloseAsync("done");
            return (atFirstEnd, await reading.WaitAsync(Deadline));
        }

        var whole = await ReadOneWrite("a\nb\nc\n");
        Assert.Equal(["a", "b", "c", "end"], whole.Heard);
        var refused = await ReadOneWrite("good\nbad\nnever\n");
        Assert.Equal(["good", "bad", "end"], refused.Heard);
        Assert.Equal("frame refused", refused.Reason);
        var oversized = await ReadOneWrite("small\n" + new string('x', 101) + "\nnever\n");
        Assert.Equal(["small", "end"], oversized.Heard);
        Assert.Equal(Frames.Oversized(100), oversized.Reason);
    }

    [Fact]
    public async Task AnUnendedFrameOverTheLimitIsRefusedBeforeItsNewlineArrives()
    {
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 64 * 1024);
        await using var _ = left;
        await using var __ = right;
        var reading = right.ReadFramesAsync(100, _ => true);

        left.TrySend(Encoding.UTF8.GetBytes(new string('x', 5000)));

        Assert.Equal(Frames.Oversized(100), await reading.WaitAsync(Deadline));
    }

    [Fact]
    public async Task TheNextFrameIsReadOnlyOnceTheLastIsHandedOver()
    {
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 1024);
        await using var _ = left;
        await using var __ = right;
        var firstHandedOver = new TaskCompletionSource();
        var release = new TaskCompletionSource<bool>();
        var handed = new List<string>();
        var reading = right.ReadFramesAsync(100, async frame =>
        {
            lock (handed) handed.Add(Text(frame));
            firstHandedOver.TrySetResult();
            return await release.Task;
        });

        left.TrySend(Frames.Of("one"));
        left.TrySend(Frames.Of("two"));
        await firstHandedOver.Task.WaitAsync(Deadline);
        lock (handed) Assert.Equal(["one"], handed);

        // Refusing the frame stops the reading: "two" is never handed over.
        release.SetResult(false);
        Assert.Equal("frame refused", await reading.WaitAsync(Deadline));
        lock (handed) Assert.Equal(["one"], handed);
    }

    [Fact]
    public async Task AReaderTooSlowForTheByteBoundIsDisconnectedAndItsBytesUncounted()
    {
        var gauge = new ByteGauge();
        // Nobody reads the right end, and each direction holds at most 1 KB unread.
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 16 * 1024, transportBufferBytes: 1024, leftGauge: gauge);
        await using var _ = left;
        await using var __ = right;
        var frame = Frames.Of(new string('x', 1023));

        var accepted = 0;
        while (accepted < 10_000 && left.TrySend(frame)) accepted++;

        Assert.True(accepted < 10_000, "the queue has a bound");
        Assert.StartsWith(Frames.TooSlowPrefix, left.CloseReason);
        Assert.StartsWith(Frames.TooSlowPrefix, await left.Closed.WaitAsync(Deadline));
        Assert.False(left.TrySend(frame), "a closed connection takes nothing more");
        await Eventually.TrueAsync(() => Task.FromResult(gauge.Bytes == 0 && left.QueuedBytes == 0), Deadline, "dropped frames leave the gauge");
    }

    [Fact]
    public async Task ASenderThatWaitsIsHeldAtTheBoundInsteadOfDisconnected()
    {
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 8 * 1024, transportBufferBytes: 1024);
        await using var _ = left;
        await using var __ = right;
        var frame = Frames.Of(new string('x', 1023));

        // Nobody reads yet: the sender fills the transport and the queue, then waits.
        var sending = Task.Run(async () =>
        {
            for (var n = 0; n < 200; n++) Assert.True(await left.SendAsync(frame));
        });
        await Eventually.TrueAsync(() => Task.FromResult(left.QueuedBytes + frame.Length > 8 * 1024), Deadline, "the queue reached its bound");
        Assert.False(sending.IsCompleted);
        Assert.Null(left.CloseReason);

        var received = 0;
        var reading = right.ReadFramesAsync(2048, _ => Interlocked.Increment(ref received) > 0);
        await sending.WaitAsync(Deadline);
        await Eventually.TrueAsync(() => Task.FromResult(Volatile.Read(ref received) == 200), Deadline, "every frame arrived");
        Assert.Null(left.CloseReason);
    }

    [Fact]
    public async Task EveryEndHasOneReasonAndTheFirstWins()
    {
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 1024);
        var (_, reading) = Collect(right);

        await left.CloseAsync("first");
        await left.CloseAsync("second");
        await left.DisposeAsync();

        Assert.Equal("first", left.CloseReason);
        Assert.Equal("first", await left.Closed.WaitAsync(Deadline));
        Assert.Equal(Frames.ClosedByOtherSide, await reading.WaitAsync(Deadline));
        await right.CloseAsync(await reading);
        Assert.Equal(Frames.ClosedByOtherSide, await right.Closed.WaitAsync(Deadline));
    }

    [Fact]
    public async Task AWriteToAnEndThatIsGoneClosesTheConnection()
    {
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 1024 * 1024);
        await using var _ = left;
        await right.DisposeAsync();

        // The first frames may still fit in the transport; the closed end shows at the next flush.
        var frame = Frames.Of("into the void");
        await Eventually.TrueAsync(() => Task.FromResult(!left.TrySend(frame)), Deadline, "sending to a closed end fails");
        Assert.StartsWith("connection lost while sending", await left.Closed.WaitAsync(Deadline));
    }

    [Fact]
    public async Task ClosingAfterSendingDeliversWhatWasQueuedFirst()
    {
        var (left, right) = InMemoryConnection.CreatePair(maxQueuedBytes: 1024 * 1024);
        await using var __ = right;
        var (toRight, reading) = Collect(right);

        for (var n = 0; n < 100; n++) left.TrySend(Frames.Of($"last words {n}"));
        await left.CloseAfterSendingAsync("said goodbye").WaitAsync(Deadline);

        for (var n = 0; n < 100; n++) Assert.Equal($"last words {n}", await NextAsync(toRight));
        Assert.Equal(Frames.ClosedByOtherSide, await reading.WaitAsync(Deadline));
        Assert.Equal("said goodbye", await left.Closed.WaitAsync(Deadline));
    }

    [Fact]
    public async Task OverALoopbackSocketAndOverAStreamTheSameFramingHolds()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var accepted = await listener.AcceptSocketAsync();
        // One end over the socket itself, the other over a stream, as an SslStream would be.
        await using var overSocket = FramedConnection.Open(client, maxQueuedBytes: 1024 * 1024);
        await using var overStream = FramedConnection.Open(new NetworkStream(accepted, ownsSocket: true), "accepted", maxQueuedBytes: 1024 * 1024);
        var (toStream, streamReading) = Collect(overStream);
        var (toSocket, _) = Collect(overSocket);

        overSocket.TrySend(Frames.Of("ping"));
        Assert.Equal("ping", await NextAsync(toStream));
        overStream.TrySend(Frames.Of("pong"));
        Assert.Equal("pong", await NextAsync(toSocket));
        Assert.Equal(listener.LocalEndpoint.ToString(), overSocket.Remote);
        Assert.Equal("accepted", overStream.Remote);

        await overSocket.CloseAfterSendingAsync("done").WaitAsync(Deadline);
        Assert.Equal(Frames.ClosedByOtherSide, await streamReading.WaitAsync(Deadline));
    }
}
