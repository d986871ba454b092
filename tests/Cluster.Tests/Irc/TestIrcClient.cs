using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace FormalChat.Cluster.Tests.Irc;

/// <summary>A scripted raw-socket IRC client: sends lines, keeps every line it receives, and
/// waits for the next one that matches, within a deadline.</summary>
public sealed class TestIrcClient : IAsyncDisposable
{
    private static readonly TimeSpan ReplyDeadline = TimeSpan.FromSeconds(10);

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly List<string> _received = new();
    private readonly Task _reader;

    private TestIrcClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>Every line received so far, in order, for assertions and failure messages.</summary>
    public IReadOnlyList<string> Received { get { lock (_received) return _received.ToList(); } }

    public bool Closed { get; private set; }

    public static async Task<TestIrcClient> OpenAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        return new TestIrcClient(tcp);
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
        foreach (var line in lines) await _stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\r\n"));
    }

    public async Task SendRawAsync(string text) => await _stream.WriteAsync(Encoding.UTF8.GetBytes(text));

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
        using var reader = new StreamReader(_stream, Encoding.UTF8);
        try
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                lock (_received) _received.Add(line);
                _lines.Writer.TryWrite(line);
            }
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
        Closed = true;
        _lines.Writer.TryComplete();
    }

    public async ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        await _reader.ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
