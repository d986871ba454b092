using FormalChat.CommandLine;
using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FormalChat.Client;

/// How one connection attempt ended.
public enum AttemptOutcome
{
    Welcomed,
    /// The node refused the nickname: on a reconnect, the old node's users may not be forgotten yet.
    NickTaken,
    /// The node refused the hello for another reason (full, invalid nickname, ...).
    Refused,
    /// No connection, or no answer.
    Unreachable,
}

public sealed record Attempt(AttemptOutcome Outcome, string Reason, ChatSession? Session = null);

/// The chat client across connections. What the user has joined and seen, what is not yet
/// acknowledged, which connection is in use and where to fail over are the F# session
/// (Protocol.FSharp/ClientSession.fs); this class only owns the connections and carries out the
/// session's effects. Every event from every connection is stepped under one lock, so printing
/// and bookkeeping stay in order. Failover (Failover.cs) finds the next node when the session
/// says so; the user's commands come in by Submit.
public sealed class ChatClient
{
    private static readonly TimeSpan StatusInterval = TimeSpan.FromSeconds(3);
    /// A node that leaves a /status unanswered this long is taken for dead (hung, not crashed).
    private static readonly TimeSpan StatusDeadline = TimeSpan.FromSeconds(8);

    private readonly IEventPrinter printer;
    private readonly LineEditor? editor;
    private readonly Lock gate = new();
    /// The open connections by the ids the session knows them by: the one in use, an attempt.
    private readonly Dictionary<long, ChatSession> links = new();
    private readonly TaskCompletionSource<string> gaveUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ClientSessionState session;
    private long nextLinkId;
    /// Completed (and replaced) each time the session goes online: the catch-up after a welcome is over.
    private TaskCompletionSource wentOnline = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string prompt = "";

    public ChatClient(ClientOptions options, IEventPrinter printer, LineEditor? editor, long firstMessageId)
    {
        Options = options;
        this.printer = printer;
        this.editor = editor;
        session = ClientSession.create(options.Nick, firstMessageId);
        AccountPassword = options.Password?.Value;
        UpdatePrompt();
    }

    public ClientOptions Options { get; }

    /// The registered nickname's password (--password, --ask-password, or the last /register),
    /// sent with every hello so a failover to a node that no longer knows the session still gets in.
    public string? AccountPassword { get; set; }

    private HelloRequest WithPassword(HelloRequest hello) =>
        AccountPassword is null ? hello : new HelloRequest(hello.Nick, hello.Session, hello.Resume, FSharpOption<Password>.Some(Password.NewGiven(AccountPassword)));

    /// Completes with the reason when the client cannot go on: failover gave up, or the node
    /// ended the session with an error that a reconnect would meet again.
    public Task<string> Ended => gaveUp.Task;

    public string CurrentRoom
    {
        get { lock (gate) return session.CurrentRoom.Value; }
    }

    public bool IsKnownNick(string nick)
    {
        lock (gate) return session.KnownNicks.Contains(nick);
    }

    public IReadOnlyList<NodeCandidate> KnownNodes
    {
        get { lock (gate) return session.Candidates.ToList(); }
    }

    public void AddKnownNodes(IEnumerable<NodeCandidate> nodes)
    {
        lock (gate) Step(ClientSessionEvent.NewNodesDiscovered(ListModule.OfSeq(nodes)));
    }

    public bool IsQuitting
    {
        get { lock (gate) return session.Quitting; }
    }

    // -----------------------------------------------------------------------------------------
    // Connecting.

    /// Connects and says the session's hello (resuming if it has a token); the welcome, stepped
    /// through the session like every reply, makes the connection the one in use.
    public async Task<Attempt> TryConnectAsync(Endpoint server, TimeSpan connectTimeout, TimeSpan welcomeTimeout)
    {
        Connection connection;
        try
        {
            connection = await Connection.ConnectAsync(server, connectTimeout, Options.Tls?.Value);
        }
        catch (ConnectFailedException error)
        {
            return new Attempt(AttemptOutcome.Unreachable, $"cannot connect to {server}: {error.Message}");
        }
        ChatSession chat;
        lock (gate)
        {
            chat = new ChatSession(++nextLinkId, connection, server, OnReply);
            links[chat.Id] = chat;
            Step(ClientSessionEvent.NewConnectionOpened(chat.Id));
        }
        _ = chat.Closed.ContinueWith(closed => OnClosed(chat), TaskScheduler.Default);
        ServerReply? answer;
        try
        {
            answer = await chat.Welcomed.WaitAsync(welcomeTimeout);
        }
        catch (TimeoutException)
        {
            answer = null;
        }
        lock (gate)
        {
            if (InUse() == chat) return new Attempt(AttemptOutcome.Welcomed, "", chat);
        }
        chat.Dispose();
        return answer switch
        {
            // try-again (the nickname registrar is being elected) is retried like a nickname still held.
            ServerReply.ErrorReply { code.IsNickTaken: true } or ServerReply.ErrorReply { code.IsTryAgain: true } =>
                new Attempt(AttemptOutcome.NickTaken, ((ServerReply.ErrorReply)answer).reason),
            ServerReply.ErrorReply error => new Attempt(AttemptOutcome.Refused, error.reason),
            null when chat.Closed.IsCompleted => new Attempt(AttemptOutcome.Unreachable, $"{server}: {chat.Closed.Result}"),
            _ => new Attempt(AttemptOutcome.Unreachable, $"{server}: no welcome within {welcomeTimeout.TotalSeconds:0.#} s"),
        };
    }

    /// After a welcome: waits until the node has answered the session's sync and the session has
    /// re-sent what was not confirmed (or the connection is gone).
    public async Task AfterWelcomeAsync(ChatSession chat)
    {
        while (true)
        {
            Task online;
            lock (gate)
            {
                if (InUse() != chat || ClientSession.isOnline(session)) return;
                online = wentOnline.Task;
            }
            await Task.WhenAny(online, chat.Closed);
            if (chat.Closed.IsCompleted) return;
        }
    }

    /// Every few seconds a silent /status: the known nodes stay current for a failover, and a
    /// node that stops answering is left as if it had crashed.
    public async Task PollStatusAsync()
    {
        while (!gaveUp.Task.IsCompleted)
        {
            ChatSession? chat;
            int node;
            // The welcome asked once already; from then on, every StatusInterval.
            await Task.WhenAny(Task.Delay(StatusInterval), gaveUp.Task);
            lock (gate)
            {
                chat = session.Quitting ? null : InUse();
                node = session.Node is { } known ? known.Value : 0;
            }
            if (chat is not null)
            {
                var status = chat.StatusAsync();
                await Task.WhenAny(status, chat.Closed, Task.Delay(StatusDeadline));
                if (!status.IsCompleted && !chat.Closed.IsCompleted)
                    chat.Close($"node {node} left a status request unanswered for {StatusDeadline.TotalSeconds:0} s");
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The user's commands.

    public void Submit(Command command)
    {
        lock (gate)
        {
            switch (command)
            {
                case Speak speak:
                    Step(ClientSessionEvent.NewSayRequested(RoomName.NewRoomName(speak.Room), speak.Text));
                    break;
                case SwitchRoom switchRoom:
                    Step(ClientSessionEvent.NewRoomSwitchRequested(RoomName.NewRoomName(switchRoom.Room)));
                    break;
                case SendRequest send:
                    // The new password is the one every later hello (a failover) sends.
                    if (send.Request is ClientRequest.Register { password: Password.Given given }) AccountPassword = given.password;
                    Step(ClientSessionEvent.NewRequestSubmitted(send.Request));
                    break;
            }
        }
    }

    /// True when nothing sent is still unanswered or unconfirmed (end of scripted input).
    public async Task<bool> SettleAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !gaveUp.Task.IsCompleted)
        {
            ChatSession? chat;
            lock (gate) chat = ClientSession.isSettled(session) ? InUse() : null;
            if (chat is not null)
            {
                var answered = chat.SyncAsync();
                var remaining = deadline - DateTime.UtcNow;
                await Task.WhenAny(answered, chat.Closed, Task.Delay(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero));
                lock (gate)
                {
                    if (answered.IsCompleted && ClientSession.isSettled(session)) return true;
                }
            }
            await Task.Delay(50);
        }
        return false;
    }

    /// Leaves: no failover after this. The node answers quit by closing; wait for that so
    /// nothing it sent before is cut off.
    public async Task QuitAsync(TimeSpan goodbyeTimeout)
    {
        ChatSession? chat;
        lock (gate)
        {
            chat = InUse();
            Step(ClientSessionEvent.QuitRequested);
        }
        if (chat is null || chat.Closed.IsCompleted) return;
        await Task.WhenAny(chat.Closed, Task.Delay(goodbyeTimeout));
    }

    /// Failover found no node before its deadline.
    public void GiveUp(string reason)
    {
        lock (gate) Step(ClientSessionEvent.NewFailoverAbandoned(reason));
    }

    // -----------------------------------------------------------------------------------------
    // Events from the connections, and the session's effects.

    private void OnReply(ChatSession chat, ServerReply reply, bool silent)
    {
        lock (gate) Step(ClientSessionEvent.NewReplyReceived(chat.Id, reply, silent));
    }

    private void OnClosed(ChatSession chat)
    {
        lock (gate)
        {
            links.Remove(chat.Id);
            Step(ClientSessionEvent.NewConnectionClosed(chat.Id, chat.CloseReason, chat.EndedByError));
        }
    }

    /// The connection the session is on once welcomed; callers hold the gate.
    private ChatSession? InUse()
    {
        var link = ClientSession.connectedLink(session);
        return link is not null && links.TryGetValue(link.Value, out var chat) ? chat : null;
    }

    /// Callers hold the gate.
    private void Step(ClientSessionEvent input)
    {
        var wasOnline = ClientSession.isOnline(session);
        var (next, effects) = ClientSession.step(input, session);
        session = next;
        foreach (var effect in effects) CarryOut(effect);
        if (!wasOnline && ClientSession.isOnline(session))
        {
            wentOnline.TrySetResult();
            wentOnline = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        UpdatePrompt();
    }

    private void CarryOut(ClientSessionEffect effect)
    {
        switch (effect)
        {
            case ClientSessionEffect.Send { request: ClientRequest.Hello hello } send:
                if (links.TryGetValue(send.link, out var greeting)) greeting.Start(WithPassword(hello.Item));
                break;
            case ClientSessionEffect.Send send:
                if (links.TryGetValue(send.link, out var chat)) chat.Send(send.request);
                break;
            case ClientSessionEffect.RefreshCandidates refresh:
                if (links.TryGetValue(refresh.link, out var polled)) _ = polled.StatusAsync();
                break;
            case ClientSessionEffect.Sync sync:
                // The answer comes back as a silent reply, which the session takes as the sync's.
                if (links.TryGetValue(sync.link, out var synced)) _ = synced.SyncAsync();
                break;
            case ClientSessionEffect.Show show:
                printer.Reply(show.Item);
                break;
            case ClientSessionEffect.ShowAcknowledged acknowledged:
                printer.Acknowledged(acknowledged.Item);
                break;
            case ClientSessionEffect.ShowReconnected reconnected:
                printer.Reconnected(reconnected.Item);
                break;
            case ClientSessionEffect.ShowRoomSwitched switched:
                printer.RoomSwitched(switched.room.Value);
                break;
            case ClientSessionEffect.ShowError error:
                printer.ClientError(error.code, error.reason);
                break;
            case ClientSessionEffect.FailOver failOver:
                _ = Task.Run(() => Failover.RunAsync(this, failOver.Item));
                break;
            case ClientSessionEffect.End end:
                gaveUp.TrySetResult(end.reason);
                break;
        }
    }

    private void UpdatePrompt()
    {
        var next = ClientSession.prompt(session);
        if (next == prompt) return;
        prompt = next;
        editor?.SetPrompt(next);
    }
}
