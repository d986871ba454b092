/// Nicknames on a node: a hello is welcomed only on the registrar's grant (NickRegistry.fs),
/// so exactly one node welcomes each nickname. This module steps the registry and carries out
/// what it asks; ClientRequests (hello, disconnect), NodeCoordination (a new leader) and
/// Node (registry messages, the tick) feed it.
module FormalChat.Protocol.NickClaims

open FormalChat.Protocol.Chat
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.RoomReplica
open FormalChat.Protocol.ClientReplies
open FormalChat.Protocol.RoomPlacement

let joinedReply (room: RoomName) (state: NodeState) : ServerReply =
    Joined(room, state.Placements.TryFind room |> Option.map (fun a -> a.Owner), memberCount room state.Chat)

/// The registrar granted a hello's nickname: the client is welcomed, unless it has gone or
/// been welcomed since.
let private welcome (waiting: NickRegistry.Waiting) (state: NodeState) : NodeState * Effect list =
    let client, hello, session = waiting.Client, waiting.Hello, waiting.Session
    match state.Chat.Sessions.TryFind client with
    | Some(Anonymous _) ->
        let nick = waiting.Nick
        // A reconnecting client may still have its old connection here: that one is replaced.
        let replaced = state.Chat.LocalNicks.TryFind nick
        let chat = replaced |> Option.fold (fun chat old -> forget old (self state) chat) state.Chat
        let resume = hello.Resume |> List.choose (fun (room, seq) -> Rooms.validateRoomName room |> Result.toOption |> Option.map (fun room -> room, seq)) |> Map.ofList
        let rooms = resume |> Map.keys |> Set.ofSeq |> Set.add Rooms.lobby
        let named = { Nick = nick; Session = session; Rooms = rooms }
        let wanted room =
            match resume.TryFind room with
            | Some seq -> Since seq
            | None -> Last waiting.HistoryOnJoin
        let history room =
            match wanted room with
            | Since seq -> Rooms.since seq (historyOf room state)
            | Last count -> Rooms.last count (historyOf room state)
        // Decided before this client counts as a member here.
        let waits = rooms |> Set.filter (fun room -> needsCatchUp room { state with Chat = chat })
        let state = { state with Chat = name client (self state) named chat }
        let welcome =
            [ for old in Option.toList replaced do CloseClient(old, "replaced by a new connection of the same user")
              reply client (Welcome(nick, self state, state.Coordination.Leader, session))
              for room in rooms do
                  reply client (joinedReply room state)
                  if not (waits.Contains room) then
                      for message in history room do reply client (Message message)
              if resume.IsEmpty then yield! presenceExcept (Some client) state $"{nick} joined"
              let resuming = if resume.IsEmpty then "" else $", resuming {resume.Count} room(s)"
              Log(Info, $"{nick} connected (client {client}){resuming}") ]
            @ toEveryPeer state (UserJoined(knownUser (self state) named, hello.Session))
        forEach (fun room -> catchUp room client (wanted room)) waits (state, welcome)
        |> then' (needPlacements rooms)
    | _ -> state, []

/// A hello the registrar refused. nick-taken closes the connection, as every other refusal of a
/// hello for a nickname does (docs/PROTOCOL.md; Client.CSharp connects afresh to try again);
/// try-again keeps it open, since it asks for the same hello again.
let private refused (client: ClientId) (code: ErrorCode) (reason: string) : Effect list =
    [ refuse client code reason
      if code = NickTaken then CloseClient(client, ErrorCode.name code) ]

let private nickContext (state: NodeState) : NickRegistry.Context =
    { Self = self state
      View = state.Coordination.View
      Decides = decidesWithQuorum state
      Held = fun () -> [ for user in localUsers state.Chat -> user.Nick, user.Session ] }

/// Steps the nickname registry and carries out what it asks, in order.
let nicks (event: NickRegistry.Event) (state: NodeState) : NodeState * Effect list =
    let registry, outputs = NickRegistry.step (nickContext state) state.Nicks event
    let carryOut output (state: NodeState) =
        match output with
        | NickRegistry.Send sent -> Inbox.route [ sent ] state
        | NickRegistry.Welcome waiting -> welcome waiting state
        | NickRegistry.Refuse(waiting, code, reason) -> state, refused waiting.Client code reason
        | NickRegistry.Note text -> state, [ Log(Debug, text) ]
    forEach carryOut outputs ({ state with Nicks = registry }, [])
