/// The simulated chat clients of ReplicationSimulation.fs: each is the client's own session core
/// (Protocol.FSharp/ClientSession.fs, the one Client.CSharp runs) inside a small shell that does
/// with simulated connections what ChatClient.cs does with sockets:
/// - opens a connection and steps ConnectionOpened (the session says hello, resuming);
/// - hands every frame of the connection in use to the session; answers the Sync effect with a
///   `who` (the session then re-sends what was not acknowledged, with the same ids);
/// - gives a connection up when it dies, when the node closes it, when the hello is refused or
///   not welcomed in time, or when sends make no progress for a while (ChatClient's status
///   deadline), and connects again a little later: where a redirect said, else to another
///   live node (half the time the least loaded, else any: the simulator's choice);
/// - now and then, for no reason, moves to another node (a client restarting).
/// What a session shows is checked against the ledger (SimChecks.fs): no duplicate, and every
/// acknowledgement is of the line sent with that id.
module FormalChat.Protocol.Tests.SimClientShell

open System.Collections.Generic
open FormalChat.Protocol
open FormalChat.Protocol.Tests.SimNetwork
open FormalChat.Protocol.Tests.SimChecks

/// The shell's view of a client, for reports and the end of a run.
type Phase =
    /// No connection; connects again at this time.
    | Idle of retryAt: Time
    | Connecting of since: Time
    /// Welcomed; waiting for the answer to the sync before sending again.
    | CatchingUp
    | Ready

type ClientStats =
    { mutable Sent: int
      mutable Acked: int
      mutable Shown: int
      mutable Resent: int
      mutable Connections: int
      mutable Timeouts: int
      mutable Refusals: int
      mutable Redirects: int
      mutable Skipped: int
      mutable Switches: int
      mutable Gaps: int }

let newClientStats () =
    { Sent = 0
      Acked = 0
      Shown = 0
      Resent = 0
      Connections = 0
      Timeouts = 0
      Refusals = 0
      Redirects = 0
      Skipped = 0
      Switches = 0
      Gaps = 0 }

type SimClient =
    { Index: int
      Nick: string
      /// The rooms it joins besides #lobby, after its first welcome.
      Extra: RoomName list
      mutable Session: ClientSessionState
      /// Extra, until the first welcome has been answered with the joins.
      mutable JoinsAfterWelcome: RoomName list
      mutable Conn: Conn option
      /// When an idle client connects again.
      mutable RetryAt: Time
      /// When the current connection was opened.
      mutable ConnectedAt: Time
      /// The last acknowledgement or welcome, or the first send after a quiet spell.
      mutable LastProgress: Time
      /// A redirect's target, for the next connection.
      mutable Redirect: NodeId option
      mutable LastNode: NodeId option
      /// Rooms.idKey (sender, node, message id) of every message shown: (4).
      ShownPosts: HashSet<Rooms.PostKey>
      Stats: ClientStats }

    member client.Phase: Phase =
        match client.Session.Link with
        | Offline -> Idle client.RetryAt
        | Greeting _ -> Connecting client.ConnectedAt
        | Link.CatchingUp _ -> CatchingUp
        | Online _ -> Ready

    member client.Unconfirmed = client.Session.Unconfirmed
    member client.Joined = client.Session.Joined
    member client.Joining = client.Session.Joining

/// Timeouts, in heartbeat intervals.
type ClientTiming =
    { WelcomeTimeout: int
      ProgressTimeout: int
      WakeMin: int
      WakeMax: int
      SendChance: float
      /// Chance a ready client, when it wakes, leaves its node for another one (a client that
      /// restarts, a laptop that wakes up): resumes and retries without any fault.
      SwitchChance: float
      MaxUnconfirmed: int }

let createClient (index: int) (extra: RoomName list) (stats: ClientStats) : SimClient =
    let nick = $"u{index}"
    { Index = index
      Nick = nick
      Extra = extra
      Session = ClientSession.create nick 1L
      JoinsAfterWelcome = extra
      Conn = None
      RetryAt = 0L
      ConnectedAt = 0L
      LastProgress = 0L
      Redirect = None
      LastNode = None
      ShownPosts = HashSet()
      Stats = stats }

let lastShown (client: SimClient) (room: RoomName) : int64 = ClientSession.lastSeqShown room client.Session

let describe (client: SimClient) : string =
    let conn = client.Conn |> Option.map (fun c -> $"conn {c.Id} to node {c.Node}") |> Option.defaultValue "no connection"
    let session = client.Session
    let shown = session.LastSeqShown |> Seq.map (fun (KeyValue(room, seq)) -> $"{room}:{seq}") |> String.concat " "
    let unconfirmed = session.Unconfirmed |> Seq.map (fun (KeyValue(id, pending)) -> $"{pending.Room}/{id}") |> String.concat " "
    $"  client {client.Index} {client.Nick}: {conn}, %A{client.Phase}, joined {Set.toList session.Joined} joining {Set.toList session.Joining}, shown [{shown}], unconfirmed [{unconfirmed}]"

/// Where a redirect said; else a live node other than the one just left: half the time the
/// least loaded (as ClientSession.rank ranks a /status answer, so a node that has just
/// restarted is a favourite), else any.
let private chooseNode (net: Net) (client: SimClient) : NodeId option =
    match client.Redirect with
    | Some id when (node net id).Up -> Some id
    | _ ->
        let live = liveNodes net
        let candidates =
            match live |> List.filter (fun n -> Some n.Id <> client.LastNode) with
            | [] -> live
            | others -> others
        match candidates with
        | [] -> None
        | _ when chance net.Random 0.5 -> Some (candidates |> List.minBy (fun n -> n.OpenConns.Count, n.Id)).Id
        | _ -> Some candidates[net.Random.Next candidates.Length].Id

/// The session's effects, carried out in order on the simulated connection in use.
let rec private carryOut (net: Net) (client: SimClient) (effects: ClientSessionEffect list) : unit =
    for effect in effects do
        match effect, client.Conn with
        | Send(link, request), Some conn when conn.Id = link -> sendToNode net conn (Request request)
        | Sync link, Some conn when conn.Id = link ->
            // After the first welcome the user joins the extra rooms (before the sync goes).
            let joins = client.JoinsAfterWelcome
            client.JoinsAfterWelcome <- []
            for room in joins do
                stepSession net client (RequestSubmitted(Join room.Value))
            sendToNode net conn (Request(Who None))
        | FailOver plan, _ -> client.Redirect <- plan.Redirect |> Option.map _.Node
        | End reason, _ -> broken $"client {client.Index} ({client.Nick}) ended its session: {reason}"
        | _ -> ()

and private stepSession (net: Net) (client: SimClient) (event: ClientSessionEvent) : unit =
    let session, effects = ClientSession.step event client.Session
    client.Session <- session
    carryOut net client effects

let private connect (net: Net) (client: SimClient) (id: NodeId) : unit =
    let conn = openConn net client.Index id
    client.Conn <- Some conn
    client.LastNode <- Some id
    client.Redirect <- None
    client.ConnectedAt <- net.Now
    client.Stats.Connections <- client.Stats.Connections + 1
    stepSession net client (ConnectionOpened conn.Id)

/// Gives the connection up (if any) and connects again a little later.
let private dropConnection (net: Net) (client: SimClient) (why: string) : unit =
    match client.Conn with
    | Some conn ->
        note net $"client {client.Index} leaves conn {conn.Id} to node {conn.Node}: {why}"
        closeConn net conn
        stepSession net client (ConnectionClosed(conn.Id, why, false))
    | None -> ()
    client.Conn <- None
    client.RetryAt <- net.Now + int64 (between net.Random 10 300)

let private sendNew (net: Net) (client: SimClient) : unit =
    let rooms = Set.union client.Session.Joined client.Session.Joining |> Array.ofSeq
    let room = rooms[net.Random.Next rooms.Length]
    if client.Session.Unconfirmed.IsEmpty then client.LastProgress <- net.Now
    client.Stats.Sent <- client.Stats.Sent + 1
    stepSession net client (SayRequested(room, $"{client.Nick} says {client.Session.NextMessageId}"))

/// The client's own timer: reconnects, timeouts, and (unless the run is ending) new messages.
let wake (net: Net) (timing: ClientTiming) (sending: bool) (client: SimClient) : unit =
    let interval = int64 net.Timing.IntervalMs
    match client.Phase with
    | Idle retryAt when net.Now >= retryAt ->
        match chooseNode net client with
        | Some id -> connect net client id
        | None -> client.RetryAt <- net.Now + interval
    | Idle _ -> ()
    | Connecting since when net.Now - since > int64 timing.WelcomeTimeout * interval ->
        client.Stats.Timeouts <- client.Stats.Timeouts + 1
        dropConnection net client "no welcome"
    | Connecting _ -> ()
    | CatchingUp
    | Ready when client.Unconfirmed.Count > 0 && net.Now - client.LastProgress > int64 timing.ProgressTimeout * interval ->
        client.Stats.Timeouts <- client.Stats.Timeouts + 1
        dropConnection net client $"no progress for {net.Now - client.LastProgress} ms"
    | Ready when chance net.Random timing.SwitchChance ->
        client.Stats.Switches <- client.Stats.Switches + 1
        dropConnection net client "moves to another node"
    | Ready when sending && client.Unconfirmed.Count < timing.MaxUnconfirmed && chance net.Random timing.SendChance -> sendNew net client
    | CatchingUp
    | Ready -> ()
    after net (between net.Random (timing.WakeMin * net.Timing.IntervalMs / 100) (timing.WakeMax * net.Timing.IntervalMs / 100)) (ClientWakes client.Index)

/// A sequenced message through the session, checked against the ledger: what it shows is new
/// to it, and what it takes as an acknowledgement is the line it sent with that id.
let private received (net: Net) (ledger: Ledger) (client: SimClient) (conn: Conn) (m: RoomMessage) : unit =
    let who = $"client {client.Index} ({client.Nick})"
    let last = lastShown client m.Room
    let pending = client.Session.Unconfirmed.TryFind m.ClientMessageId
    let session, effects = ClientSession.step (ReplyReceived(conn.Id, Message m, false)) client.Session
    client.Session <- session
    let mutable shown = false
    for effect in effects do
        match effect with
        | Show(Message m) ->
            shown <- true
            if not (client.ShownPosts.Add(Rooms.idKey m.From m.FromNode m.ClientMessageId)) then
                broken $"(4) duplicate: {who} shows {describeMessage m}, a message it has already shown"
            seen ledger who m
            if last > 0L && m.Seq > last + 1L then client.Stats.Gaps <- client.Stats.Gaps + 1
            client.Stats.Shown <- client.Stats.Shown + 1
        | ShowAcknowledged m ->
            match pending with
            | Some pending when pending.Room = m.Room && pending.Text = m.Text -> ()
            | Some pending -> broken $"{who} sent \"{pending.Text}\" to {pending.Room} as id {m.ClientMessageId} and got back {describeMessage m}"
            | None -> broken $"{who} took {describeMessage m} as the acknowledgement of a send it did not have"
            acknowledged ledger who m
            client.LastProgress <- net.Now
            client.Stats.Acked <- client.Stats.Acked + 1
        | _ -> ()
    if not shown then client.Stats.Skipped <- client.Stats.Skipped + 1

let private replied (net: Net) (ledger: Ledger) (client: SimClient) (conn: Conn) (reply: ServerReply) : unit =
    match reply with
    | Message m -> received net ledger client conn m
    | Welcome _ ->
        client.LastProgress <- net.Now
        stepSession net client (ReplyReceived(conn.Id, reply, false))
    | WhoListed(None, _) ->
        // Only the shell asks `who` for everyone, to sync: silent.
        let session, effects = ClientSession.step (ReplyReceived(conn.Id, reply, true)) client.Session
        client.Session <- session
        let resent = effects |> List.filter (function Send(_, Say _) -> true | _ -> false) |> List.length
        client.Stats.Resent <- client.Stats.Resent + resent
        carryOut net client effects
    | ErrorReply(code, reason) ->
        client.Stats.Refusals <- client.Stats.Refusals + 1
        note net $"client {client.Index} refused by node {conn.Node}: {code} {reason}"
        let greeting = (match client.Session.Link with Greeting _ -> true | _ -> false)
        stepSession net client (ReplyReceived(conn.Id, reply, false))
        if greeting then dropConnection net client $"hello refused: {reason}"
    | Redirected _ ->
        client.Stats.Redirects <- client.Stats.Redirects + 1
        stepSession net client (ReplyReceived(conn.Id, reply, false))
    | _ -> stepSession net client (ReplyReceived(conn.Id, reply, false))

/// What arrived on a connection, in order. Only the current connection is read.
let read (net: Net) (ledger: Ledger) (client: SimClient) (conn: Conn) (items: ToClient list) : unit =
    let rec loop (items: ToClient list) =
        match items with
        | [] -> ()
        | _ when not (client.Conn |> Option.exists (fun c -> c.Id = conn.Id)) -> ()
        | item :: rest ->
            match item with
            | Closed reason ->
                conn.ClosedAtClient <- true
                dropConnection net client $"closed by node {conn.Node}: {reason}"
            | Reply reply ->
                replied net ledger client conn reply
                loop rest
    loop items

/// The node died under the connection.
let lost (net: Net) (client: SimClient) (conn: Conn) : unit =
    if client.Conn |> Option.exists (fun c -> c.Id = conn.Id) then
        conn.ClosedAtClient <- true
        dropConnection net client $"connection to node {conn.Node} lost"
