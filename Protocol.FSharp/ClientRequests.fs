/// What a client asks of this node: hello, quit, status, room list, say, whisper, join, leave,
/// who; and its connection opening and closing.
module FormalChat.Protocol.ClientRequests

open FormalChat.Protocol.Chat
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.RoomReplica
open FormalChat.Protocol.ClientReplies
open FormalChat.Protocol.RoomPlacement
open FormalChat.Protocol.NickClaims

/// The session token a hello gets: always this connection's own, drawn by the shell. A resume
/// proves the nick's current token and gets a fresh one (tokens rotate, so a token that leaked
/// or belonged to a session that has ended opens nothing); a token the client chose is never used.
let private sessionFor (nick: Nick) (hello: HelloRequest) (token: string) (state: NodeState) : Result<string, string> =
    match state.Chat.Directory.TryFind nick with
    | Some entry when hello.Session = Some entry.Session -> Ok token
    | Some entry -> Result.Error $"the nickname {nick} is already in use on node {entry.Node}"
    | None -> Ok token

/// Accounts.checkPassword for this hello: a registered nick needs its password, unless the hello
/// resumes the session the directory holds for it.
let private passwordCheck (nick: Nick) (hello: HelloRequest) (state: NodeState) : Result<unit, ErrorCode * string> =
    let resumesLiveSession = state.Chat.Directory.TryFind nick |> Option.exists (fun entry -> hello.Session = Some entry.Session)
    Accounts.checkPassword nick (Accounts.recordOf nick (historyOf Accounts.room state)) resumesLiveSession hello.Password

let private hello (config: ProtocolConfig) (client: ClientId) (hello: HelloRequest) (state: NodeState) =
    match state.Chat.Sessions.TryFind client with
    | Some(Named current) -> state, [ refuse client AlreadyHello $"you are already {current.Nick}" ]
    | None -> state, []
    | Some(Anonymous token) ->
    // The one place a hello's nickname, as typed, becomes a Nick.
    match validateNick hello.Nick with
    | Result.Error reason -> state, [ refuse client NickInvalid reason ]
    | Ok nick ->
    match sessionFor nick hello token state with
    | Result.Error reason -> state, [ refuse client NickTaken reason; CloseClient(client, ErrorCode.name NickTaken) ]
    | Ok _ when state.Chat.LocalNicks.Count >= config.MaxClients && not (state.Chat.LocalNicks.ContainsKey nick) ->
        state, [ refuse client ServerFull $"node {self state} has its maximum of {config.MaxClients} users"; CloseClient(client, "server full") ]
    | Ok session ->
        match passwordCheck nick hello state with
        | Result.Error(code, reason) -> state, [ refuse client code reason; CloseClient(client, ErrorCode.name code) ]
        | Ok() ->
        // Welcomed only on the registrar's grant (NickClaims.welcome): one winner per nickname.
        let waiting : NickRegistry.Waiting =
            { Client = client; Nick = nick; Hello = hello; Session = session; HistoryOnJoin = config.HistoryOnJoin
              Term = { Epoch = 0L; Leader = self state }; TicksWaited = 0 }
        nicks (NickRegistry.HelloReceived waiting) state

let disconnect (client: ClientId) (state: NodeState) =
    let stillHere = state.Chat.LocalNicks |> Map.tryFindKey (fun _ c -> c = client)
    let rooms = namedSession client state.Chat |> Option.map _.Rooms |> Option.defaultValue Set.empty
    let state' = rooms |> Set.fold (fun state room -> stopWaiting client room state) state
    let state' = { state' with Chat = forget client (self state) state.Chat }
    match stillHere, namedSession client state.Chat with
    | Some _, Some session when (state.Chat.Directory.TryFind session.Nick |> Option.map _.Node) = Some(self state) ->
        (state',
         presence state' $"{session.Nick} left" @ [ Log(Info, $"{session.Nick} disconnected (client {client})") ]
         @ toEveryPeer state' (UserLeft(session.Nick, self state)))
        |> then' (nicks (NickRegistry.UserLeft(session.Nick, session.Session)))
    | _ -> nicks (NickRegistry.ClientLeft client) state'

let private join (config: ProtocolConfig) (client: ClientId) (session: NamedSession) (room: RoomName) (state: NodeState) =
    if session.Rooms.Contains room then
        state, [ reply client (joinedReply room state) ]
    else
        let waits = needsCatchUp room state
        let state = { state with Chat = joinRoom client (self state) room state.Chat }
        let effects =
            reply client (joinedReply room state)
            :: [ if not waits then for message in Rooms.last config.HistoryOnJoin (historyOf room state) -> reply client (Message message) ]
            @ toEveryPeer state (MemberJoined(room, session.Nick))
        (if waits then catchUp room client (Last config.HistoryOnJoin) state else state, [])
        |> fun (state, asked) -> state, effects @ asked
        |> then' (needPlacements [ room ])

let private leave (client: ClientId) (session: NamedSession) (room: RoomName) (state: NodeState) =
    if room = Rooms.lobby then state, [ refuse client NotInRoom "everyone stays in #lobby" ]
    elif not (session.Rooms.Contains room) then state, [ refuse client NotInRoom $"you are not in {room}" ]
    else
        { stopWaiting client room state with Chat = leaveRoom client (self state) room state.Chat },
        reply client (LeftRoom room) :: toEveryPeer state (MemberLeft(room, session.Nick))

/// A post sent without an id gets one from this node (see NodeState.NextPostId): a re-send after
/// an owner change must be recognised as the same post. Node ids are negative; a client's own
/// are positive (docs/PROTOCOL.md; the wire refuses any other as bad-frame), and 0 is none.
let private numbered (post: RoomPost) (state: NodeState) : RoomPost * NodeState =
    if post.ClientMessageId > 0L then post, state
    else { post with ClientMessageId = -state.NextPostId }, { state with NextPostId = state.NextPostId + 1L }

/// A post from a client here waits (for its acknowledgement, or for a re-send after an owner
/// change) unless a retry of it already does, and goes to the room's owner.
let private waitAndRoute (post: RoomPost) (state: NodeState) =
    let waiting = state.Unconfirmed.TryFind post.Room |> Option.defaultValue WaitingPosts.empty
    let alreadyWaiting = WaitingPosts.containsId post.From post.FromNode post.ClientMessageId waiting
    let unconfirmed = if alreadyWaiting then state.Unconfirmed else state.Unconfirmed.Add(post.Room, WaitingPosts.add post waiting)
    match state.Placements.TryGetValue post.Room with
    // routePost's first case: the post waits and is sequenced in one copy of the state.
    | true, placement when placement.Owner = self state -> sequenceWaitingAsOwner unconfirmed post placement state
    | _ -> routePost post (if alreadyWaiting then state else { state with Unconfirmed = unconfirmed })

/// A post is numbered first if it came without an id (numbered).
let private postAndWait (post: RoomPost) (state: NodeState) =
    if post.ClientMessageId > 0L then waitAndRoute post state
    else
        let post, state = numbered post state
        waitAndRoute post state

let private say (config: ProtocolConfig) (client: ClientId) (session: NamedSession) (room: RoomName) (text: string) (id: int64) (state: NodeState) =
    match validateText config.MaxTextLength text with
    | Result.Error reason -> state, [ refuse client TextInvalid reason ]
    | Ok _ when not (session.Rooms.Contains room) -> state, [ refuse client NotInRoom $"join {room} first" ]
    | Ok text ->
        postAndWait { Room = room; From = session.Nick; FromNode = self state; Text = text; ClientMessageId = id } state

/// The target is as the client typed it: one that is no valid nickname is nobody online.
let private whisper (config: ProtocolConfig) (client: ClientId) (nick: Nick) (typed: string) (text: string) (state: NodeState) =
    let found = validateNick typed |> Result.toOption |> Option.bind (fun target -> state.Chat.Directory.TryFind target |> Option.map (fun entry -> target, entry))
    match validateText config.MaxTextLength text, found with
    | Result.Error reason, _ -> state, [ refuse client TextInvalid reason ]
    | _, None -> state, [ refuse client NoSuchUser $"nobody called {typed} is online" ]
    | Ok text, Some(target, entry) ->
        let line = { PrivateLine.From = nick; FromNode = self state; To = target; Text = text }
        let delivery =
            if entry.Node = self state then
                [ for recipient in Option.toList (state.Chat.LocalNicks.TryFind target) do
                      if recipient <> client then reply recipient (Private line) ]
            else
                toPeer state entry.Node (PrivateForwarded line)
        { state with MessagesSinceTick = state.MessagesSinceTick + 1 }, delivery @ [ reply client (Private line) ]

/// `/register`: the account is a post to the accounts room (Accounts.fs), acknowledged like any
/// post once the room's owner and its backup hold it (RoomReplica.show then tells the client).
let private register (client: ClientId) (session: NamedSession) (password: Password) (state: NodeState) =
    match Accounts.registration (self state) session.Nick password with
    | Result.Error(code, reason) -> state, [ refuse client code reason ]
    | Ok post -> postAndWait post state

let private roomList (state: NodeState) : RoomSummary list =
    let rooms = Set.union (occupiedRooms state.Chat) (state.Placements |> Map.keys |> Set.ofSeq) |> Set.remove Accounts.room
    [ for room in rooms ->
          { Room = room
            Owner = state.Placements.TryFind room |> Option.map (fun a -> a.Owner)
            Backup =
              if Replication.hasBackup room state.Placements state.Backups state.Coordination then Some state.Backups[room].Backup
              else None
            Members = memberCount room state.Chat } ]

let inline private withRoom client (room: string) (action: RoomName -> NodeState * Effect list) (state: NodeState) =
    match Rooms.validateRoomName room with
    | Ok room -> action room
    | Result.Error reason -> state, [ refuse client RoomInvalid reason ]

/// A new connection is anonymous until its hello; beyond MaxClients it is refused and closed.
let connect (config: ProtocolConfig) (client: ClientId) (session: string) (state: NodeState) : NodeState * Effect list =
    if state.Chat.Sessions.Count >= config.MaxClients then
        state, [ refuse client ServerFull $"node {self state} has its maximum of {config.MaxClients} clients"; CloseClient(client, "server full") ]
    else
        { state with Chat = { state.Chat with Sessions = state.Chat.Sessions.Add(client, Anonymous session) } }, []

let request (config: ProtocolConfig) (client: ClientId) (request: ClientRequest) (state: NodeState) : NodeState * Effect list =
    match request, namedSession client state.Chat with
    | Hello greeting, _ -> hello config client greeting state
    | Quit, _ -> disconnect client state |> then' (fun state -> state, [ CloseClient(client, "bye") ])
    // Answered before hello, so a client choosing a node can look without joining.
    | Status, _ -> state, [ reply client (StatusReported(clusterStatus state)) ]
    | Rooms, _ -> state, [ reply client (RoomsListed(roomList state)) ]
    | _, None -> state, [ refuse client HelloFirst "say hello with a nickname first" ]
    | Say(room, text, id), Some session -> withRoom client room (fun room -> say config client session room text id state) state
    | Whisper(target, text), Some session -> whisper config client session.Nick target text state
    | Join room, Some session -> withRoom client room (fun room -> join config client session room state) state
    | Leave room, Some session -> withRoom client room (fun room -> leave client session room state) state
    | Who None, Some _ -> state, [ reply client (WhoListed(None, userEntries None state.Chat)) ]
    | Who(Some room), Some _ ->
        withRoom client room (fun room -> state, [ reply client (WhoListed(Some room, userEntries (Some room) state.Chat)) ]) state
    | Register password, Some session -> register client session password state
