using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace FormalChat.Node;

/// <summary>
/// A listening port that hands every accepted socket to its own serving task, until stopped.
/// Shared by the client port and the peer port.
/// </summary>
public sealed class TcpAcceptor : IDisposable
{
    private readonly TcpListener _listener;
    private readonly string _what;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stopping = new();

    public TcpAcceptor(IPEndPoint endpoint, string what, ILogger log)
    {
        _listener = new TcpListener(endpoint);
        _what = what;
        _log = log;
    }

    public void Start(int backlog, Func<Socket, Task> serve)
    {
        _listener.Start(backlog);
        _ = Task.Run(() => AcceptLoopAsync(serve));
    }

    private async Task AcceptLoopAsync(Func<Socket, Task> serve)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptSocketAsync(_stopping.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException error)
            {
                _log.LogWarning("accepting a {What} connection failed: {Reason}", _what, error.Message);
                continue;
            }
            _ = Task.Run(() => ServeLoggingFaults(serve, socket));
        }
    }

    // A serving task ends its own connection whatever happens; a fault here is a bug to see.
    private async Task ServeLoggingFaults(Func<Socket, Task> serve, Socket socket)
    {
        try { await serve(socket).ConfigureAwait(false); }
        catch (Exception error) { _log.LogError(error, "serving a {What} connection failed", _what); }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _listener.Stop();
        _stopping.Dispose();
    }
}
