/// Who is online where, which local connection speaks for which nickname, and who is in which
/// room. Pure data and rules; Node.fs turns requests into these changes plus their messages.
module FormalChat.Protocol.Chat

type NamedSession =
    { Nick: Nick
      Session: string
      Rooms: Set<RoomName> }

type Session =
    /// Connected, has not said hello yet; holds the session token the shell drew for it.
    | Anonymous of session: string
    | Named of NamedSession

type DirectoryEntry =
    { Node: NodeId
      Session: string
      Rooms: Set<RoomName> }

type ChatState =
    { Sessions: Map<ClientId, Session>
      /// Every online user in the cluster: the node it is on, its session, its rooms.
      Directory: Map<Nick, DirectoryEntry>
      /// The directory by room: how many of a room's members each node has, kept with the
      /// directory (setEntry), so a room's message finds its nodes without a pass over every user.
      MemberNodes: Map<RoomName, Map<NodeId, int>>
      /// Indexes of the local sessions, kept with them, for delivery without a scan.
      LocalMembers: Map<RoomName, Set<ClientId>>
      LocalNicks: Map<Nick, ClientId> }

let empty =
    { Sessions = Map.empty
      Directory = Map.empty
      MemberNodes = Map.empty
      LocalMembers = Map.empty
      LocalNicks = Map.empty }

let maxNickLength = 32

/// Nicknames are 1–32 letters, digits, '_' or '-', so they read well in every log and prompt.
let validateNick (nick: string) : Result<Nick, string> =
    let allowed (c: char) = System.Char.IsAsciiLetterOrDigit c || c = '_' || c = '-'
    if System.String.IsNullOrEmpty nick then Result.Error "a nickname is required"
    elif nick.Length > maxNickLength then Result.Error $"a nickname has at most {maxNickLength} characters"
    elif not (Seq.forall allowed nick) then Result.Error "a nickname uses only letters, digits, '_' and '-'"
    else Ok(Nick nick)

let private lineBreaks = [| '\n'; '\r' |]

let validateText (maxTextLength: int) (text: string) : Result<string, string> =
    if System.String.IsNullOrWhiteSpace text then Result.Error "a message needs some text"
    elif text.Length > maxTextLength then Result.Error $"a message has at most {maxTextLength} characters"
    elif text.IndexOfAny(lineBreaks) >= 0 then Result.Error "a message is one line"
    else Ok text

let namedSession (client: ClientId) (chat: ChatState) : NamedSession option =
    match chat.Sessions.TryFind client with
    | Some(Named session) -> Some session
    | _ -> None

let localMembers (room: RoomName) (chat: ChatState) : Set<ClientId> =
    match chat.LocalMembers.TryGetValue room with
    | true, members -> members
    | _ -> Set.empty

/// The local connections that have said hello: every one of them is in #lobby, whose member
/// index is kept up to date, so this costs a lookup, not a pass over every session.
let namedClients (chat: ChatState) : Set<ClientId> = localMembers Rooms.lobby chat

let localUsers (chat: ChatState) : NamedSession list =
    [ for KeyValue(_, session) in chat.Sessions do
          match session with
          | Named named -> named
          | Anonymous _ -> () ]

let knownUser (node: NodeId) (session: NamedSession) : KnownUser =
    { User = { Nick = session.Nick; Node = node; Rooms = Set.toList session.Rooms }
      Session = session.Session }

let userEntries (room: RoomName option) (chat: ChatState) : UserEntry list =
    [ for KeyValue(nick, entry) in chat.Directory do
          if room |> Option.forall entry.Rooms.Contains then
              { Nick = nick; Node = entry.Node; Rooms = Set.toList entry.Rooms } ]

let memberCount (room: RoomName) (chat: ChatState) : int =
    chat.Directory |> Seq.sumBy (fun (KeyValue(_, entry)) -> if entry.Rooms.Contains room then 1 else 0)

/// Every room someone is in.
let occupiedRooms (chat: ChatState) : Set<RoomName> =
    chat.Directory |> Seq.fold (fun rooms (KeyValue(_, entry)) -> Set.union rooms entry.Rooms) Set.empty

/// The nodes with members in the room (Replication.interestedNodes sends its messages there).
let memberNodes (room: RoomName) (chat: ChatState) : Set<NodeId> =
    match chat.MemberNodes.TryFind room with
    | Some nodes -> Map.fold (fun (set: Set<NodeId>) node _ -> set.Add node) Set.empty nodes
    | None -> Set.empty

let private countMembers (entry: DirectoryEntry) (delta: int) (index: Map<RoomName, Map<NodeId, int>>) =
    entry.Rooms
    |> Set.fold
        (fun (index: Map<RoomName, Map<NodeId, int>>) room ->
            let nodes = index.TryFind room |> Option.defaultValue Map.empty
            let count = (nodes.TryFind entry.Node |> Option.defaultValue 0) + delta
            let nodes = if count <= 0 then nodes.Remove entry.Node else nodes.Add(entry.Node, count)
            if nodes.IsEmpty then index.Remove room else index.Add(room, nodes))
        index

/// Every change to the directory goes through here, so that MemberNodes stays its index.
let private setEntry (nick: Nick) (entry: DirectoryEntry option) (chat: ChatState) : ChatState =
    let index =
        match chat.Directory.TryFind nick with
        | Some old -> countMembers old -1 chat.MemberNodes
        | None -> chat.MemberNodes
    match entry with
    | Some entry -> { chat with Directory = chat.Directory.Add(nick, entry); MemberNodes = countMembers entry 1 index }
    | None -> { chat with Directory = chat.Directory.Remove nick; MemberNodes = index }

/// A user is gone from the directory.
let removeEntry (nick: Nick) (chat: ChatState) : ChatState = setEntry nick None chat

let private addMember room client (members: Map<RoomName, Set<ClientId>>) =
    members.Add(room, (members.TryFind room |> Option.defaultValue Set.empty).Add client)

let private removeMember room client (members: Map<RoomName, Set<ClientId>>) =
    match members.TryFind room with
    | Some clients when clients.Count <= 1 -> members.Remove room
    | Some clients -> members.Add(room, clients.Remove client)
    | None -> members

/// A local client has said hello: it is named, in the directory, and in its rooms.
let name (client: ClientId) (self: NodeId) (session: NamedSession) (chat: ChatState) : ChatState =
    let chat = setEntry session.Nick (Some { Node = self; Session = session.Session; Rooms = session.Rooms }) chat
    { chat with
        Sessions = chat.Sessions.Add(client, Named session)
        LocalMembers = session.Rooms |> Set.fold (fun members room -> addMember room client members) chat.LocalMembers
        LocalNicks = chat.LocalNicks.Add(session.Nick, client) }

/// A local connection is gone. Its directory entry goes too, unless the user has already moved
/// to another node (a failover or a redirect) and the entry is that node's now.
let forget (client: ClientId) (self: NodeId) (chat: ChatState) : ChatState =
    match chat.Sessions.TryFind client with
    | Some(Named session) ->
        let chat =
            match chat.Directory.TryFind session.Nick with
            | Some entry when entry.Node = self -> removeEntry session.Nick chat
            | _ -> chat
        { chat with
            Sessions = chat.Sessions.Remove client
            LocalMembers = session.Rooms |> Set.fold (fun members room -> removeMember room client members) chat.LocalMembers
            LocalNicks = chat.LocalNicks.Remove session.Nick }
    | _ -> { chat with Sessions = chat.Sessions.Remove client }

let joinRoom (client: ClientId) (self: NodeId) (room: RoomName) (chat: ChatState) : ChatState =
    match namedSession client chat with
    | Some session -> name client self { session with Rooms = session.Rooms.Add room } chat
    | None -> chat

let leaveRoom (client: ClientId) (self: NodeId) (room: RoomName) (chat: ChatState) : ChatState =
    match namedSession client chat with
    | Some session ->
        let chat = { chat with LocalMembers = removeMember room client chat.LocalMembers }
        name client self { session with Rooms = session.Rooms.Remove room } chat
    | None -> chat

/// A remote user's directory entry changed (joined the cluster, a room, or left a room).
let remember (user: KnownUser) (chat: ChatState) : ChatState =
    setEntry user.User.Nick (Some { Node = user.User.Node; Session = user.Session; Rooms = Set.ofList user.User.Rooms }) chat

let updateRemoteRooms (nick: Nick) (change: Set<RoomName> -> Set<RoomName>) (chat: ChatState) : ChatState =
    match chat.Directory.TryFind nick with
    | Some entry -> setEntry nick (Some { entry with Rooms = change entry.Rooms }) chat
    | None -> chat

/// Forgets the users of nodes no longer in the view; returns them so they can be announced.
let forgetNodesOutside (view: Set<NodeId>) (chat: ChatState) : ChatState * UserEntry list =
    let gone = userEntries None chat |> List.filter (fun user -> not (view.Contains user.Node))
    gone |> List.fold (fun chat user -> removeEntry user.Nick chat) chat, gone

/// Replaces what this node knew of another node's users with that node's own list.
let replaceUsersOf (node: NodeId) (users: KnownUser list) (chat: ChatState) : ChatState =
    let theirs = chat.Directory |> Seq.filter (fun (KeyValue(_, entry)) -> entry.Node = node) |> Seq.map _.Key |> List.ofSeq
    let others = theirs |> List.fold (fun chat nick -> removeEntry nick chat) chat
    users
    |> List.fold (fun chat user -> if others.Directory.ContainsKey user.User.Nick then chat else remember user chat) others
