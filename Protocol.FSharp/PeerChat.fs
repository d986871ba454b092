/// Chat news from other nodes: users arriving and leaving, room memberships, whole user lists,
/// and private lines for a user on this node. The directory rules themselves are Chat.fs's.
module FormalChat.Protocol.PeerChat

open FormalChat.Protocol.Chat
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.ClientReplies

let recvPrivate (line: PrivateLine) (state: NodeState) : NodeState * Effect list =
    match state.Chat.LocalNicks.TryFind line.To with
    | Some client -> state, [ reply client (Private line) ]
    | None -> state, [ Log(Debug, $"private message for {line.To}, who is not here; dropped") ]

let recvUserJoined (user: KnownUser) (previous: string option) (state: NodeState) : NodeState * Effect list =
    let nick = user.User.Nick
    match state.Chat.LocalNicks.TryFind nick with
    | Some client when (state.Chat.Directory.TryFind nick |> Option.exists (fun entry -> entry.Session = user.Session || Some entry.Session = previous)) ->
        // The same user carried on from another node (failover or redirect): this connection is stale.
        let chat = remember user state.Chat |> forget client (self state)
        { state with Chat = chat }, [ CloseClient(client, $"continued on node {user.User.Node}") ]
    | Some client when user.User.Node > self state ->
        // Two nodes accepted the same nickname at once: the user on the higher node keeps it.
        { state with Chat = remember user state.Chat |> forget client (self state) },
        [ refuse client NickTaken $"the nickname {nick} was taken on node {user.User.Node} at the same moment"
          CloseClient(client, "nickname conflict") ]
    | Some _ -> state, []
    | None ->
        let isNew = not (state.Chat.Directory.ContainsKey nick)
        { state with Chat = remember user state.Chat },
        (if isNew then presence state $"{nick} joined on node {user.User.Node}" else [])

let recvUserLeft (nick: Nick) (node: NodeId) (state: NodeState) : NodeState * Effect list =
    match state.Chat.Directory.TryFind nick with
    | Some entry when entry.Node = node ->
        { state with Chat = removeEntry nick state.Chat },
        presence state $"{nick} left"
    | _ -> state, []

let recvMemberJoined (room: RoomName) (nick: Nick) (state: NodeState) : NodeState * Effect list =
    { state with Chat = updateRemoteRooms nick (Set.add room) state.Chat }, []

let recvMemberLeft (room: RoomName) (nick: Nick) (state: NodeState) : NodeState * Effect list =
    { state with Chat = updateRemoteRooms nick (Set.remove room) state.Chat }, []

let recvUsersListed (node: NodeId) (users: KnownUser list) (state: NodeState) : NodeState * Effect list =
    { state with Chat = replaceUsersOf node users state.Chat }, []
