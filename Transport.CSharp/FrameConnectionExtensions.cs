namespace FormalChat.Transport;

public static class FrameConnectionExtensions
{
    /// <summary>Reads frames with a handler that never waits: for clients and tests, where the
    /// handler only hands the frame on.</summary>
    public static Task<string> ReadFramesAsync(this IFrameConnection connection, int maxFrameBytes, Func<ReadOnlyMemory<byte>, bool> onFrame, Action<int>? onOversized = null) =>
        connection.ReadFramesAsync(maxFrameBytes, frame => ValueTask.FromResult(onFrame(frame)), onOversized);

    /// <summary>Reads until the connection ends, then closes it with the reason the reading stopped.</summary>
    public static async Task<string> ReadFramesUntilClosedAsync(this IFrameConnection connection, int maxFrameBytes, Func<ReadOnlyMemory<byte>, bool> onFrame)
    {
        var reason = await connection.ReadFramesAsync(maxFrameBytes, onFrame).ConfigureAwait(false);
        await connection.CloseAsync(reason).ConfigureAwait(false);
        return connection.CloseReason ?? reason;
    }
}
