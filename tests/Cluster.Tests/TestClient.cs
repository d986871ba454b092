using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>A raw protocol client: sends frames and collects every reply frame for assertions.</summary>
public sealed class TestClient : IAsyncDisposable
{
    private static readonly TimeSpan ReplyDeadline = TimeSpan.FromSeconds(10);

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly Channel<JObject> _frames = Channel.CreateUnbounded<JObject>();
    private readonly Task _reader;

    private TestClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _reader = Task.Run(ReadLoopAsync);
    }

    public bool Closed { get; private set; }

    /// <summary>The welcome frame of this connection's hello, with the session token.</summary>
    public JObject? Welcome { get; private set; }

    public static async Task<TestClient> OpenAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        return new TestClient(tcp);
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

    public async Task SendRawAsync(string text) => await _stream.WriteAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendBytesAsync(byte[] bytes) => await _stream.WriteAsync(bytes);

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

    private async Task ReadLoopAsync()
    {
        using var reader = new StreamReader(_stream, Encoding.UTF8);
        try
        {
            while (await reader.ReadLineAsync() is { } line) _frames.Writer.TryWrite(JObject.Parse(line));
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
        Closed = true;
        _frames.Writer.TryComplete();
    }

    public async ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        await _reader.ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
