using System.IO.Pipelines;

namespace FormalChat.Transport;

/// <summary>
/// Two connected framed connections in memory, for tests: the real framing code over pipes in
/// place of a socket. Each direction holds at most <c>transportBufferBytes</c> unread, as a
/// socket's buffers would, so a reader that stops reading pushes back on the sender.
/// </summary>
public static class InMemoryConnection
{
    public static (IFrameConnection Left, IFrameConnection Right) CreatePair(
        long maxQueuedBytes, long transportBufferBytes = 64 * 1024, ByteGauge? leftGauge = null, ByteGauge? rightGauge = null)
    {
        var options = new PipeOptions(
            pauseWriterThreshold: transportBufferBytes,
            resumeWriterThreshold: transportBufferBytes / 2,
            useSynchronizationContext: false);
        var leftToRight = new Pipe(options);
        var rightToLeft = new Pipe(options);
        var left = new FramedConnection(new PipeTransport(rightToLeft.Reader, leftToRight.Writer), "memory:left", maxQueuedBytes, leftGauge);
        var right = new FramedConnection(new PipeTransport(leftToRight.Reader, rightToLeft.Writer), "memory:right", maxQueuedBytes, rightGauge);
        return (left, right);
    }
}
