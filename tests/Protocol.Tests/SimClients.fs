/// Simulated chat clients for ReplicationSimulation.fs, doing what Client.CSharp does across a
/// failover (ResumeState.cs, ChatClient.cs):
/// - hello with the session token of the last welcome and, per room, the last seq shown;
/// - after the welcome a silent sync (who), then every unconfirmed send again, with its client
///   message id, in id order; new sends wait until then;
/// - a message is shown only when its seq is above the last shown in its room, and our own
///   message coming back sequenced is the acknowledgement of that send, shown or not;
/// - a dead connection, a close, a hello without a welcome, or unconfirmed sends that make no
///   progress for a while: reconnect to another live node (or where a redirect said);
/// - now and then, for no reason, move to another node (a client restarting).
module FormalChat.Protocol.Tests.SimClients

open System
open System.Collections.Generic
open FormalChat.Protocol
open FormalChat.Protocol.Tests.SimNetwork
open FormalChat.Protocol.Tests.SimChecks

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
      /// The rooms it joins besides #lobby.
      Extra: RoomName list
      mutable Session: string option
      LastShown: Dictionary<RoomName, int64>
      Joined: SortedSet<RoomName>
      Joining: SortedSet<RoomName>
      /// Sends not yet acknowledged: id -> (room, text).
      Unconfirmed: SortedDictionary<int64, struct (RoomName * string)>
      mutable NextId: int64
      mutable Conn: Conn option
      mutable Phase: Phase
      /// The last acknowledgement or welcome, or the first send after a quiet spell.
      mutable LastProgress: Time
      /// A redirect's target, for the next connection.
      mutable Redirect: NodeId option
      mutable LastNode: NodeId option
      /// (sender, client message id) of every message shown: (4).
      ShownPosts: HashSet<struct (string * int64)>
      Stats: ClientStats }

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
    { Index = index
      Nick = $"u{index}"
      Extra = extra
      Session = None
      LastShown = Dictionary()
      Joined = SortedSet([ Rooms.lobby ], StringComparer.Ordinal)
      Joining = SortedSet(StringComparer.Ordinal)
      Unconfirmed = SortedDictionary()
      NextId = 1L
      Conn = None
      Phase = Idle 0L
      LastProgress = 0L
      Redirect = None
      LastNode = None
      ShownPosts = HashSet()
      Stats = stats }

let lastShown (client: SimClient) (room: RoomName) : int64 =
    match client.LastShown.TryGetValue room with
    | true, seq -> seq
    | _ -> 0L

let describe (client: SimClient) : string =
    let conn = client.Conn |> Option.map (fun c -> $"conn {c.Id} to node {c.Node}") |> Option.defaultValue "no connection"
    let shown = client.LastShown |> Seq.map (fun (KeyValue(room, seq)) -> $"{room}:{seq}") |> String.concat " "
    let unconfirmed = client.Unconfirmed |> Seq.map (fun (KeyValue(id, struct (room, _))) -> $"{room}/{id}") |> String.concat " "
    $"  client {client.Index} {client.Nick}: {conn}, %A{client.Phase}, joined {List.ofSeq client.Joined} joining {List.ofSeq client.Joining}, shown [{shown}], unconfirmed [{unconfirmed}]"

let private hello (client: SimClient) : HelloRequest =
    match client.Session with
    | None -> { Nick = client.Nick; Session = None; Resume = [] }
    | Some session ->
        let rooms = Seq.append client.Joined client.Joining |> Seq.distinct |> Seq.sort |> List.ofSeq
        { Nick = client.Nick; Session = Some session; Resume = [ for room in rooms -> room, lastShown client room ] }

/// Where a redirect said; else a live node other than the one just left: half the time the
/// least loaded (as NodeChoice ranks a /status answer, so a node that has just restarted is a
/// favourite), else any.
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

let private connect (net: Net) (client: SimClient) (id: NodeId) : unit =
    let conn = openConn net client.Index id
    client.Conn <- Some conn
    client.LastNode <- Some id
    client.Redirect <- None
    client.Phase <- Connecting net.Now
    client.Stats.Connections <- client.Stats.Connections + 1
    sendToNode net conn (Request(Hello(hello client)))

/// Gives the connection up (if any) and connects again a little later.
let private dropConnection (net: Net) (client: SimClient) (why: string) : unit =
    match client.Conn with
    | Some conn ->
        note net $"client {client.Index} leaves conn {conn.Id} to node {conn.Node}: {why}"
        closeConn net conn
    | None -> ()
    client.Conn <- None
    client.Phase <- Idle(net.Now + int64 (between net.Random 10 300))

let private send (net: Net) (client: SimClient) (id: int64) (room: RoomName) (text: string) : unit =
    match client.Conn with
    | Some conn -> sendToNode net conn (Request(Say(room, text, id)))
    | None -> ()

let private sendNew (net: Net) (client: SimClient) : unit =
    let rooms = Seq.append client.Joined client.Joining |> Seq.distinct |> Seq.sort |> Array.ofSeq
    let room = rooms[net.Random.Next rooms.Length]
    let id = client.NextId
    client.NextId <- id + 1L
    let text = $"{client.Nick} says {id}"
    if client.Unconfirmed.Count = 0 then client.LastProgress <- net.Now
    client.Unconfirmed[id] <- struct (room, text)
    client.Stats.Sent <- client.Stats.Sent + 1
    send net client id room text

/// The client's own timer: reconnects, timeouts, and (unless the run is ending) new messages.
let wake (net: Net) (timing: ClientTiming) (sending: bool) (client: SimClient) : unit =
    let interval = int64 net.Timing.IntervalMs
    match client.Phase with
    | Idle retryAt when net.Now >= retryAt ->
        match chooseNode net client with
        | Some id -> connect net client id
        | None -> client.Phase <- Idle(net.Now + interval)
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

let private received (net: Net) (ledger: Ledger) (client: SimClient) (m: RoomMessage) : unit =
    let who = $"client {client.Index} ({client.Nick})"
    let last = lastShown client m.Room
    if m.Seq > last then
        if not (client.ShownPosts.Add(struct (m.From, m.ClientMessageId))) then
            broken $"(4) duplicate: {who} shows {describeMessage m}, a message it has already shown"
        seen ledger who m
        if last > 0L && m.Seq > last + 1L then client.Stats.Gaps <- client.Stats.Gaps + 1
        client.LastShown[m.Room] <- m.Seq
        client.Stats.Shown <- client.Stats.Shown + 1
    else
        client.Stats.Skipped <- client.Stats.Skipped + 1
    if m.From = client.Nick && m.ClientMessageId <> 0L then
        match client.Unconfirmed.TryGetValue m.ClientMessageId with
        | true, struct (room, text) ->
            if room <> m.Room || text <> m.Text then
                broken $"{who} sent \"{text}\" to {room} as id {m.ClientMessageId} and got back {describeMessage m}"
            client.Unconfirmed.Remove m.ClientMessageId |> ignore
            acknowledged ledger who m
            client.LastProgress <- net.Now
            client.Stats.Acked <- client.Stats.Acked + 1
        | _ -> ()

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
                match reply with
                | Welcome(_, _, _, session) ->
                    if client.Session.IsNone then
                        for room in client.Extra do
                            if not (client.Joined.Contains room) then
                                client.Joining.Add room |> ignore
                                sendToNode net conn (Request(Join room))
                    client.Session <- Some session
                    client.Phase <- CatchingUp
                    client.LastProgress <- net.Now
                    sendToNode net conn (Request(Who None))
                | Joined(room, _, _) ->
                    client.Joining.Remove room |> ignore
                    client.Joined.Add room |> ignore
                | Message m -> received net ledger client m
                | WhoListed(None, _) when client.Phase = CatchingUp ->
                    for KeyValue(id, struct (room, text)) in client.Unconfirmed do
                        client.Stats.Resent <- client.Stats.Resent + 1
                        send net client id room text
                    client.Phase <- Ready
                | Error(code, reason) ->
                    client.Stats.Refusals <- client.Stats.Refusals + 1
                    note net $"client {client.Index} refused by node {conn.Node}: {code} {reason}"
                    match client.Phase with
                    | Connecting _ -> dropConnection net client $"hello refused: {reason}"
                    | _ -> ()
                | Redirected(id, _, _) ->
                    client.Stats.Redirects <- client.Stats.Redirects + 1
                    client.Redirect <- Some id
                | _ -> ()
                loop rest
    loop items

/// The node died under the connection.
let lost (net: Net) (client: SimClient) (conn: Conn) : unit =
    if client.Conn |> Option.exists (fun c -> c.Id = conn.Id) then
        conn.ClosedAtClient <- true
        dropConnection net client $"connection to node {conn.Node} lost"
