using System.Net;
using System.Net.Sockets;
using System.Text;

namespace FormalChat.Benchmarks;

/// <summary>
/// A lean client for load: says hello, then only scans incoming bytes for one marker, so
/// thousands of them cost the benchmark process little and the figures are the node's.
/// </summary>
public sealed class LoadClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _marker;
    private readonly TaskCompletionSource _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _welcomed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private LoadClient(Socket socket, string marker)
    {
        _socket = socket;
        _marker = Encoding.UTF8.GetBytes(marker);
        _ = Task.Run(ReadLoopAsync);
    }

    public Task Seen => _seen.Task;

    public static async Task<LoadClient> ConnectAsync(int port, string nick, string marker)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, port);
        var client = new LoadClient(socket, marker);
        await client.SendAsync($"{{\"type\":\"hello\",\"nick\":\"{nick}\"}}");
        await client._welcomed.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return client;
    }

    public async Task SendAsync(string frame) => await _socket.SendAsync(Encoding.UTF8.GetBytes(frame + "\n"));

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        var welcome = Encoding.UTF8.GetBytes("\"welcome\"");
        try
        {
            while (true)
            {
                var read = await _socket.ReceiveAsync(buffer);
                if (read == 0) break;
                var span = buffer.AsSpan(0, read);
                if (!_welcomed.Task.IsCompleted && span.IndexOf(welcome) >= 0) _welcomed.TrySetResult();
                if (span.IndexOf(_marker) >= 0) _seen.TrySetResult();
            }
        }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        _welcomed.TrySetException(new IOException("closed before welcome"));
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
