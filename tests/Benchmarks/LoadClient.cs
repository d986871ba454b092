using System.Net;
using System.Net.Sockets;
using System.Text;
using FormalChat.Protocol;
using FormalChat.Transport;

namespace FormalChat.Benchmarks;

/// <summary>
/// A lean client for load: says hello, then only scans incoming frames for one marker, so
/// thousands of them cost the benchmark process little and the figures are the node's.
/// </summary>
public sealed class LoadClient : IAsyncDisposable
{
    private static readonly byte[] WelcomeType = Encoding.UTF8.GetBytes("\"welcome\"");

    private readonly IFrameConnection _connection;
    private readonly byte[] _marker;
    private readonly TaskCompletionSource _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _welcomed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private LoadClient(IFrameConnection connection, string marker)
    {
        _connection = connection;
        _marker = Encoding.UTF8.GetBytes(marker);
        _ = Task.Run(ReadLoopAsync);
    }

    public Task Seen => _seen.Task;

    public static async Task<LoadClient> ConnectAsync(int port, string nick, string marker)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port);
        var client = new LoadClient(FramedConnection.Open(socket, maxQueuedBytes: 64 * 1024), marker);
        await client.SendAsync($"{{\"type\":\"hello\",\"nick\":\"{nick}\"}}");
        await client._welcomed.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return client;
    }

    public Task SendAsync(string frame) =>
        _connection.TrySend(Frames.Of(frame)) ? Task.CompletedTask : Task.FromException(new IOException($"connection closed: {_connection.CloseReason}"));

    private async Task ReadLoopAsync()
    {
        var reason = await _connection.ReadFramesUntilClosedAsync(Wire.maxPeerFrameBytes, frame =>
        {
            var span = frame.Span;
            if (!_welcomed.Task.IsCompleted && span.IndexOf(WelcomeType) >= 0) _welcomed.TrySetResult();
            if (span.IndexOf(_marker) >= 0) _seen.TrySetResult();
            return true;
        });
        _welcomed.TrySetException(new IOException($"closed before welcome: {reason}"));
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
