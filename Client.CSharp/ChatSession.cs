using FormalChat.Protocol;

namespace FormalChat.Client;

/// One connection's conversation with a node: says hello, decodes every frame and hands it to
/// the client, and tells the answers to the client's own silent requests (a /who that only
/// refreshes the known nicknames, a /status that only refreshes the known nodes) from the
/// user's. The node answers requests in order, so one queue per kind of answer matches them.
public sealed class ChatSession : IDisposable
{
    /// (session, reply, silent): silent replies answer the client's own requests and are not shown.
    public delegate void ReplyHandler(ChatSession session, ServerReply reply, bool silent);

    private readonly Connection connection;
    private readonly ReplyHandler onReply;
    private readonly Lock gate = new();
    /// One entry per request in flight: null for the user's own, a completion for a silent one.
    private readonly Queue<TaskCompletionSource?> pendingWho = new();
    private readonly Queue<TaskCompletionSource<ClusterStatus>?> pendingStatus = new();
    private readonly TaskCompletionSource<ServerReply?> welcomed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? lastErrorReason;

    public ChatSession(long id, Connection connection, Endpoint server, ReplyHandler onReply)
    {
        Id = id;
        this.connection = connection;
        this.onReply = onReply;
        Server = server;
        connection.Closed.ContinueWith(_ => welcomed.TrySetResult(null), TaskScheduler.Default);
    }

    /// How the client's session (ClientSession.fs) names this connection.
    public long Id { get; }

    public Endpoint Server { get; }

    /// The welcome, or the error that refused the hello; null when the node hung up first.
    public Task<ServerReply?> Welcomed => welcomed.Task;

    public Task<string> Closed => connection.Closed;

    /// True when the node's last frame was an error after which it hangs up on purpose (a
    /// nickname conflict, a frame it cannot read): connecting again would meet the same refusal.
    /// An ordinary refusal (no such user, not in room) followed by a crash is not one.
    public bool EndedByError => Volatile.Read(ref lastErrorReason) is not null;

    /// Why the connection ended, as a person should read it: the node's reason if it hung up
    /// on purpose, else how the connection ended.
    public string CloseReason => Volatile.Read(ref lastErrorReason) ?? connection.Closed.Result;

    /// The errors a node sends just before it closes the connection itself.
    private static bool EndsSession(ErrorCode code) =>
        code.IsNickTaken || code.IsServerFull || code.IsVersionMismatch || code.IsBadFrame || code.IsFrameTooLarge
        || code.IsTlsRequired || code.IsLoginThrottled || code.IsPasswordRequired || code.IsPasswordWrong;

    public void Start(HelloRequest hello)
    {
        connection.Start(OnLine);
        connection.Send(ClientRequest.NewHello(hello));
    }

    /// A request the user made; its answer is shown.
    public void Send(ClientRequest request)
    {
        lock (gate)
        {
            if (request.IsWho) pendingWho.Enqueue(null);
            if (request.IsStatus) pendingStatus.Enqueue(null);
            connection.Send(request);
        }
    }

    /// Sends a /who whose answer is not shown: it refreshes the known nicknames and, as the
    /// node answers in order, its arrival means everything sent before it has been answered.
    public Task SyncAsync()
    {
        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (gate)
        {
            pendingWho.Enqueue(answered);
            connection.Send(ClientRequest.NewWho(Microsoft.FSharp.Core.FSharpOption<string>.None));
        }
        return answered.Task;
    }

    /// Sends a /status whose answer is not shown: the client keeps the list of live nodes.
    public Task<ClusterStatus> StatusAsync()
    {
        var answered = new TaskCompletionSource<ClusterStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (gate)
        {
            pendingStatus.Enqueue(answered);
            connection.Send(ClientRequest.Status);
        }
        return answered.Task;
    }

    public void Close(string reason) => connection.Close(reason);

    public void Dispose() => connection.Dispose();

    private void OnLine(string line)
    {
        var decoded = Wire.decodeServerReply(line);
        if (decoded.IsError)
        {
            var reason = $"malformed frame from the server: {decoded.ErrorValue.Reason}";
            Volatile.Write(ref lastErrorReason, reason);
            onReply(this, ServerReply.NewErrorReply(ErrorCode.BadFrame, reason), false);
            connection.Close(reason);
            return;
        }
        var reply = decoded.ResultValue;
        Volatile.Write(ref lastErrorReason, reply is ServerReply.ErrorReply error && EndsSession(error.code) ? error.reason : null);
        onReply(this, reply, IsSilent(reply));
        // Before the welcome, an error can only be the node refusing our hello.
        if (reply.IsWelcome || reply.IsErrorReply) welcomed.TrySetResult(reply);
    }

    /// Matches a /who or /status answer with its request; true when the client asked silently.
    private bool IsSilent(ServerReply reply)
    {
        lock (gate)
        {
            switch (reply)
            {
                case ServerReply.WhoListed:
                    var who = pendingWho.TryDequeue(out var whoWaiter) ? whoWaiter : null;
                    who?.TrySetResult();
                    return who is not null;
                case ServerReply.StatusReported { Item: var status }:
                    var report = pendingStatus.TryDequeue(out var statusWaiter) ? statusWaiter : null;
                    report?.TrySetResult(status);
                    return report is not null;
                default:
                    return false;
            }
        }
    }
}
