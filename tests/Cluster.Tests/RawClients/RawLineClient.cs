using System.Net;
using System.Net.Sockets;
using System.Text;

namespace FormalChat.Cluster.Tests.RawClients;

/// <summary>
/// A bare TCP client for line protocols under load: one read loop splits lines straight out of
/// the receive buffer and hands each to <see cref="OnLine"/> without allocating, so a hundred
/// of them in one process leave the CPU to the servers being measured. Rare lines (replies to
/// a handshake) are offered to waiters as strings. Sends are plain socket writes: a blocking
/// one for a sender thread, bounded by a send timeout so a server that stops reading cannot
/// hang the caller.
/// </summary>
public abstract class RawLineClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly List<(Func<string, bool> Matches, TaskCompletionSource<string> Reply)> _waiters = new();
    private Task _reader = Task.CompletedTask;
    private volatile string? _closeReason;

    protected RawLineClient(Socket socket) => _socket = socket;

    /// <summary>Why the connection ended (the server closed it, a read failed); null while open.</summary>
    public string? CloseReason => _closeReason;

    protected static async Task<Socket> ConnectSocketAsync(int port, TimeSpan sendTimeout)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            SendTimeout = (int)sendTimeout.TotalMilliseconds,
        };
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return socket;
    }

    /// <summary>Starts reading; called by the subclass once its own fields are set.</summary>
    protected void StartReading() => _reader = Task.Run(ReadLoopAsync);

    /// <summary>One line without its line ending, on the reader's thread, one at a time.</summary>
    protected abstract void OnLine(ReadOnlySpan<byte> line);

    /// <summary>Hands a line that is not hot-path traffic to whoever waits for it.</summary>
    protected void Offer(ReadOnlySpan<byte> line)
    {
        lock (_waiters)
        {
            if (_waiters.Count == 0) return;
            var text = Encoding.UTF8.GetString(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (!_waiters[i].Matches(text)) continue;
                _waiters[i].Reply.TrySetResult(text);
                _waiters.RemoveAt(i);
            }
        }
    }

    /// <summary>Sends <paramref name="request"/> and waits for the first line that matches, registered
    /// before sending so a quick reply cannot slip past.</summary>
    public async Task<string> RequestAsync(string request, Func<string, bool> matches, TimeSpan within)
    {
        var reply = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waiters) _waiters.Add((matches, reply));
        try
        {
            if (request.Length > 0) await SendAsync(request);
            return await reply.Task.WaitAsync(within);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no reply to {request.Trim()} within {within.TotalSeconds:0.#} s{(CloseReason is { } why ? $" ({why})" : "")}");
        }
        finally
        {
            lock (_waiters) _waiters.RemoveAll(waiter => waiter.Reply == reply);
        }
    }

    public async Task SendAsync(string text) => await _socket.SendAsync(Encoding.UTF8.GetBytes(text));

    /// <summary>A blocking write for a sender thread; throws SocketException once the send timeout passes.</summary>
    public void Send(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var sent = 0;
        while (sent < bytes.Length) sent += _socket.Send(bytes, sent, bytes.Length - sent, SocketFlags.None);
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        var filled = 0;
        try
        {
            while (true)
            {
                if (filled == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
                var read = await _socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
                if (read == 0)
                {
                    _closeReason ??= "closed by the server";
                    break;
                }
                filled += read;
                var consumed = SplitLines(buffer.AsSpan(0, filled));
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;
            }
        }
        catch (SocketException error) { _closeReason ??= $"socket error: {error.SocketErrorCode}"; }
        catch (ObjectDisposedException) { _closeReason ??= "disposed"; }
        lock (_waiters)
        {
            foreach (var waiter in _waiters) waiter.Reply.TrySetException(new IOException($"connection ended: {_closeReason}"));
            _waiters.Clear();
        }
    }

    /// <summary>Hands every complete line to OnLine; returns how many bytes were used.</summary>
    private int SplitLines(ReadOnlySpan<byte> data)
    {
        var start = 0;
        while (true)
        {
            var newline = data[start..].IndexOf((byte)'\n');
            if (newline < 0) return start;
            var line = data.Slice(start, newline);
            if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
            if (line.Length > 0) OnLine(line);
            start += newline + 1;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        await _reader.ContinueWith(_ => { }, TaskScheduler.Default);
        GC.SuppressFinalize(this);
    }
}
