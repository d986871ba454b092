/// The wire format: one JSON object per line (docs/PROTOCOL.md), for client frames and peer
/// frames alike. Encoding and decoding are pure; the shell does the reading and the writing.
/// System.Text.Json does the JSON: its writer encodes straight to UTF-8, and its reader is
/// strict (RFC 8259), so comments, single quotes, unquoted keys, trailing commas, a NUL and
/// duplicate keys are refused as bad-frame instead of being read one way here and another way
/// by some other parser.
module FormalChat.Protocol.Wire

open System
open System.Buffers
open System.Text
open System.Text.Encodings.Web
open System.Text.Json
open System.Text.Unicode

/// Frames longer than this are refused and the connection closed (the default of --max-frame).
let defaultMaxFrameBytes = 64 * 1024

/// Frames between nodes may be larger: a state transfer carries a room's recent history (at
/// most Rooms.transferBudgetChars characters of text, a few bytes each once encoded).
let maxPeerFrameBytes = 32 * 1024 * 1024

// ---------------------------------------------------------------------------------------------
// Encoding: a Utf8JsonWriter, so a frame costs its UTF-8 bytes and no intermediate tree.

/// Text is written as it is, not as \uXXXX: only what JSON requires is escaped (quotes,
/// backslashes, control characters), as the frames were written before, and every frame stays
/// readable in a log. "Unsafe" in the name is about pasting JSON into HTML; frames never are.
let private writerOptions = JsonWriterOptions(Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping)

/// One frame's JSON as UTF-8, with a newline after it when it is to be a whole line.
let private encodeUtf8 (write: Utf8JsonWriter -> unit) (newline: bool) : byte array =
    use buffer = new PooledBufferWriter(512)
    do
        use json = new Utf8JsonWriter(buffer, writerOptions)
        json.WriteStartObject()
        json.WriteNumber("v", protocolVersion)
        write json
        json.WriteEndObject()
    if newline then
        let writer = buffer :> IBufferWriter<byte>
        writer.GetSpan(1).[0] <- byte '\n'
        writer.Advance 1
    buffer.ToArray()

let private encode (write: Utf8JsonWriter -> unit) : string =
    Encoding.UTF8.GetString(encodeUtf8 write false)

/// The field writers by value type, picked at compile time by `field` so no number is boxed.
/// Public only because F# resolves member constraints against public members; not for callers.
[<AbstractClass; Sealed; System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Never)>]
type FieldWriter =
    static member Write(json: Utf8JsonWriter, name: string, value: string) = json.WriteString(name, value)
    static member Write(json: Utf8JsonWriter, name: string, value: int) = json.WriteNumber(name, value)
    static member Write(json: Utf8JsonWriter, name: string, value: int64) = json.WriteNumber(name, value)
    static member Write(json: Utf8JsonWriter, name: string, value: bool) = json.WriteBoolean(name, value)

let inline private writeField (_: ^Writer) (json: Utf8JsonWriter) (name: string) (value: ^Value) =
    ((^Writer or ^Value): (static member Write: Utf8JsonWriter * string * ^Value -> unit) (json, name, value))

let inline private field (json: Utf8JsonWriter) (name: string) value =
    writeField Unchecked.defaultof<FieldWriter> json name value

let private kind (json: Utf8JsonWriter) (name: string) = field json "type" name

let private optionalNode (json: Utf8JsonWriter) (name: string) (node: NodeId option) =
    match node with
    | Some id -> json.WriteNumber(name, id)
    | None -> json.WriteNull name

let private writeNodeInfo (json: Utf8JsonWriter) (info: NodeInfo) =
    json.WriteStartObject()
    field json "id" info.Id
    field json "client" (string info.ClientEndpoint)
    field json "peer" (string info.PeerEndpoint)
    json.WriteEndObject()

let private writeLoad (json: Utf8JsonWriter) (load: Load) =
    json.WritePropertyName "load"
    json.WriteStartObject()
    field json "clients" load.Clients
    field json "rooms" load.Rooms
    field json "messagesPerSecond" load.MessagesPerSecond
    json.WriteEndObject()

let private writeArray (json: Utf8JsonWriter) (name: string) (items: 'T list) (write: 'T -> unit) =
    json.WritePropertyName name
    json.WriteStartArray()
    items |> List.iter write
    json.WriteEndArray()

/// A user object; what nodes tell each other adds the session token to the same fields.
let private writeUserWith (json: Utf8JsonWriter) (user: UserEntry) (session: string option) =
    json.WriteStartObject()
    field json "nick" user.Nick
    field json "node" user.Node
    writeArray json "rooms" user.Rooms (fun room -> json.WriteStringValue room)
    session |> Option.iter (field json "session")
    json.WriteEndObject()

let private writeUser (json: Utf8JsonWriter) (user: UserEntry) = writeUserWith json user None

let private writeKnownUser (json: Utf8JsonWriter) (known: KnownUser) = writeUserWith json known.User (Some known.Session)

let private writeRoomMessage (json: Utf8JsonWriter) (message: RoomMessage) (nodeField: string) =
    field json "room" message.Room
    field json "seq" message.Seq
    field json "from" message.From
    field json nodeField message.FromNode
    field json "text" message.Text
    field json "id" message.ClientMessageId

let private writeBackup (json: Utf8JsonWriter) (backup: BackupAssignment) =
    json.WritePropertyName "backup"
    json.WriteStartObject()
    field json "backup" backup.Backup
    field json "owner" backup.Owner
    field json "epoch" backup.Epoch
    field json "leader" backup.Leader
    field json "version" backup.Version
    json.WriteEndObject()

/// A room message as a nested object, in peer frames.
let private writeMessageObject (json: Utf8JsonWriter) (message: RoomMessage) =
    json.WriteStartObject()
    writeRoomMessage json message "fromNode"
    json.WriteEndObject()

let private writeMessages (json: Utf8JsonWriter) (name: string) (messages: RoomMessage list) =
    writeArray json name messages (writeMessageObject json)

/// One room message as a record of the on-disk log.
let encodeRoomMessage (message: RoomMessage) : string =
    encode (fun json ->
        kind json "logged"
        writeRoomMessage json message "fromNode")

let private peerMessageWriter (message: PeerMessage) : Utf8JsonWriter -> unit =
    (fun json ->
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
        | ReplicaStored(room, backup, seq) ->
            kind json "replica-stored"
            field json "room" room
            writeBackup json backup
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

let private clientRequestWriter (request: ClientRequest) : Utf8JsonWriter -> unit =
    (fun json ->
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
    | TlsRequired -> "tls-required"
    | LoginThrottled -> "login-throttled"

let private allErrorCodes =
    [ NickTaken; NickInvalid; HelloFirst; AlreadyHello; NoSuchUser; ServerFull; TextInvalid; BadFrame; FrameTooLarge; VersionMismatch
      RoomInvalid; NotInRoom; RateLimited; TlsRequired; LoginThrottled ]

let private serverReplyWriter (reply: ServerReply) : Utf8JsonWriter -> unit =
    (fun json ->
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
            writeArray json "unreplicated" status.Unreplicated (fun room -> json.WriteStringValue room)
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

/// A frame as a string, for tests, logs and the client's printing.
let encodePeerMessage (message: PeerMessage) : string = encode (peerMessageWriter message)
let encodeClientRequest (request: ClientRequest) : string = encode (clientRequestWriter request)
let encodeServerReply (reply: ServerReply) : string = encode (serverReplyWriter reply)

/// A frame as the bytes of one line, newline included: what the shells put on a socket. A
/// frame written once can go to every member and every peer as it is.
let encodePeerMessageLine (message: PeerMessage) : byte array = encodeUtf8 (peerMessageWriter message) true
let encodeClientRequestLine (request: ClientRequest) : byte array = encodeUtf8 (clientRequestWriter request) true
let encodeServerReplyLine (reply: ServerReply) : byte array = encodeUtf8 (serverReplyWriter reply) true

// ---------------------------------------------------------------------------------------------
// Decoding: every way a frame can be wrong becomes an Error with a reason a person can read.

type DecodeError = { Code: ErrorCode; Reason: string }

exception private FrameInvalid of string

let private fail reason = raise (FrameInvalid reason)

/// RFC 8259 and nothing more, nested at most 16 deep. A key given twice is refused too: which
/// of the two counts would otherwise depend on the parser (RFC 8259 §4 leaves it open).
let private documentOptions =
    JsonDocumentOptions(
        MaxDepth = 16,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        AllowDuplicateProperties = false
    )

/// A field that is present and not null.
let private tryField (frame: JsonElement) (name: string) : JsonElement voption =
    match frame.TryGetProperty name with
    | true, value when value.ValueKind <> JsonValueKind.Null -> ValueSome value
    | _ -> ValueNone

let private required (frame: JsonElement) (name: string) : JsonElement =
    match frame.TryGetProperty name with
    | false, _ -> fail $"missing field '{name}'"
    | true, value when value.ValueKind = JsonValueKind.Null -> fail $"field '{name}' is null"
    | true, value -> value

let private asStringNamed (what: string) (token: JsonElement) : string =
    if token.ValueKind = JsonValueKind.String then token.GetString() |> Option.ofObj |> Option.defaultValue ""
    else fail what

let private stringField (frame: JsonElement) (name: string) : string =
    asStringNamed $"field '{name}' must be a string" (required frame name)

let private integer (name: string) (token: JsonElement) : int64 =
    if token.ValueKind <> JsonValueKind.Number then fail $"field '{name}' must be an integer"
    match token.TryGetInt64() with
    | true, number -> number
    | false, _ ->
        // A fraction or an exponent is not an integer; digits alone that do not fit are out of range.
        if token.GetRawText() |> Seq.exists (fun c -> c = '.' || c = 'e' || c = 'E') then fail $"field '{name}' must be an integer"
        else fail $"field '{name}' is out of range"

let private longField (frame: JsonElement) (name: string) : int64 = integer name (required frame name)

let private intField (frame: JsonElement) (name: string) : int =
    let value = longField frame name
    if value < int64 Int32.MinValue || value > int64 Int32.MaxValue then fail $"field '{name}' is out of range"
    int value

/// Peer frames carry numbers only inside these ranges (docs/PROTOCOL.md, "Ranges"). A number
/// outside is no honest node's: the frame is refused, and the shell closes the link it came on.
/// 2^53 is the largest integer JSON can carry exactly (RFC 8259 §6) and far beyond any real
/// seq or epoch (2^53 messages at a million a second take 285 years); it also leaves room to
/// add to them without overflowing an int64.
let maxSeq = 1L <<< 53
let maxEpoch = 1L <<< 53
/// Versions count one room's assignments and are ints: below 2^30, `version + 1` never wraps.
let maxVersion = 1 <<< 30

/// A node id between nodes: configured ids are positive ints (0 means "none" in the spec).
let private nodeField (frame: JsonElement) (name: string) : NodeId =
    let value = longField frame name
    if value < 1L || value > int64 Int32.MaxValue then fail $"field '{name}' is not a node id: {value}"
    int value

let private boundedField (frame: JsonElement) (name: string) (bound: int64) : int64 =
    let value = longField frame name
    if value < 0L || value > bound then fail $"field '{name}' is out of range: {value} (0 to {bound})"
    value

let private seqField (frame: JsonElement) (name: string) : int64 = boundedField frame name maxSeq
let private epochField (frame: JsonElement) (name: string) : Epoch = boundedField frame name maxEpoch
let private versionField (frame: JsonElement) (name: string) : int = int (boundedField frame name (int64 maxVersion))

let private optionalField (frame: JsonElement) (name: string) (read: JsonElement -> string -> 'T) : 'T option =
    match tryField frame name with
    | ValueNone -> None
    | ValueSome _ -> Some(read frame name)

let private boolField (frame: JsonElement) (name: string) : bool =
    match (required frame name).ValueKind with
    | JsonValueKind.True -> true
    | JsonValueKind.False -> false
    | _ -> fail $"field '{name}' must be true or false"

let private optionalNodeField (frame: JsonElement) (name: string) : NodeId option = optionalField frame name intField

/// A peer frame's optional node id: when present, a positive int like every other.
let private optionalPeerNodeField (frame: JsonElement) (name: string) : NodeId option = optionalField frame name nodeField

let private objectField (frame: JsonElement) (name: string) : JsonElement =
    match required frame name with
    | inner when inner.ValueKind = JsonValueKind.Object -> inner
    | _ -> fail $"field '{name}' must be an object"

let private arrayField (frame: JsonElement) (name: string) : JsonElement list =
    match required frame name with
    | items when items.ValueKind = JsonValueKind.Array -> [ for item in items.EnumerateArray() -> item ]
    | _ -> fail $"field '{name}' must be an array"

let private endpointField (frame: JsonElement) (name: string) : Endpoint =
    match Endpoint.tryParse (stringField frame name) with
    | Some endpoint -> endpoint
    | None -> fail $"field '{name}' must be host:port"

let private asObject (token: JsonElement) : JsonElement =
    if token.ValueKind = JsonValueKind.Object then token else fail "an array item must be an object"

let private asString (token: JsonElement) : string = asStringNamed "an array item must be a string" token

let private nodeInfoOf (frame: JsonElement) : NodeInfo =
    { Id = nodeField frame "id"
      ClientEndpoint = endpointField frame "client"
      PeerEndpoint = endpointField frame "peer" }

let private loadOf (frame: JsonElement) : Load =
    let load = objectField frame "load"
    { Clients = intField load "clients"
      Rooms = intField load "rooms"
      MessagesPerSecond = intField load "messagesPerSecond" }

/// Parses one frame of UTF-8: the version is checked, then `read` maps the "type" to a value.
/// Everything is read out of the document before it is disposed (it lends pooled buffers).
let private decode (utf8: ReadOnlyMemory<byte>) (read: string -> JsonElement -> 'T) : Result<'T, DecodeError> =
    try
        // Checked first and whole: JSON text must be UTF-8 (RFC 8259 §8.1), and bytes that are
        // not would otherwise reach the members as U+FFFD.
        if not (Utf8.IsValid utf8.Span) then fail "not valid UTF-8"
        use document =
            try
                JsonDocument.Parse(utf8, documentOptions)
            with :? JsonException as error ->
                fail $"not valid JSON: {error.Message}"
        let frame = document.RootElement
        if frame.ValueKind <> JsonValueKind.Object then fail "a frame is one JSON object"
        match tryField frame "v" with
        | ValueNone -> ()
        | ValueSome _ when intField frame "v" = protocolVersion -> ()
        | ValueSome _ -> raise (FrameInvalid "version")
        Ok(read (stringField frame "type") frame)
    with
    | FrameInvalid "version" ->
        Result.Error { Code = VersionMismatch; Reason = $"this node speaks protocol version {protocolVersion}" }
    | FrameInvalid reason -> Result.Error { Code = BadFrame; Reason = reason }
    // Whatever else a hostile frame provokes in the parser is refused too: the decoder never throws.
    | error -> Result.Error { Code = BadFrame; Reason = error.Message }

/// A frame given as a string (tests, the log, the client) is read as its UTF-8 bytes.
let private decodeText (line: string) (read: string -> JsonElement -> 'T) : Result<'T, DecodeError> =
    decode (ReadOnlyMemory(Encoding.UTF8.GetBytes line)) read

/// A room name between nodes is always the canonical one (lower case, checked): anything else is
/// a forged or broken frame, refused here rather than met deep in the node (a log file name).
let private roomField (frame: JsonElement) (name: string) : RoomName =
    let text = stringField frame name
    match Rooms.validateRoomName text with
    | Ok room when room = text -> room
    | _ -> fail $"'{name}' is not a room name: '{text}'"

let private unknownType (kind: string) = fail $"unknown message type '{kind}'"

let private userOf (user: JsonElement) : UserEntry =
    { Nick = stringField user "nick"
      Node = nodeField user "node"
      Rooms = arrayField user "rooms" |> List.map asString }

let private knownUserOf (user: JsonElement) : KnownUser =
    { User = userOf user; Session = stringField user "session" }

let private roomMessageOf (frame: JsonElement) (nodeField: string) : RoomMessage =
    { Room = roomField frame "room"
      Seq = seqField frame "seq"
      From = stringField frame "from"
      FromNode = intField frame nodeField
      Text = stringField frame "text"
      ClientMessageId = longField frame "id" }

let private backupOf (frame: JsonElement) : BackupAssignment =
    let backup = objectField frame "backup"
    { Backup = nodeField backup "backup"
      Owner = nodeField backup "owner"
      Epoch = epochField backup "epoch"
      Leader = nodeField backup "leader"
      Version = versionField backup "version" }

let private messagesOf (frame: JsonElement) (name: string) : RoomMessage list =
    arrayField frame name |> List.map (fun token -> roomMessageOf (asObject token) "fromNode")

let private readRoomMessage : string -> JsonElement -> RoomMessage =
    (fun _ frame -> roomMessageOf frame "fromNode")

let private readPeerMessage : string -> JsonElement -> PeerMessage =
    (fun kind frame ->
        match kind with
        | "heartbeat" ->
            HeartbeatSent
                { From = nodeInfoOf (objectField frame "from")
                  Epoch = epochField frame "epoch"
                  Leader = optionalPeerNodeField frame "leader"
                  Load = loadOf frame
                  Known = arrayField frame "known" |> List.map (asObject >> nodeInfoOf) }
        | "election" -> Election { Candidate = nodeField frame "candidate"; Epoch = epochField frame "epoch" }
        | "leader" -> LeaderAnnounced { Leader = nodeField frame "leader"; Epoch = epochField frame "epoch" }
        | "leave" -> LeaveAnnounced(nodeField frame "node")
        | "private" ->
            PrivateForwarded
                { From = stringField frame "from"
                  FromNode = intField frame "fromNode"
                  To = stringField frame "to"
                  Text = stringField frame "text" }
        | "user-joined" -> UserJoined(knownUserOf (objectField frame "user"))
        | "user-left" -> UserLeft(stringField frame "nick", nodeField frame "node")
        | "member-joined" -> MemberJoined(roomField frame "room", stringField frame "nick")
        | "member-left" -> MemberLeft(roomField frame "room", stringField frame "nick")
        | "users" -> UsersListed(nodeField frame "node", arrayField frame "users" |> List.map (asObject >> knownUserOf))
        | "users-requested" -> UsersRequested(nodeField frame "node")
        | "place" -> PlacementRequested(roomField frame "room", nodeField frame "requester")
        | "placed" ->
            RoomAssigned(
                roomField frame "room",
                { Owner = nodeField frame "owner"
                  Epoch = epochField frame "epoch"
                  Leader = nodeField frame "leader"
                  Version = versionField frame "version"
                  LastSeq = seqField frame "lastSeq" }
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
        | "replica-stored" -> ReplicaStored(roomField frame "room", backupOf frame, seqField frame "seq")
        | "history-requested" -> HistoryRequested(roomField frame "room", seqField frame "after", nodeField frame "requester")
        | "history" -> HistoryShared(roomField frame "room", messagesOf frame "messages")
        | other -> unknownType other)

let private resumeOf (frame: JsonElement) : (RoomName * int64) list =
    match tryField frame "resume" with
    | ValueNone -> []
    | ValueSome rooms when rooms.ValueKind = JsonValueKind.Object ->
        [ for property in rooms.EnumerateObject() -> property.Name, integer "resume" property.Value ]
    | ValueSome _ -> fail "field 'resume' must be an object of room: last sequence number"

let private readClientRequest : string -> JsonElement -> ClientRequest =
    (fun kind frame ->
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

let private readServerReply : string -> JsonElement -> ServerReply =
    (fun kind frame ->
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
                  Epoch = longField frame "epoch"
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

// The decoders. The UTF-8 ones take a frame's bytes as they came off the socket, without its
// newline, so invalid UTF-8 is seen and refused; the string ones serve tests, logs and clients.

/// A record of the on-disk log; Error when it is not one.
let decodeRoomMessage (line: string) : Result<RoomMessage, DecodeError> = decodeText line readRoomMessage
let decodePeerMessage (line: string) : Result<PeerMessage, DecodeError> = decodeText line readPeerMessage
let decodeClientRequest (line: string) : Result<ClientRequest, DecodeError> = decodeText line readClientRequest
let decodeServerReply (line: string) : Result<ServerReply, DecodeError> = decodeText line readServerReply

let decodeRoomMessageUtf8 (utf8: ReadOnlyMemory<byte>) : Result<RoomMessage, DecodeError> = decode utf8 readRoomMessage
let decodePeerMessageUtf8 (utf8: ReadOnlyMemory<byte>) : Result<PeerMessage, DecodeError> = decode utf8 readPeerMessage
let decodeClientRequestUtf8 (utf8: ReadOnlyMemory<byte>) : Result<ClientRequest, DecodeError> = decode utf8 readClientRequest
let decodeServerReplyUtf8 (utf8: ReadOnlyMemory<byte>) : Result<ServerReply, DecodeError> = decode utf8 readServerReply
