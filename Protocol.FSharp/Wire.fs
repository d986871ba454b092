/// The wire format: one JSON object per line (docs/PROTOCOL.md), for client frames and peer
/// frames alike. Encoding and decoding are pure; the shell does the reading and the writing.
module FormalChat.Protocol.Wire

open System.IO
open Newtonsoft.Json
open Newtonsoft.Json.Linq

/// Frames longer than this are refused and the connection closed (the default of --max-frame).
let defaultMaxFrameBytes = 64 * 1024

/// Frames between nodes may be larger: a state transfer carries a room's recent history (at
/// most Rooms.transferBudgetChars characters of text, a few bytes each once encoded).
let maxPeerFrameBytes = 32 * 1024 * 1024

// ---------------------------------------------------------------------------------------------
// Encoding: a JsonTextWriter, so a frame costs one string and no intermediate tree.

let private encode (write: JsonTextWriter -> unit) : string =
    use text = new StringWriter()
    use json = new JsonTextWriter(text)
    json.WriteStartObject()
    json.WritePropertyName "v"
    json.WriteValue protocolVersion
    write json
    json.WriteEndObject()
    json.Flush()
    text.ToString()

let private field (json: JsonTextWriter) (name: string) (value: obj) =
    json.WritePropertyName name
    json.WriteValue value

let private kind (json: JsonTextWriter) (name: string) = field json "type" name

let private optionalNode (json: JsonTextWriter) (name: string) (node: NodeId option) =
    json.WritePropertyName name
    match node with
    | Some id -> json.WriteValue id
    | None -> json.WriteNull()

let private writeNodeInfo (json: JsonTextWriter) (info: NodeInfo) =
    json.WriteStartObject()
    field json "id" info.Id
    field json "client" (string info.ClientEndpoint)
    field json "peer" (string info.PeerEndpoint)
    json.WriteEndObject()

let private writeLoad (json: JsonTextWriter) (load: Load) =
    json.WritePropertyName "load"
    json.WriteStartObject()
    field json "clients" load.Clients
    field json "rooms" load.Rooms
    field json "messagesPerSecond" load.MessagesPerSecond
    json.WriteEndObject()

let private writeArray (json: JsonTextWriter) (name: string) (items: 'T list) (write: 'T -> unit) =
    json.WritePropertyName name
    json.WriteStartArray()
    items |> List.iter write
    json.WriteEndArray()

/// A user object; what nodes tell each other adds the session token to the same fields.
let private writeUserWith (json: JsonTextWriter) (user: UserEntry) (session: string option) =
    json.WriteStartObject()
    field json "nick" user.Nick
    field json "node" user.Node
    writeArray json "rooms" user.Rooms (fun room -> json.WriteValue room)
    session |> Option.iter (field json "session")
    json.WriteEndObject()

let private writeUser (json: JsonTextWriter) (user: UserEntry) = writeUserWith json user None

let private writeKnownUser (json: JsonTextWriter) (known: KnownUser) = writeUserWith json known.User (Some known.Session)

let private writeRoomMessage (json: JsonTextWriter) (message: RoomMessage) (nodeField: string) =
    field json "room" message.Room
    field json "seq" message.Seq
    field json "from" message.From
    field json nodeField message.FromNode
    field json "text" message.Text
    field json "id" message.ClientMessageId

let private writeBackup (json: JsonTextWriter) (backup: BackupAssignment) =
    json.WritePropertyName "backup"
    json.WriteStartObject()
    field json "backup" backup.Backup
    field json "owner" backup.Owner
    field json "epoch" backup.Epoch
    field json "leader" backup.Leader
    field json "version" backup.Version
    json.WriteEndObject()

/// A room message as a nested object, in peer frames.
let private writeMessageObject (json: JsonTextWriter) (message: RoomMessage) =
    json.WriteStartObject()
    writeRoomMessage json message "fromNode"
    json.WriteEndObject()

let private writeMessages (json: JsonTextWriter) (name: string) (messages: RoomMessage list) =
    writeArray json name messages (writeMessageObject json)

/// One room message as a record of the on-disk log.
let encodeRoomMessage (message: RoomMessage) : string =
    encode (fun json ->
        kind json "logged"
        writeRoomMessage json message "fromNode")

let encodePeerMessage (message: PeerMessage) : string =
    encode (fun json ->
        match message with
        | HeartbeatSent heartbeat ->
            kind json "heartbeat"
            json.WritePropertyName "from"
            writeNodeInfo json heartbeat.From
            field json "epoch" heartbeat.Epoch
            optionalNode json "leader" heartbeat.Leader
            writeLoad json heartbeat.Load
            writeArray json "known" heartbeat.Known (writeNodeInfo json)
        | Election election ->
            kind json "election"
            field json "candidate" election.Candidate
            field json "epoch" election.Epoch
        | LeaderAnnounced leader ->
            kind json "leader"
            field json "leader" leader.Leader
            field json "epoch" leader.Epoch
        | LeaveAnnounced node ->
            kind json "leave"
            field json "node" node
        | PrivateForwarded line ->
            kind json "private"
            field json "from" line.From
            field json "fromNode" line.FromNode
            field json "to" line.To
            field json "text" line.Text
        | UserJoined known ->
            kind json "user-joined"
            json.WritePropertyName "user"
            writeKnownUser json known
        | UserLeft(nick, node) ->
            kind json "user-left"
            field json "nick" nick
            field json "node" node
        | MemberJoined(room, nick) ->
            kind json "member-joined"
            field json "room" room
            field json "nick" nick
        | MemberLeft(room, nick) ->
            kind json "member-left"
            field json "room" room
            field json "nick" nick
        | UsersListed(node, users) ->
            kind json "users"
            field json "node" node
            writeArray json "users" users (writeKnownUser json)
        | UsersRequested node ->
            kind json "users-requested"
            field json "node" node
        | PlacementRequested(room, requester) ->
            kind json "place"
            field json "room" room
            field json "requester" requester
        | RoomAssigned(room, placement) ->
            kind json "placed"
            field json "room" room
            field json "owner" placement.Owner
            field json "epoch" placement.Epoch
            field json "leader" placement.Leader
            field json "version" placement.Version
            field json "lastSeq" placement.LastSeq
        | RoomPosted post ->
            kind json "post"
            field json "room" post.Room
            field json "from" post.From
            field json "fromNode" post.FromNode
            field json "text" post.Text
            field json "id" post.ClientMessageId
        | RoomSequenced message ->
            kind json "sequenced"
            writeRoomMessage json message "fromNode"
        | BackupAssigned(room, backup) ->
            kind json "backup-assigned"
            field json "room" room
            writeBackup json backup
        | ReplicaSynced(room, backup, committed, pending) ->
            kind json "replica-sync"
            field json "room" room
            writeBackup json backup
            writeMessages json "committed" committed
            writeMessages json "pending" pending
        | ReplicaAppended(backup, message) ->
            kind json "replica-append"
            writeBackup json backup
            json.WritePropertyName "message"
            writeMessageObject json message
        | ReplicaStored(room, version, seq) ->
            kind json "replica-stored"
            field json "room" room
            field json "version" version
            field json "seq" seq
        | HistoryRequested(room, after, requester) ->
            kind json "history-requested"
            field json "room" room
            field json "after" after
            field json "requester" requester
        | HistoryShared(room, messages) ->
            kind json "history"
            field json "room" room
            writeMessages json "messages" messages)

let encodeClientRequest (request: ClientRequest) : string =
    encode (fun json ->
        match request with
        | Hello hello ->
            kind json "hello"
            field json "nick" hello.Nick
            match hello.Session with
            | Some session -> field json "session" session
            | None -> ()
            if not hello.Resume.IsEmpty then
                json.WritePropertyName "resume"
                json.WriteStartObject()
                for room, seq in hello.Resume do field json room seq
                json.WriteEndObject()
        | Say(room, text, id) ->
            kind json "say"
            field json "room" room
            field json "text" text
            if id <> 0L then field json "id" id
        | Whisper(target, text) ->
            kind json "msg"
            field json "to" target
            field json "text" text
        | Join room ->
            kind json "join"
            field json "room" room
        | Leave room ->
            kind json "leave"
            field json "room" room
        | Rooms -> kind json "rooms"
        | Who room ->
            kind json "who"
            match room with
            | Some room -> field json "room" room
            | None -> ()
        | Status -> kind json "status"
        | Quit -> kind json "quit")

let errorCodeName (code: ErrorCode) : string =
    match code with
    | NickTaken -> "nick-taken"
    | NickInvalid -> "nick-invalid"
    | HelloFirst -> "hello-first"
    | AlreadyHello -> "already-hello"
    | NoSuchUser -> "no-such-user"
    | ServerFull -> "server-full"
    | TextInvalid -> "text-invalid"
    | BadFrame -> "bad-frame"
    | FrameTooLarge -> "frame-too-large"
    | VersionMismatch -> "version-mismatch"
    | RoomInvalid -> "room-invalid"
    | NotInRoom -> "not-in-room"
    | RateLimited -> "rate-limited"

let private allErrorCodes =
    [ NickTaken; NickInvalid; HelloFirst; AlreadyHello; NoSuchUser; ServerFull; TextInvalid; BadFrame; FrameTooLarge; VersionMismatch
      RoomInvalid; NotInRoom; RateLimited ]

let encodeServerReply (reply: ServerReply) : string =
    encode (fun json ->
        match reply with
        | Welcome(nick, node, leader, session) ->
            kind json "welcome"
            field json "nick" nick
            field json "node" node
            optionalNode json "leader" leader
            field json "session" session
        | Message message ->
            kind json "message"
            writeRoomMessage json message "node"
        | Private line ->
            kind json "private"
            field json "from" line.From
            field json "node" line.FromNode
            field json "to" line.To
            field json "text" line.Text
        | Joined(room, owner, members) ->
            kind json "joined"
            field json "room" room
            optionalNode json "owner" owner
            field json "members" members
        | LeftRoom room ->
            kind json "left"
            field json "room" room
        | RoomsListed rooms ->
            kind json "rooms"
            writeArray json "rooms" rooms (fun room ->
                json.WriteStartObject()
                field json "room" room.Room
                optionalNode json "owner" room.Owner
                optionalNode json "backup" room.Backup
                field json "members" room.Members
                json.WriteEndObject())
        | WhoListed(room, users) ->
            kind json "who"
            match room with
            | Some room -> field json "room" room
            | None -> ()
            writeArray json "users" users (writeUser json)
        | StatusReported status ->
            kind json "status"
            field json "self" status.Self
            optionalNode json "leader" status.Leader
            field json "epoch" status.Epoch
            writeArray json "nodes" status.Nodes (fun node ->
                json.WriteStartObject()
                field json "id" node.Id
                field json "client" (string node.ClientEndpoint)
                field json "leader" node.IsLeader
                field json "self" node.IsSelf
                writeLoad json node.Load
                json.WriteEndObject())
            writeArray json "unreplicated" status.Unreplicated (fun room -> json.WriteValue room)
        | Redirected(node, client, reason) ->
            kind json "redirect"
            field json "node" node
            field json "client" (string client)
            field json "reason" reason
        | Error(code, reason) ->
            kind json "error"
            field json "code" (errorCodeName code)
            field json "reason" reason
        | Notice text ->
            kind json "system"
            field json "text" text)

// ---------------------------------------------------------------------------------------------
// Decoding: every way a frame can be wrong becomes an Error with a reason a person can read.

type DecodeError = { Code: ErrorCode; Reason: string }

exception private FrameInvalid of string

let private fail reason = raise (FrameInvalid reason)

/// A strict reader: the frame must be exactly one complete JSON value (a truncated object or
/// trailing text is refused), nested at most 16 deep, with no date guessing.
let private parseObject (line: string) : JObject =
    let token =
        try
            use reader = new JsonTextReader(new StringReader(line), MaxDepth = 16, DateParseHandling = DateParseHandling.None)
            let token = JToken.ReadFrom reader
            if reader.Read() then fail "trailing text after the JSON object"
            token
        with :? JsonException as error ->
            fail $"not valid JSON: {error.Message}"
    match token with
    | :? JObject as frame -> frame
    | _ -> fail "a frame is one JSON object"

let private required (frame: JObject) (name: string) : JToken =
    match frame.[name] with
    | null -> fail $"missing field '{name}'"
    | token when token.Type = JTokenType.Null -> fail $"field '{name}' is null"
    | token -> token

let private stringField (frame: JObject) (name: string) : string =
    match required frame name with
    | token when token.Type = JTokenType.String -> token.Value<string>() |> Option.ofObj |> Option.defaultValue ""
    | _ -> fail $"field '{name}' must be a string"

let private integer (name: string) (token: JToken) : int64 =
    match token with
    | :? JValue as value when token.Type = JTokenType.Integer ->
        match value.Value with
        | :? int64 as number -> number
        | :? int32 as number -> int64 number
        | _ -> fail $"field '{name}' is out of range"
    | _ -> fail $"field '{name}' must be an integer"

let private longField (frame: JObject) (name: string) : int64 = integer name (required frame name)

let private intField (frame: JObject) (name: string) : int =
    let value = longField frame name
    if value < int64 System.Int32.MinValue || value > int64 System.Int32.MaxValue then fail $"field '{name}' is out of range"
    int value

let private optionalField (frame: JObject) (name: string) (read: JObject -> string -> 'T) : 'T option =
    match frame.[name] with
    | null -> None
    | token when token.Type = JTokenType.Null -> None
    | _ -> Some(read frame name)

let private boolField (frame: JObject) (name: string) : bool =
    match required frame name with
    | token when token.Type = JTokenType.Boolean -> System.Convert.ToBoolean((token :?> JValue).Value)
    | _ -> fail $"field '{name}' must be true or false"

let private optionalNodeField (frame: JObject) (name: string) : NodeId option = optionalField frame name intField

let private objectField (frame: JObject) (name: string) : JObject =
    match required frame name with
    | :? JObject as inner -> inner
    | _ -> fail $"field '{name}' must be an object"

let private arrayField (frame: JObject) (name: string) : JToken list =
    match required frame name with
    | :? JArray as items -> List.ofSeq items
    | _ -> fail $"field '{name}' must be an array"

let private endpointField (frame: JObject) (name: string) : Endpoint =
    match Endpoint.tryParse (stringField frame name) with
    | Some endpoint -> endpoint
    | None -> fail $"field '{name}' must be host:port"

let private asObject (token: JToken) : JObject =
    match token with
    | :? JObject as inner -> inner
    | _ -> fail "an array item must be an object"

let private asString (token: JToken) : string =
    if token.Type = JTokenType.String then token.Value<string>() |> Option.ofObj |> Option.defaultValue ""
    else fail "an array item must be a string"

let private nodeInfoOf (frame: JObject) : NodeInfo =
    { Id = intField frame "id"
      ClientEndpoint = endpointField frame "client"
      PeerEndpoint = endpointField frame "peer" }

let private loadOf (frame: JObject) : Load =
    let load = objectField frame "load"
    { Clients = intField load "clients"
      Rooms = intField load "rooms"
      MessagesPerSecond = intField load "messagesPerSecond" }

/// Parses one frame: the version is checked, then `read` maps the "type" to a value.
let private decode (line: string) (read: string -> JObject -> 'T) : Result<'T, DecodeError> =
    try
        let frame = parseObject line
        match frame.["v"] with
        | null -> ()
        | _ when intField frame "v" = protocolVersion -> ()
        | _ -> raise (FrameInvalid "version")
        Ok(read (stringField frame "type") frame)
    with
    | FrameInvalid "version" ->
        Result.Error { Code = VersionMismatch; Reason = $"this node speaks protocol version {protocolVersion}" }
    | FrameInvalid reason -> Result.Error { Code = BadFrame; Reason = reason }
    // Whatever else a hostile frame provokes in the parser (huge numbers, odd tokens) is refused too.
    | error -> Result.Error { Code = BadFrame; Reason = error.Message }

/// A room name between nodes is always the canonical one (lower case, checked): anything else is
/// a forged or broken frame, refused here rather than met deep in the node (a log file name).
let private roomField (frame: JObject) (name: string) : RoomName =
    let text = stringField frame name
    match Rooms.validateRoomName text with
    | Ok room when room = text -> room
    | _ -> fail $"'{name}' is not a room name: '{text}'"

let private unknownType (kind: string) = fail $"unknown message type '{kind}'"

let private userOf (user: JObject) : UserEntry =
    { Nick = stringField user "nick"
      Node = intField user "node"
      Rooms = arrayField user "rooms" |> List.map asString }

let private knownUserOf (user: JObject) : KnownUser =
    { User = userOf user; Session = stringField user "session" }

let private roomMessageOf (frame: JObject) (nodeField: string) : RoomMessage =
    { Room = roomField frame "room"
      Seq = longField frame "seq"
      From = stringField frame "from"
      FromNode = intField frame nodeField
      Text = stringField frame "text"
      ClientMessageId = longField frame "id" }

let private backupOf (frame: JObject) : BackupAssignment =
    let backup = objectField frame "backup"
    { Backup = intField backup "backup"
      Owner = intField backup "owner"
      Epoch = intField backup "epoch"
      Leader = intField backup "leader"
      Version = intField backup "version" }

let private messagesOf (frame: JObject) (name: string) : RoomMessage list =
    arrayField frame name |> List.map (fun token -> roomMessageOf (asObject token) "fromNode")

/// A record of the on-disk log; Error when it is not one.
let decodeRoomMessage (line: string) : Result<RoomMessage, DecodeError> =
    decode line (fun _ frame -> roomMessageOf frame "fromNode")

let decodePeerMessage (line: string) : Result<PeerMessage, DecodeError> =
    decode line (fun kind frame ->
        match kind with
        | "heartbeat" ->
            HeartbeatSent
                { From = nodeInfoOf (objectField frame "from")
                  Epoch = intField frame "epoch"
                  Leader = optionalNodeField frame "leader"
                  Load = loadOf frame
                  Known = arrayField frame "known" |> List.map (asObject >> nodeInfoOf) }
        | "election" -> Election { Candidate = intField frame "candidate"; Epoch = intField frame "epoch" }
        | "leader" -> LeaderAnnounced { Leader = intField frame "leader"; Epoch = intField frame "epoch" }
        | "leave" -> LeaveAnnounced(intField frame "node")
        | "private" ->
            PrivateForwarded
                { From = stringField frame "from"
                  FromNode = intField frame "fromNode"
                  To = stringField frame "to"
                  Text = stringField frame "text" }
        | "user-joined" -> UserJoined(knownUserOf (objectField frame "user"))
        | "user-left" -> UserLeft(stringField frame "nick", intField frame "node")
        | "member-joined" -> MemberJoined(roomField frame "room", stringField frame "nick")
        | "member-left" -> MemberLeft(roomField frame "room", stringField frame "nick")
        | "users" -> UsersListed(intField frame "node", arrayField frame "users" |> List.map (asObject >> knownUserOf))
        | "users-requested" -> UsersRequested(intField frame "node")
        | "place" -> PlacementRequested(roomField frame "room", intField frame "requester")
        | "placed" ->
            RoomAssigned(
                roomField frame "room",
                { Owner = intField frame "owner"
                  Epoch = intField frame "epoch"
                  Leader = intField frame "leader"
                  Version = intField frame "version"
                  LastSeq = longField frame "lastSeq" }
            )
        | "post" ->
            RoomPosted
                { Room = roomField frame "room"
                  From = stringField frame "from"
                  FromNode = intField frame "fromNode"
                  Text = stringField frame "text"
                  ClientMessageId = longField frame "id" }
        | "sequenced" -> RoomSequenced(roomMessageOf frame "fromNode")
        | "backup-assigned" -> BackupAssigned(roomField frame "room", backupOf frame)
        | "replica-sync" -> ReplicaSynced(roomField frame "room", backupOf frame, messagesOf frame "committed", messagesOf frame "pending")
        | "replica-append" -> ReplicaAppended(backupOf frame, roomMessageOf (objectField frame "message") "fromNode")
        | "replica-stored" -> ReplicaStored(roomField frame "room", intField frame "version", longField frame "seq")
        | "history-requested" -> HistoryRequested(roomField frame "room", longField frame "after", intField frame "requester")
        | "history" -> HistoryShared(roomField frame "room", messagesOf frame "messages")
        | other -> unknownType other)

let private resumeOf (frame: JObject) : (RoomName * int64) list =
    match frame.["resume"] with
    | null -> []
    | token when token.Type = JTokenType.Null -> []
    | :? JObject as rooms -> [ for property in rooms.Properties() -> property.Name, integer "resume" property.Value ]
    | _ -> fail "field 'resume' must be an object of room: last sequence number"

let decodeClientRequest (line: string) : Result<ClientRequest, DecodeError> =
    decode line (fun kind frame ->
        match kind with
        | "hello" -> Hello { Nick = stringField frame "nick"; Session = optionalField frame "session" stringField; Resume = resumeOf frame }
        | "say" ->
            Say(
                optionalField frame "room" stringField |> Option.defaultValue Rooms.lobby,
                stringField frame "text",
                optionalField frame "id" longField |> Option.defaultValue 0L
            )
        | "msg" -> Whisper(stringField frame "to", stringField frame "text")
        | "join" -> Join(stringField frame "room")
        | "leave" -> Leave(stringField frame "room")
        | "rooms" -> Rooms
        | "who" -> Who(optionalField frame "room" stringField)
        | "status" -> Status
        | "quit" -> Quit
        | other -> unknownType other)

let private errorCodeOf (name: string) : ErrorCode =
    match allErrorCodes |> List.tryFind (fun code -> errorCodeName code = name) with
    | Some code -> code
    | None -> fail $"unknown error code '{name}'"

let decodeServerReply (line: string) : Result<ServerReply, DecodeError> =
    decode line (fun kind frame ->
        match kind with
        | "welcome" -> Welcome(stringField frame "nick", intField frame "node", optionalNodeField frame "leader", stringField frame "session")
        | "message" -> Message(roomMessageOf frame "node")
        | "private" ->
            Private
                { From = stringField frame "from"
                  FromNode = intField frame "node"
                  To = stringField frame "to"
                  Text = stringField frame "text" }
        | "joined" -> Joined(stringField frame "room", optionalNodeField frame "owner", intField frame "members")
        | "left" -> LeftRoom(stringField frame "room")
        | "rooms" ->
            RoomsListed(
                arrayField frame "rooms"
                |> List.map (fun token ->
                    let room = asObject token
                    { Room = stringField room "room"
                      Owner = optionalNodeField room "owner"
                      Backup = optionalNodeField room "backup"
                      Members = intField room "members" })
            )
        | "who" -> WhoListed(optionalField frame "room" stringField, arrayField frame "users" |> List.map (asObject >> userOf))
        | "status" ->
            StatusReported
                { Self = intField frame "self"
                  Leader = optionalNodeField frame "leader"
                  Epoch = intField frame "epoch"
                  Nodes =
                    arrayField frame "nodes"
                    |> List.map (fun token ->
                        let node = asObject token
                        { Id = intField node "id"
                          ClientEndpoint = endpointField node "client"
                          Load = loadOf node
                          IsLeader = boolField node "leader"
                          IsSelf = boolField node "self" })
                  Unreplicated = optionalField frame "unreplicated" (fun frame name -> arrayField frame name |> List.map asString) |> Option.defaultValue [] }
        | "redirect" -> Redirected(intField frame "node", endpointField frame "client", stringField frame "reason")
        | "error" -> Error(errorCodeOf (stringField frame "code"), stringField frame "reason")
        | "system" -> Notice(stringField frame "text")
        | other -> unknownType other)
