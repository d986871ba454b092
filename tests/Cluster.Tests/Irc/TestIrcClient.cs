using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using FormalChat.Transport;

namespace FormalChat.Cluster.Tests.Irc;

/// <summary>A scripted raw-socket IRC client: sends lines, keeps every line it receives, and
/// waits for the next one that matches, within a deadline.</summary>
public sealed class TestIrcClient : IAsyncDisposable
{
    private static readonly TimeSpan ReplyDeadline = TimeSpan.FromSeconds(10);

    private readonly IFrameConnection _connection;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly List<string> _received = new();
    private readonly Task _reader;

    private TestIrcClient(IFrameConnection connection)
    {
        _connection = connection;
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>Every line received so far, in order, for assertions and failure messages.</summary>
    public IReadOnlyList<string> Received { get { lock (_received) return _received.ToList(); } }

    public bool Closed { get; private set; }

    public static async Task<TestIrcClient> OpenAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return new TestIrcClient(FramedConnection.Open(socket, maxQueuedBytes: 1024 * 1024));
    }

    /// <summary>Connects, registers, and waits for the welcome and the lobby's NAMES.</summary>
    public static async Task<TestIrcClient> RegisterAsync(int port, string nick)
    {
        var client = await OpenAsync(port);
        await client.SendAsync($"NICK {nick}", $"USER {nick} 0 * :{nick} the tester");
        await client.NextAsync(line => Numeric(line) == "001");
        await client.NextAsync(line => Numeric(line) == "366" && line.Contains("#lobby"));
        return client;
    }

    /// <summary>The command or numeric of a server line: the word after the prefix.</summary>
    public static string Numeric(string line) => line.StartsWith(':') ? line.Split(' ').ElementAtOrDefault(1) ?? "" : line.Split(' ')[0];

    /// <summary>Sends each line with CR LF, as RFC 1459 asks.</summary>
    public async Task SendAsync(params string[] lines)
    {
        foreach (var line in lines) await SendRawAsync(line + "\r\n");
    }

    /// <summary>Queues text as it is, framed or not (tests send overlong lines on purpose).</summary>
    public Task SendRawAsync(string text) =>
        _connection.TrySend(Encoding.UTF8.GetBytes(text)) ? Task.CompletedTask : Task.FromException(new IOException($"connection closed: {_connection.CloseReason}"));

    public async Task<string> NextAsync(Func<string, bool> matches, TimeSpan? within = null)
    {
        using var deadline = new CancellationTokenSource(within ?? ReplyDeadline);
        try
        {
            while (true)
            {
                var line = await _lines.Reader.ReadAsync(deadline.Token);
                if (matches(line)) return line;
            }
        }
        catch (OperationCanceledException) { throw new TimeoutException($"no matching IRC line within the deadline; received:\n{string.Join("\n", Received)}"); }
        catch (ChannelClosedException) { throw new IOException($"the node closed the IRC connection before a matching line; received:\n{string.Join("\n", Received)}"); }
    }

    public async Task WaitClosedAsync(TimeSpan within)
    {
        using var deadline = new CancellationTokenSource(within);
        await _reader.WaitAsync(deadline.Token);
    }

    private async Task ReadLoopAsync()
    {
        // Generous: the tests check what the node sends, not that a client limits it.
        await _connection.ReadFramesUntilClosedAsync(64 * 1024, frame =>
        {
            var line = Encoding.UTF8.GetString(frame.Span);
            lock (_received) _received.Add(line);
            _lines.Writer.TryWrite(line);
            return true;
        });
        Closed = true;
        _lines.Writer.TryComplete();
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync();
        await _reader.ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
