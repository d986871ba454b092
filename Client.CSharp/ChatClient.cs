using FormalChat.CommandLine;
using FormalChat.Protocol;

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

/// The chat client across connections: what the user has joined and seen (ResumeState), who
/// and which nodes it knows, and the one connection in use. Every reply from every connection
/// passes through OnReply under one lock, so printing and bookkeeping stay in order. Failover
/// (Failover.cs) replaces the connection when it dies; the user's commands come in by Submit.
public sealed class ChatClient
{
    private static readonly TimeSpan StatusInterval = TimeSpan.FromSeconds(3);
    /// A node that leaves a /status unanswered this long is taken for dead (hung, not crashed).
    private static readonly TimeSpan StatusDeadline = TimeSpan.FromSeconds(8);

    private readonly IEventPrinter printer;
    private readonly LineEditor? editor;
    private readonly Lock gate = new();
    private readonly ResumeState resume;
    private readonly HashSet<string> knownNicks = new(StringComparer.Ordinal);
    /// Rooms whose `joined` answers the resume hello; the reconnect line already told the user.
    private readonly HashSet<string> quietJoins = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource<string> gaveUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IReadOnlyList<NodeCandidate> knownNodes = [];
    private ChatSession? current;
    private ChatSession? attempting;
    private int currentNode;
    /// Set while a failover is under way: the report to print when the new node welcomes us.
    private ReconnectReport? reconnecting;
    private IReadOnlyList<(string Room, long Seq)> attemptedResume = [];
    /// Between a resume's welcome and the re-sending of unconfirmed messages: new sends wait.
    private bool catchingUp;
    private (int Node, Endpoint Client, string Reason)? redirect;
    private bool quitting;

    public ChatClient(ClientOptions options, IEventPrinter printer, LineEditor? editor, long firstMessageId)
    {
        Options = options;
        this.printer = printer;
        this.editor = editor;
        resume = new ResumeState(options.Nick, firstMessageId);
        UpdatePrompt();
    }

    public ClientOptions Options { get; }

    /// Completes with the reason when the client cannot go on: failover gave up, or the node
    /// ended the session with an error that a reconnect would meet again.
    public Task<string> Ended => gaveUp.Task;

    public string CurrentRoom
    {
        get { lock (gate) return resume.CurrentRoom; }
    }

    public bool IsKnownNick(string nick)
    {
        lock (gate) return knownNicks.Contains(nick);
    }

    public IReadOnlyList<NodeCandidate> KnownNodes
    {
        get { lock (gate) return knownNodes; }
    }

    public void AddKnownNodes(IEnumerable<NodeCandidate> nodes)
    {
        lock (gate) knownNodes = NodeChoice.Rank(nodes.Concat(knownNodes));
    }

    // -----------------------------------------------------------------------------------------
    // Connecting.

    /// Connects and says hello (resuming if the client has a session); the attempt's welcome
    /// is handled by OnReply, which makes the connection the current one.
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
        var session = new ChatSession(connection, server, OnReply);
        HelloRequest hello;
        lock (gate)
        {
            attempting = session;
            hello = resume.Hello();
            attemptedResume = resume.SessionToken is null ? [] : resume.ResumePoints();
        }
        _ = session.Closed.ContinueWith(closed => OnClosed(session), TaskScheduler.Default);
        session.Start(hello);
        ServerReply? answer;
        try
        {
            answer = await session.Welcomed.WaitAsync(welcomeTimeout);
        }
        catch (TimeoutException)
        {
            answer = null;
        }
        lock (gate)
        {
            if (attempting == session) attempting = null;
            if (current == session) return new Attempt(AttemptOutcome.Welcomed, "", session);
        }
        session.Dispose();
        return answer switch
        {
            ServerReply.Error { code.IsNickTaken: true } error => new Attempt(AttemptOutcome.NickTaken, error.reason),
            ServerReply.Error error => new Attempt(AttemptOutcome.Refused, error.reason),
            null when session.Closed.IsCompleted => new Attempt(AttemptOutcome.Unreachable, $"{server}: {session.Closed.Result}"),
            _ => new Attempt(AttemptOutcome.Unreachable, $"{server}: no welcome within {welcomeTimeout.TotalSeconds:0.#} s"),
        };
    }

    /// After a welcome: re-send what was not confirmed (once the node's replay has been read,
    /// so what the replay confirmed is not sent again), then keep the node list fresh.
    public async Task AfterWelcomeAsync(ChatSession session)
    {
        _ = session.StatusAsync();
        await Task.WhenAny(session.SyncAsync(), session.Closed);
        lock (gate)
        {
            if (current != session) return;
            foreach (var pending in resume.Unconfirmed) session.Send(pending.Request);
            catchingUp = false;
        }
    }

    /// Every few seconds a silent /status: the known nodes stay current for a failover, and a
    /// node that stops answering is left as if it had crashed.
    public async Task PollStatusAsync()
    {
        while (!gaveUp.Task.IsCompleted)
        {
            ChatSession? session;
            // AfterWelcomeAsync asked once already; from then on, every StatusInterval.
            await Task.WhenAny(Task.Delay(StatusInterval), gaveUp.Task);
            lock (gate) session = quitting ? null : current;
            if (session is not null)
            {
                var status = session.StatusAsync();
                await Task.WhenAny(status, session.Closed, Task.Delay(StatusDeadline));
                if (!status.IsCompleted && !session.Closed.IsCompleted)
                    session.Close($"node {currentNode} left a status request unanswered for {StatusDeadline.TotalSeconds:0} s");
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
                case Speak speak when !resume.CanSpeakIn(speak.Room):
                    printer.ClientError("bad-command", $"you are not in {speak.Room}; /join {speak.Room} first");
                    break;
                case Speak speak:
                    // Kept until it comes back sequenced; while reconnecting it waits for the resume.
                    var pending = resume.Sent(speak.Room, speak.Text);
                    if (current is not null && !catchingUp) current.Send(pending.Request);
                    break;
                case SwitchRoom switchRoom:
                    if (!resume.SwitchTo(switchRoom.Room))
                        printer.ClientError("bad-command", $"you are not in {switchRoom.Room}; /join {switchRoom.Room} first");
                    else printer.RoomSwitched(switchRoom.Room);
                    UpdatePrompt();
                    break;
                case SendRequest send when current is null:
                    printer.ClientError("not-connected", "reconnecting to the cluster; try again in a moment");
                    break;
                case SendRequest send:
                    if (send.Request is ClientRequest.Join join)
                    {
                        resume.JoinAsked(join.room);
                        UpdatePrompt();
                    }
                    current.Send(send.Request);
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
            ChatSession? session;
            lock (gate) session = current is not null && !catchingUp && resume.Unconfirmed.Count == 0 ? current : null;
            if (session is not null)
            {
                var answered = session.SyncAsync();
                var remaining = deadline - DateTime.UtcNow;
                await Task.WhenAny(answered, session.Closed, Task.Delay(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero));
                lock (gate)
                {
                    if (answered.IsCompleted && resume.Unconfirmed.Count == 0) return true;
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
        ChatSession? session;
        lock (gate)
        {
            quitting = true;
            session = current;
        }
        if (session is null || session.Closed.IsCompleted) return;
        session.Send(ClientRequest.Quit);
        await Task.WhenAny(session.Closed, Task.Delay(goodbyeTimeout));
    }

    public bool IsQuitting
    {
        get { lock (gate) return quitting; }
    }

    // -----------------------------------------------------------------------------------------
    // Failover bookkeeping (Failover.cs drives it).

    /// Taken when the current connection is lost: the node to avoid, the redirect (if any), why.
    public (int Previous, (int Node, Endpoint Client, string Reason)? Redirect) BeginReconnect(string reason)
    {
        lock (gate)
        {
            var redirected = redirect;
            redirect = null;
            reconnecting = new ReconnectReport(0, currentNode, redirected is not null, redirected?.Reason ?? reason, []);
            UpdatePrompt();
            return (currentNode, redirected);
        }
    }

    public void GiveUp(string reason)
    {
        lock (gate) reconnecting = null;
        gaveUp.TrySetResult(reason);
    }

    // -----------------------------------------------------------------------------------------
    // Replies, from whichever connection sent them.

    private void OnReply(ChatSession session, ServerReply reply, bool silent)
    {
        lock (gate)
        {
            if (session != current)
            {
                if (session == attempting) OnAttemptReply(session, reply);
                return;
            }
            Show(reply, silent);
        }
    }

    /// Before the welcome: the welcome makes the attempt the current connection. A refusal is
    /// shown only on the first connection; a failover tries again or elsewhere.
    private void OnAttemptReply(ChatSession session, ServerReply reply)
    {
        switch (reply)
        {
            case ServerReply.Welcome welcome:
                current = session;
                attempting = null;
                currentNode = welcome.node;
                resume.Welcomed(welcome.session);
                knownNicks.Add(welcome.nick);
                var report = reconnecting;
                reconnecting = null;
                UpdatePrompt();
                if (report is null)
                {
                    printer.Reply(reply);
                    break;
                }
                catchingUp = true;
                quietJoins.UnionWith(attemptedResume.Select(point => point.Room));
                printer.Reconnected(report with { Node = welcome.node, Resumed = attemptedResume });
                break;
            case ServerReply.Error when resume.SessionToken is null:
                printer.Reply(reply);
                break;
        }
    }

    private void Show(ServerReply reply, bool silent)
    {
        switch (reply)
        {
            case ServerReply.Message { Item: var message }:
                var delivery = resume.Received(message);
                knownNicks.Add(message.From);
                if (delivery.Show) printer.Reply(reply);
                if (delivery.Acknowledged) printer.Acknowledged(message);
                return;
            case ServerReply.Joined joined:
                resume.RoomJoined(joined.room);
                if (!quietJoins.Remove(joined.room)) printer.Reply(reply);
                return;
            case ServerReply.LeftRoom left:
                resume.RoomLeft(left.room);
                UpdatePrompt();
                printer.Reply(reply);
                return;
            case ServerReply.WhoListed who:
                if (who.room is null)
                {
                    knownNicks.Clear();
                    knownNicks.Add(resume.Nick);
                }
                foreach (var user in who.users) knownNicks.Add(user.Nick);
                break;
            case ServerReply.StatusReported { Item: var status }:
                knownNodes = NodeChoice.Rank(NodeChoice.FromStatus(status));
                break;
            case ServerReply.Redirected redirected:
                // The node closes the connection next; Failover goes to this node first.
                redirect = (redirected.node, redirected.client, redirected.reason);
                break;
            case ServerReply.Private { Item: var line }:
                knownNicks.Add(line.From);
                break;
            case ServerReply.Notice notice:
                RememberPresence(notice.text);
                break;
        }
        if (!silent) printer.Reply(reply);
    }

    /// Presence notices read "<nick> joined ..." and "<nick> left ..." (Node.fs).
    private void RememberPresence(string text)
    {
        var words = text.Split(' ', 3);
        if (words.Length < 2 || Chat.validateNick(words[0]).IsError) return;
        if (words[1] == "joined") knownNicks.Add(words[0]);
        else if (words[1] == "left") knownNicks.Remove(words[0]);
    }

    /// The current connection ended. After /quit that is the end; after an error from the node
    /// it is too (the node meant it); otherwise the client fails over.
    private void OnClosed(ChatSession session)
    {
        lock (gate)
        {
            if (session != current) return;
            current = null;
            catchingUp = false;
            if (quitting) return;
            if (session.EndedByError && redirect is null)
            {
                gaveUp.TrySetResult(session.CloseReason);
                return;
            }
        }
        _ = Task.Run(() => Failover.RunAsync(this, session.CloseReason));
    }

    private void UpdatePrompt()
    {
        var state = reconnecting is not null ? " (reconnecting)" : "";
        editor?.SetPrompt($"{resume.Nick} {resume.CurrentRoom}{state}> ");
    }
}
