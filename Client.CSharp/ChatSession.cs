using FormalChat.Protocol;

namespace FormalChat.Client;

/// One signed-in conversation with a node: decodes every frame, prints it, and keeps the little
/// the client needs to know — who is online (for `send <nick> <text>`), which /who replies it
/// asked for itself, and the last error (the reason shown when the node hangs up).
public sealed class ChatSession
{
    private readonly Connection connection;
    private readonly IEventPrinter printer;
    private readonly Lock gate = new();
    private readonly HashSet<string> knownNicks = new(StringComparer.Ordinal);
    /// One entry per /who request in flight, in order (the node answers in order): null for
    /// the user's own /who, a completion for a silent one the client sent.
    private readonly Queue<TaskCompletionSource?> pendingWho = new();
    private readonly TaskCompletionSource<bool> welcomed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? lastErrorReason;

    public ChatSession(Connection connection, IEventPrinter printer)
    {
        this.connection = connection;
        this.printer = printer;
        connection.Closed.ContinueWith(_ => welcomed.TrySetResult(false), TaskScheduler.Default);
    }

    /// True once the node has welcomed us; false when it refused or hung up first.
    public Task<bool> Welcomed => welcomed.Task;

    public Task<string> Closed => connection.Closed;

    /// Why the connection ended, as a person should read it: the reason of the node's last
    /// frame if that was an error.
    public string CloseReason => Volatile.Read(ref lastErrorReason) ?? connection.Closed.Result;

    public void Start(string nick)
    {
        connection.Start(OnLine);
        connection.Send(ClientRequest.NewHello(nick));
    }

    public bool IsKnownNick(string nick)
    {
        lock (gate) return knownNicks.Contains(nick);
    }

    public void Send(ClientRequest request)
    {
        if (request.IsWho) Enqueue(null);
        connection.Send(request);
    }

    /// Sends a /who whose answer is not printed: it refreshes the known nicknames and, as the
    /// node answers in order, its arrival means everything sent before it has been answered.
    public Task SyncAsync()
    {
        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Enqueue(answered);
        connection.Send(ClientRequest.Who);
        return answered.Task;
    }

    private void Enqueue(TaskCompletionSource? waiter)
    {
        lock (gate) pendingWho.Enqueue(waiter);
    }

    private void OnLine(string line)
    {
        var decoded = Wire.decodeServerReply(line);
        if (decoded.IsError)
        {
            var reason = $"malformed frame from the server: {decoded.ErrorValue.Reason}";
            printer.ClientError("bad-frame", reason);
            connection.Close(reason);
            return;
        }
        var reply = decoded.ResultValue;
        Volatile.Write(ref lastErrorReason, reply is ServerReply.Error error ? error.reason : null);
        if (Remember(reply)) printer.Reply(reply);
        // Before the welcome, an error can only be the node refusing our hello.
        if (reply.IsWelcome || reply.IsError) welcomed.TrySetResult(reply.IsWelcome);
    }

    /// Updates what the session knows from one reply; false when the reply is not to be printed.
    private bool Remember(ServerReply reply)
    {
        lock (gate)
        {
            switch (reply)
            {
                case ServerReply.Message { Item: var line }:
                    knownNicks.Add(line.From);
                    return true;
                case ServerReply.Private { Item: var line }:
                    knownNicks.Add(line.From);
                    return true;
                case ServerReply.WhoListed who:
                    knownNicks.Clear();
                    foreach (var user in who.Item) knownNicks.Add(user.Nick);
                    var waiter = pendingWho.TryDequeue(out var next) ? next : null;
                    waiter?.TrySetResult();
                    return waiter is null;
                case ServerReply.Notice notice:
                    RememberPresence(notice.text);
                    return true;
                default:
                    return true;
            }
        }
    }

    /// Presence notices read "<nick> joined ..." and "<nick> left ..." (Node.fs).
    private void RememberPresence(string text)
    {
        var words = text.Split(' ', 3);
        if (words.Length < 2 || Chat.validateNick(words[0]).IsError) return;
        if (words[1] == "joined") knownNicks.Add(words[0]);
        else if (words[1] == "left") knownNicks.Remove(words[0]);
    }
}
