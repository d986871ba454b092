/// One user's chat session across connections, as a pure step: what the client must carry over
/// a failover (the session token, the rooms it is in, the last sequence number it showed per
/// room, the posts not yet acknowledged with their client message ids), which connection it is
/// on, and where to go when that connection dies. The shell (Client.CSharp's ChatClient, and
/// the simulator's SimClientShell) opens connections, reads frames, keeps time and carries out
/// the effects in order; connections are named by ids the shell gives them, so a frame from a
/// connection the session has left is recognised and dropped here.
namespace FormalChat.Protocol

/// A node the client could connect to, with the client count it last reported.
type NodeCandidate = { Id: NodeId; Client: Endpoint; Clients: int }

/// A line the user said that has not yet come back sequenced (its acknowledgement).
type PendingSay = { Id: int64; Room: RoomName; Text: string }

/// A connection, as the shell numbers them.
type LinkId = int64

type Link =
    | Offline
    /// Hello sent on this connection; no welcome yet.
    | Greeting of link: LinkId
    /// Welcomed; new posts wait until the node has answered the sync, so the replay it sends
    /// first confirms what it can before the unconfirmed posts are sent again.
    | CatchingUp of link: LinkId * node: NodeId
    | Online of link: LinkId * node: NodeId

/// Where a node that sheds load told the client to go.
type RedirectTarget = { Node: NodeId; Client: Endpoint; Reason: string }

/// What a failover did, told to the user in one line: where the client is now, where it was,
/// why it moved, and where each room resumed.
type ReconnectReport =
    { Node: NodeId
      Previous: NodeId
      Redirected: bool
      Reason: string
      Resumed: (RoomName * int64) list }

    /// "reconnected to node 2 after node 3 failed; resumed #lobby from 1042, #dev from 7", or
    /// "moved to node 2 (redirected: <reason>); resumed #lobby from 1042".
    member report.Describe() : string =
        let resumed = report.Resumed |> List.map (fun (room, seq) -> $"{room} from {seq}") |> String.concat ", "
        let moved =
            if report.Redirected then $"moved to node {report.Node} (redirected: {report.Reason})"
            else $"reconnected to node {report.Node} after node {report.Previous} failed"
        if resumed = "" then moved else $"{moved}; resumed {resumed}"

/// The shell's cue to find another node: the one that failed (tried last), and a redirect's
/// target (tried first). ClientSession.failoverTargets orders the candidates.
type FailoverPlan = { Previous: NodeId; Redirect: RedirectTarget option; Reason: string }

type ClientSessionState =
    { Nick: string
      /// The token of the last welcome; None before the first one.
      Token: string option
      /// Where a plain line goes; always a joined room (or one being joined).
      CurrentRoom: RoomName
      Joined: Set<RoomName>
      /// Joins sent and not yet answered. The node answers in order, so a line for such a room,
      /// sent after the join, is accepted: scripts need not wait for `joined`.
      Joining: Set<RoomName>
      LastSeqShown: Map<RoomName, int64>
      /// By client message id, so they are sent again in the order they were first sent.
      Unconfirmed: Map<int64, PendingSay>
      NextMessageId: int64
      Link: Link
      /// The node of the last welcome.
      Node: NodeId option
      /// Known nodes, best first (ClientSession.rank): from discovery and from /status answers.
      Candidates: NodeCandidate list
      /// Set by a `redirected` frame: the next failover goes there first.
      Redirect: RedirectTarget option
      /// Set while a failover is under way: the report to show when a node welcomes us.
      Reconnecting: ReconnectReport option
      /// What the hello on the current attempt resumed.
      AttemptedResume: (RoomName * int64) list
      /// Rooms whose `joined` answers the resume hello; the reconnect line already told the user.
      QuietJoins: Set<RoomName>
      /// Nicknames seen lately, for the command parser (a line starting with one is private).
      KnownNicks: Set<string>
      Quitting: bool }

type ClientSessionEvent =
    /// The shell opened connection `link` and will send the hello this step returns.
    | ConnectionOpened of link: LinkId
    /// `silent`: the answer to a request the client made itself (a sync, a status refresh).
    | ReplyReceived of link: LinkId * reply: ServerReply * silent: bool
    /// `endedByError`: the node's last frame was an error after which it hangs up on purpose.
    | ConnectionClosed of link: LinkId * reason: string * endedByError: bool
    | NodesDiscovered of NodeCandidate list
    | SayRequested of room: RoomName * text: string
    | RoomSwitchRequested of room: RoomName
    /// Any other request of the user's (join, leave, who, whisper, rooms, status).
    | RequestSubmitted of ClientRequest
    | QuitRequested
    /// The shell found no node to resume on before its deadline.
    | FailoverAbandoned of reason: string

/// Carried out in list order.
type ClientSessionEffect =
    /// On connection `link`; a Hello is the first frame of a connection.
    | Send of link: LinkId * request: ClientRequest
    /// A silent /status on `link`, to keep the candidates fresh.
    | RefreshCandidates of link: LinkId
    /// A silent `who` on `link`: its answer (ReplyReceived, silent) means the node has answered
    /// everything sent before it.
    | Sync of link: LinkId
    | Show of ServerReply
    | ShowAcknowledged of RoomMessage
    | ShowReconnected of ReconnectReport
    | ShowRoomSwitched of room: RoomName
    | ShowError of code: string * reason: string
    | FailOver of FailoverPlan
    /// The session cannot go on: the node ended it on purpose, or no node took it over.
    | End of reason: string

module ClientSession =

    /// firstMessageId: ids must not repeat what an earlier run with this nick sent, because the
    /// room owner recognises a retry by (nick, id) in the room's recent history.
    let create (nick: string) (firstMessageId: int64) : ClientSessionState =
        if firstMessageId < 1L then invalidArg (nameof firstMessageId) "0 means 'no id' on the wire"
        { Nick = nick
          Token = None
          CurrentRoom = Rooms.lobby
          Joined = Set.singleton Rooms.lobby
          Joining = Set.empty
          LastSeqShown = Map.empty
          Unconfirmed = Map.empty
          NextMessageId = firstMessageId
          Link = Offline
          Node = None
          Candidates = []
          Redirect = None
          Reconnecting = None
          AttemptedResume = []
          QuietJoins = Set.empty
          KnownNicks = Set.singleton nick
          Quitting = false }

    // -----------------------------------------------------------------------------------------
    // Reading the state.

    let lastSeqShown (room: RoomName) (session: ClientSessionState) : int64 =
        session.LastSeqShown.TryFind room |> Option.defaultValue 0L

    /// Joined, or a join is on its way: lines for the room may be sent.
    let canSpeakIn (room: RoomName) (session: ClientSessionState) : bool =
        session.Joined.Contains room || session.Joining.Contains room

    /// The connection requests can go on: welcomed (catching up or online).
    let connectedLink (session: ClientSessionState) : LinkId option =
        match session.Link with
        | CatchingUp(link, _)
        | Online(link, _) -> Some link
        | Offline
        | Greeting _ -> None

    let isOnline (session: ClientSessionState) : bool =
        match session.Link with
        | Online _ -> true
        | _ -> false

    /// Online with every post acknowledged: nothing the user said is still in doubt.
    let isSettled (session: ClientSessionState) : bool = isOnline session && session.Unconfirmed.IsEmpty

    /// Every joined room with the last sequence number shown there, #lobby included; a room
    /// whose join was lost with the connection resumes from its beginning.
    let resumePoints (session: ClientSessionState) : (RoomName * int64) list =
        Set.union session.Joined session.Joining |> Set.toList |> List.map (fun room -> room, lastSeqShown room session)

    /// The hello of a (re)connection: a first hello has no session and resumes nothing, so the
    /// node shows each room's recent history; later ones carry the token and every position.
    let hello (session: ClientSessionState) : HelloRequest =
        match session.Token with
        | None -> { Nick = session.Nick; Session = None; Resume = []; Password = None }
        | Some token ->
            let resume = resumePoints session |> List.map (fun (room, seq) -> room.Value, seq)
            { Nick = session.Nick; Session = Some token; Resume = resume; Password = None }

    let prompt (session: ClientSessionState) : string =
        let state = if session.Reconnecting.IsSome then " (reconnecting)" else ""
        $"{session.Nick} {session.CurrentRoom}{state}> "

    // -----------------------------------------------------------------------------------------
    // Where to go.

    /// Best first: fewest clients, then the lowest id; each node once (the lowest count seen
    /// wins for a node listed twice).
    let rank (nodes: NodeCandidate seq) : NodeCandidate list =
        nodes
        |> Seq.groupBy _.Id
        |> Seq.map (fun (_, same) -> same |> Seq.minBy _.Clients)
        |> Seq.sortBy (fun node -> node.Clients, node.Id)
        |> List.ofSeq

    /// The nodes of a /status answer, with the loads they report. A node answers status before
    /// hello, so a discovery probe is never among the clients it counts.
    let candidatesOf (status: ClusterStatus) : NodeCandidate list =
        [ for node in status.Nodes -> { Id = node.Id; Client = node.ClientEndpoint; Clients = node.Load.Clients } ]

    /// Where to try after `plan`, best first: the redirect target, then the least-loaded known
    /// node other than the one that failed, which comes last.
    let failoverTargets (plan: FailoverPlan) (nodes: NodeCandidate seq) : Endpoint list =
        let others = rank nodes |> List.filter (fun node -> node.Id <> plan.Previous)
        let previous = nodes |> Seq.filter (fun node -> node.Id = plan.Previous) |> Seq.map _.Client |> List.ofSeq
        let first = plan.Redirect |> Option.map _.Client |> Option.toList
        first @ (others |> List.map _.Client) @ previous |> List.distinct

    // -----------------------------------------------------------------------------------------
    // The user's requests.

    let private notInRoom (room: RoomName) =
        ShowError("bad-command", $"you are not in {room}; /join {room} first")

    /// Kept until it comes back sequenced; sent now only when online (else after the catch-up).
    let private said (room: RoomName) (text: string) (session: ClientSessionState) =
        if not (canSpeakIn room session) then
            session, [ notInRoom room ]
        else
            let pending = { Id = session.NextMessageId; Room = room; Text = text }
            let session =
                { session with
                    NextMessageId = pending.Id + 1L
                    Unconfirmed = session.Unconfirmed.Add(pending.Id, pending) }
            match session.Link with
            | Online(link, _) -> session, [ Send(link, Say(room.Value, text, pending.Id)) ]
            | _ -> session, []

    /// A join makes the room the current one at once, so the lines typed (or piped) after
    /// `/join` go there whenever the node's answer arrives.
    let private requested (request: ClientRequest) (session: ClientSessionState) =
        match connectedLink session, request with
        | None, _ -> session, [ ShowError("not-connected", "reconnecting to the cluster; try again in a moment") ]
        | Some link, Join room ->
            // The command parser has checked and canonicalised the name (CommandParser.cs).
            let room = RoomName room
            let joining = if session.Joined.Contains room then session.Joining else session.Joining.Add room
            { session with Joining = joining; CurrentRoom = room }, [ Send(link, request) ]
        | Some link, _ -> session, [ Send(link, request) ]

    let private switchedTo (room: RoomName) (session: ClientSessionState) =
        if canSpeakIn room session then { session with CurrentRoom = room }, [ ShowRoomSwitched room ]
        else session, [ notInRoom room ]

    // -----------------------------------------------------------------------------------------
    // What the node says.

    /// A sequenced message: shown only when newer than the last one shown in its room, so a
    /// replay after a resume never shows a message twice (nor one older than what was shown);
    /// our own message with its id is the acknowledgement of that send, shown or not.
    let received (message: RoomMessage) (session: ClientSessionState) : ClientSessionState * ClientSessionEffect list =
        let show = message.Seq > lastSeqShown message.Room session
        let acknowledged =
            message.From.Value = session.Nick && message.ClientMessageId <> 0L && session.Unconfirmed.ContainsKey message.ClientMessageId
        let session =
            { session with
                LastSeqShown = if show then session.LastSeqShown.Add(message.Room, message.Seq) else session.LastSeqShown
                Unconfirmed = if acknowledged then session.Unconfirmed.Remove message.ClientMessageId else session.Unconfirmed
                KnownNicks = session.KnownNicks.Add message.From.Value }
        session,
        [ if show then Show(Message message)
          if acknowledged then ShowAcknowledged message ]

    /// Leaving forgets the room's position (joining again shows its recent history afresh) and
    /// its unconfirmed lines: a room we are not in sends us nothing that could confirm them.
    let private left (room: RoomName) (session: ClientSessionState) : ClientSessionState =
        if room = Rooms.lobby then
            session
        else
            { session with
                Joined = session.Joined.Remove room
                Joining = session.Joining.Remove room
                LastSeqShown = session.LastSeqShown.Remove room
                Unconfirmed = session.Unconfirmed |> Map.filter (fun _ pending -> pending.Room <> room)
                CurrentRoom = if session.CurrentRoom = room then Rooms.lobby else session.CurrentRoom }

    /// Presence notices read "<nick> joined ..." and "<nick> left ..." (Node.fs).
    let private presence (text: string) (nicks: Set<string>) : Set<string> =
        match text.Split(' ', 3) with
        | words when words.Length >= 2 && Result.isOk (Chat.validateNick words[0]) ->
            match words[1] with
            | "joined" -> nicks.Add words[0]
            | "left" -> nicks.Remove words[0]
            | _ -> nicks
        | _ -> nicks

    /// The answer to the sync after a welcome: the replay has been read, so what it confirmed is
    /// not sent again; the rest goes again with the same ids, in the order first sent.
    let private caughtUp (link: LinkId) (node: NodeId) (session: ClientSessionState) =
        { session with Link = Online(link, node) },
        [ for KeyValue(id, pending) in session.Unconfirmed -> Send(link, Say(pending.Room.Value, pending.Text, id)) ]

    /// A reply on the connection in use.
    let private replied (link: LinkId) (reply: ServerReply) (silent: bool) (session: ClientSessionState) =
        let shown = if silent then [] else [ Show reply ]
        match reply with
        | Message message -> received message session
        | Joined(room, _, _) ->
            let session = { session with Joining = session.Joining.Remove room; Joined = session.Joined.Add room }
            if session.QuietJoins.Contains room then { session with QuietJoins = session.QuietJoins.Remove room }, []
            else session, [ Show reply ]
        | LeftRoom room -> left room session, [ Show reply ]
        | WhoListed(room, users) ->
            let known = if room.IsNone then Set.singleton session.Nick else session.KnownNicks
            let session = { session with KnownNicks = users |> List.fold (fun nicks user -> Set.add user.Nick.Value nicks) known }
            match session.Link with
            | CatchingUp(_, node) when silent && room.IsNone -> caughtUp link node session
            | _ -> session, shown
        | StatusReported status -> { session with Candidates = rank (candidatesOf status) }, shown
        | Redirected(node, client, reason) -> { session with Redirect = Some { Node = node; Client = client; Reason = reason } }, shown
        | Private line -> { session with KnownNicks = session.KnownNicks.Add line.From.Value }, shown
        | Notice text -> { session with KnownNicks = presence text session.KnownNicks }, shown
        | _ -> session, shown

    /// Before the welcome: the welcome makes the attempt the connection in use. A refusal is
    /// shown only on the first connection; a failover tries again or elsewhere.
    let private greeted (link: LinkId) (reply: ServerReply) (session: ClientSessionState) =
        match reply with
        | Welcome(nick, node, _, token) ->
            let welcomed =
                { session with
                    Link = CatchingUp(link, node)
                    Node = Some node
                    Token = Some token
                    KnownNicks = session.KnownNicks.Add nick.Value
                    Reconnecting = None }
            match session.Reconnecting with
            | None -> welcomed, [ Show reply; RefreshCandidates link; Sync link ]
            | Some report ->
                let resumed = session.AttemptedResume
                { welcomed with QuietJoins = Set.union welcomed.QuietJoins (resumed |> List.map fst |> Set.ofList) },
                [ ShowReconnected { report with Node = node; Resumed = resumed }; RefreshCandidates link; Sync link ]
        | ErrorReply _ when session.Token.IsNone -> session, [ Show reply ]
        | _ -> session, []

    /// The connection in use ended. After /quit that is the end; after an error from the node
    /// it is too (the node meant it), unless it redirected us; otherwise the client fails over.
    let private lost (node: NodeId) (reason: string) (endedByError: bool) (session: ClientSessionState) =
        let session = { session with Link = Offline }
        match session.Redirect with
        | _ when session.Quitting -> session, []
        | None when endedByError -> session, [ End reason ]
        | redirect ->
            let plan = { Previous = node; Redirect = redirect; Reason = reason }
            let report =
                { Node = 0
                  Previous = node
                  Redirected = redirect.IsSome
                  Reason = redirect |> Option.map _.Reason |> Option.defaultValue reason
                  Resumed = [] }
            { session with Redirect = None; Reconnecting = Some report }, [ FailOver plan ]

    let private closed (link: LinkId) (reason: string) (endedByError: bool) (session: ClientSessionState) =
        match session.Link with
        | Greeting current when current = link -> { session with Link = Offline }, []
        | CatchingUp(current, node)
        | Online(current, node) when current = link -> lost node reason endedByError session
        | _ -> session, []

    // -----------------------------------------------------------------------------------------
    // The one entry point.

    /// Events from a connection the session is not on (an attempt given up, the connection
    /// before a failover) change nothing.
    let step (event: ClientSessionEvent) (session: ClientSessionState) : ClientSessionState * ClientSessionEffect list =
        match event with
        | ConnectionOpened link ->
            let resumed = if session.Token.IsNone then [] else resumePoints session
            { session with Link = Greeting link; AttemptedResume = resumed }, [ Send(link, Hello(hello session)) ]
        | ReplyReceived(link, reply, silent) ->
            match session.Link with
            | Greeting current when current = link -> greeted link reply session
            | CatchingUp(current, _)
            | Online(current, _) when current = link -> replied link reply silent session
            | _ -> session, []
        | ConnectionClosed(link, reason, endedByError) -> closed link reason endedByError session
        | NodesDiscovered nodes -> { session with Candidates = rank (Seq.append nodes session.Candidates) }, []
        | SayRequested(room, text) -> said room text session
        | RoomSwitchRequested room -> switchedTo room session
        | RequestSubmitted request -> requested request session
        | QuitRequested ->
            { session with Quitting = true },
            [ match connectedLink session with
              | Some link -> Send(link, Quit)
              | None -> () ]
        | FailoverAbandoned reason -> { session with Reconnecting = None }, [ End reason ]
