using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using FormalChat.Protocol;
using FormalChat.Transport;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>A raw protocol client: sends frames and collects every reply frame for assertions.</summary>
public sealed class TestClient : IAsyncDisposable
{
    private static readonly TimeSpan ReplyDeadline = TimeSpan.FromSeconds(10);

    /// <summary>Tests send a few frames, some of them oversized on purpose.</summary>
    private const long MaxQueuedBytes = 64L * 1024 * 1024;

    private readonly IFrameConnection _connection;
    private readonly Channel<JObject> _frames = Channel.CreateUnbounded<JObject>();
    private readonly Task _reader;

    private TestClient(IFrameConnection connection)
    {
        _connection = connection;
        _reader = Task.Run(ReadLoopAsync);
    }

    public bool Closed { get; private set; }

    /// <summary>Why the connection ended, once it has.</summary>
    public string? CloseReason => _connection.CloseReason;

    /// <summary>The welcome frame of this connection's hello, with the session token.</summary>
    public JObject? Welcome { get; private set; }

    public static async Task<TestClient> OpenAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return new TestClient(FramedConnection.Open(socket, MaxQueuedBytes));
    }

    /// <summary>Connects and says hello; fails unless the node welcomes the nickname.</summary>
    public static async Task<TestClient> ConnectAsync(int port, string nick, string? session = null)
    {
        var client = await OpenAsync(port);
        var hello = new JObject { ["v"] = 1, ["type"] = "hello", ["nick"] = nick };
        if (session is not null) hello["session"] = session;
        await client.SendAsync(hello);
        var reply = await client.NextAsync(frame => (string?)frame["type"] is "welcome" or "error");
        if ((string?)reply["type"] != "welcome") throw new InvalidOperationException($"hello refused: {reply}");
        client.Welcome = reply;
        return client;
    }

    public Task SendAsync(JObject frame) => SendRawAsync(frame.ToString(Formatting.None) + "\n");

    /// <summary>Queues bytes as they are, framed or not (tests send malformed input on purpose).</summary>
    public Task SendRawAsync(string text) => SendBytesAsync(Encoding.UTF8.GetBytes(text));

    public Task SendBytesAsync(byte[] bytes) =>
        _connection.TrySend(bytes) ? Task.CompletedTask : Task.FromException(new IOException($"connection closed: {_connection.CloseReason}"));

    /// <summary>The next frame that matches, skipping the others.</summary>
    public async Task<JObject> NextAsync(Func<JObject, bool> matches, TimeSpan? within = null, CancellationToken stop = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop);
        deadline.CancelAfter(within ?? ReplyDeadline);
        try
        {
            while (true)
            {
                var frame = await _frames.Reader.ReadAsync(deadline.Token);
                if (matches(frame)) return frame;
            }
        }
        catch (OperationCanceledException) { throw new TimeoutException("no matching frame within the deadline"); }
        catch (ChannelClosedException) { throw new IOException("the node closed the connection before a matching frame"); }
    }

    /// <summary>Waits until the node has closed this connection.</summary>
    public async Task WaitClosedAsync()
    {
        using var deadline = new CancellationTokenSource(ReplyDeadline);
        await _reader.WaitAsync(deadline.Token);
    }

    // Frames up to the largest a node writes at all; a frame that is not JSON ends the reading.
    private async Task ReadLoopAsync()
    {
        await _connection.ReadFramesUntilClosedAsync(Wire.maxPeerFrameBytes, frame =>
        {
            if (frame.Length == 0) return true;
            try { _frames.Writer.TryWrite(JObject.Parse(Encoding.UTF8.GetString(frame.Span))); }
            catch (JsonReaderException) { return false; }
            return true;
        });
        Closed = true;
        _frames.Writer.TryComplete();
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync();
        await _reader.ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
