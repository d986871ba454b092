using System.Net;
using System.Net.Sockets;
using System.Text;
using FormalChat.Protocol;
using FormalChat.Transport;

namespace FormalChat.Cluster.Tests.RawClients;

/// <summary>
/// A bare client for line protocols under load, over Transport.CSharp's framed connection: the
/// read loop hands each line to <see cref="OnLine"/> straight out of the pipe's buffer without
/// allocating, so a hundred of them in one process leave the CPU to the servers being measured.
/// Rare lines (replies to a handshake) are offered to waiters as strings. Sends wait while the
/// send queue is full (a server that reads slowly slows the sender, as a socket write would); a
/// blocking one for a sender thread gives up after a send timeout, so a server that stops
/// reading cannot hang the caller.
/// </summary>
public abstract class RawLineClient : IAsyncDisposable
{
    /// <summary>What may wait to be sent: about what a socket's send buffer holds.</summary>
    private const long MaxQueuedBytes = 1024 * 1024;

    private readonly IFrameConnection _connection;
    private readonly TimeSpan _sendTimeout;
    private readonly List<(Func<string, bool> Matches, TaskCompletionSource<string> Reply)> _waiters = new();
    private Task _reader = Task.CompletedTask;

    protected RawLineClient(ConnectedSocket socket)
    {
        _connection = FramedConnection.Open(socket.Socket, MaxQueuedBytes);
        _sendTimeout = socket.SendTimeout;
    }

    /// <summary>Why the connection ended (the server closed it, a read failed); null while open.</summary>
    public string? CloseReason => _connection.CloseReason;

    /// <summary>A connected socket and how long a blocking send may wait for room.</summary>
    protected sealed record ConnectedSocket(Socket Socket, TimeSpan SendTimeout);

    protected static async Task<ConnectedSocket> ConnectSocketAsync(int port, TimeSpan sendTimeout)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return new ConnectedSocket(socket, sendTimeout);
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

    public async Task SendAsync(string text)
    {
        if (!await _connection.SendAsync(Encoding.UTF8.GetBytes(text))) throw new IOException($"connection ended: {CloseReason}");
    }

    /// <summary>A blocking send for a sender thread; throws SocketException once the send timeout
    /// passes or the connection has ended.</summary>
    public void Send(string text)
    {
        using var timeout = new CancellationTokenSource(_sendTimeout);
        bool queued;
        try { queued = _connection.SendAsync(Encoding.UTF8.GetBytes(text), timeout.Token).AsTask().GetAwaiter().GetResult(); }
        catch (OperationCanceledException) { throw new SocketException((int)SocketError.TimedOut); }
        if (!queued) throw new SocketException((int)SocketError.ConnectionReset);
    }

    private async Task ReadLoopAsync()
    {
        var reason = await _connection.ReadFramesUntilClosedAsync(Wire.maxPeerFrameBytes, frame =>
        {
            if (frame.Length > 0) OnLine(frame.Span);
            return true;
        });
        lock (_waiters)
        {
            foreach (var waiter in _waiters) waiter.Reply.TrySetException(new IOException($"connection ended: {reason}"));
            _waiters.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync();
        await _reader.ContinueWith(_ => { }, TaskScheduler.Default);
        GC.SuppressFinalize(this);
    }
}
