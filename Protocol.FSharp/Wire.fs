/// The wire format: one JSON object per line (docs/PROTOCOL.md), for client frames and peer
/// frames alike. Encoding and decoding are pure; the shell does the reading and the writing.
/// System.Text.Json does the JSON: its writer encodes straight to UTF-8, and its reader is
/// strict (RFC 8259), so comments, single quotes, unquoted keys, trailing commas, a NUL and
/// duplicate keys are refused as bad-frame instead of being read one way here and another way
/// by some other parser. Each message union is one table below (the combinators are in
/// WireCodec.fs): a case's tag and its fields are written once, and both directions follow it.
module FormalChat.Protocol.Wire

open System
open System.Buffers
open System.Text
open System.Text.Encodings.Web
open System.Text.Json
open System.Text.Unicode
open FormalChat.Protocol.WireCodec

/// Frames longer than this are refused and the connection closed (the default of --max-frame).
let defaultMaxFrameBytes = 64 * 1024

/// Frames between nodes may be larger: a state transfer carries a room's recent history (at
/// most Rooms.transferBudgetChars characters of text, a few bytes each once encoded).
let maxPeerFrameBytes = 32 * 1024 * 1024

/// Peer frames carry numbers only inside these ranges (docs/PROTOCOL.md, "Ranges"). A number
/// outside is no honest node's: the frame is refused, and the shell closes the link it came on.
/// 2^53 is the largest integer JSON can carry exactly (RFC 8259 §6) and far beyond any real
/// seq or epoch (2^53 messages at a million a second take 285 years); it also leaves room to
/// add to them without overflowing an int64.
let maxSeq = 1L <<< 53
let maxEpoch = 1L <<< 53
/// Versions count one room's assignments and are ints: below 2^30, `version + 1` never wraps.
let maxVersion = 1 <<< 30

let errorCodeName (code: ErrorCode) : string = ErrorCode.name code

// ---------------------------------------------------------------------------------------------
// The kinds of value a frame holds, beyond text and plain numbers (WireCodec).

let private seq : Value<int64> = bounded maxSeq
let private epoch : Value<Epoch> = bounded maxEpoch
let private version : Value<int> = boundedInt32 maxVersion

let private endpoint : Value<Endpoint> =
    textAs string (fun name text ->
        match Endpoint.tryParse text with
        | Some endpoint -> endpoint
        | None -> fail $"field '{name.Text}' must be host:port")

/// A room name between nodes is always the canonical one (lower case, checked): anything else is
/// a forged or broken frame, refused here rather than met deep in the node (a log file name).
let private room : Value<RoomName> =
    textAs _.Value (fun name text ->
        match Rooms.validateRoomName text with
        | Ok room when room.Value = text -> room
        | _ when text = Accounts.room.Value -> Accounts.room
        | _ -> fail $"'{name.Text}' is not a room name: '{text}'")

/// A room name in a user entry or a node's reply to its client, taken as written, unchecked
/// (as a client takes it from its node).
let private roomAsWritten : Value<RoomName> = textAs _.Value (fun _ text -> RoomName text)

let private roomItem : Item<RoomName> = mapItem RoomName _.Value stringItem

/// A nickname, taken as written: a node checks a nick once, where a client typed it
/// (Chat.validateNick), and every frame carries it as plain text.
let private nick : Value<Nick> = textAs _.Value (fun _ text -> Nick text)

let private errorCode : Value<ErrorCode> =
    textAs ErrorCode.name (fun _ text ->
        match ErrorCode.tryParse text with
        | Some code -> code
        | None -> fail $"unknown error code '{text}'")

/// A password travels only from a client to its node (over TLS off loopback); the shell turns it
/// into a record before the core sees it (Messages.Password), and a record is never written out.
let private password : Value<Password> =
    textAs
        (function
         | Given password -> password
         | Hashed _
         | Mismatched -> "")
        (fun _ text -> Given text)

/// Rooms to resume, as an object of room: last sequence number, in the client's order.
let private resumePoints : Value<(string * int64) list> =
    value
        (fun json name rooms ->
            json.WritePropertyName name.Encoded
            json.WriteStartObject()
            for room, seq in rooms do json.WriteNumber(room, seq)
            json.WriteEndObject())
        (fun frame name ->
            match required frame name with
            | rooms when rooms.ValueKind = JsonValueKind.Object ->
                [ for property in rooms.EnumerateObject() -> property.Name, integer name.Text property.Value ]
            | _ -> fail $"field '{name.Text}' must be an object of room: last sequence number")

// ---------------------------------------------------------------------------------------------
// Records that appear in more than one frame.

let private nodeInfo : Fields<NodeInfo> =
    fields3 (field "id" nodeId) (field "client" endpoint) (field "peer" endpoint)
    |> mapFields (fun struct (id, client, peer) -> { Id = id; ClientEndpoint = client; PeerEndpoint = peer }) (fun info ->
        struct (info.Id, info.ClientEndpoint, info.PeerEndpoint))

let private load : Fields<Load> =
    fields3 (field "clients" int32Value) (field "rooms" int32Value) (field "messagesPerSecond" int32Value)
    |> mapFields (fun struct (clients, rooms, rate) -> { Clients = clients; Rooms = rooms; MessagesPerSecond = rate }) (fun load ->
        struct (load.Clients, load.Rooms, load.MessagesPerSecond))

/// A room message; its sender's node is "fromNode" between nodes and in the log, "node" to clients.
let private roomMessage (nodeName: string) : Fields<RoomMessage> =
    fields6 (field "room" room) (field "seq" seq) (field "from" nick) (field nodeName int32Value) (field "text" text) (field "id" int64Value)
    |> mapFields
        (fun struct (room, seq, from, node, text, id) -> { Room = room; Seq = seq; From = from; FromNode = node; Text = text; ClientMessageId = id })
        (fun message -> struct (message.Room, message.Seq, message.From, message.FromNode, message.Text, message.ClientMessageId))

let private peerRoomMessage = roomMessage "fromNode"
let private peerRoomMessages = listOf (objectItem peerRoomMessage)

let private privateLine (nodeName: string) : Fields<PrivateLine> =
    fields4 (field "from" nick) (field nodeName int32Value) (field "to" nick) (field "text" text)
    |> mapFields (fun struct (from, node, target, text) -> { From = from; FromNode = node; To = target; Text = text }) (fun line ->
        struct (line.From, line.FromNode, line.To, line.Text))

let private user : Fields<UserEntry> =
    fields3 (field "nick" nick) (field "node" nodeId) (field "rooms" (listOf roomItem))
    |> mapFields (fun struct (nick, node, rooms) -> { Nick = nick; Node = node; Rooms = rooms }) (fun user -> struct (user.Nick, user.Node, user.Rooms))

/// What nodes tell each other about a user: the user's fields and the session token.
let private knownUser : Fields<KnownUser> =
    fields2 user (field "session" text)
    |> mapFields (fun struct (user, session) -> { User = user; Session = session }) (fun known -> struct (known.User, known.Session))

let private backup : Fields<BackupAssignment> =
    field "backup"
        (objectOf (
            fields5 (field "backup" nodeId) (field "owner" nodeId) (field "epoch" epoch) (field "leader" nodeId) (field "version" version)
            |> mapFields
                (fun struct (backup, owner, epoch, leader, version) -> { Backup = backup; Owner = owner; Epoch = epoch; Leader = leader; Version = version })
                (fun backup -> struct (backup.Backup, backup.Owner, backup.Epoch, backup.Leader, backup.Version))
        ))

let private assignment : Fields<Assignment> =
    fields5 (field "owner" nodeId) (field "epoch" epoch) (field "leader" nodeId) (field "version" version) (field "lastSeq" seq)
    |> mapFields
        (fun struct (owner, epoch, leader, version, lastSeq) -> { Owner = owner; Epoch = epoch; Leader = leader; Version = version; LastSeq = lastSeq })
        (fun placement -> struct (placement.Owner, placement.Epoch, placement.Leader, placement.Version, placement.LastSeq))

let private roomField = field "room" room

let private nickTerm : Fields<NickTerm> =
    fields2 (field "epoch" epoch) (field "leader" nodeId)
    |> mapFields (fun struct (epoch, leader) -> { Epoch = epoch; Leader = leader }) (fun term -> struct (term.Epoch, term.Leader))

let private nickClaim : Fields<NickClaim> =
    fields5 (field "nick" nick) (field "session" text) (field "previous" (omittedWhenNone text)) (field "node" nodeId) (field "term" (objectOf nickTerm))
    |> mapFields
        (fun struct (nick, session, previous, node, term) -> { Nick = nick; Session = session; Previous = previous; Node = node; Term = term })
        (fun claim -> struct (claim.Nick, claim.Session, claim.Previous, claim.Node, claim.Term))

let private roomHeld : Fields<RoomName * int64> =
    fields2 roomField (field "seq" seq)
    |> mapFields (fun struct (room, seq) -> room, seq) (fun (room, seq) -> struct (room, seq))

let private nickHeld : Fields<Nick * string> =
    fields2 (field "nick" nick) (field "session" text)
    |> mapFields (fun struct (nick, session) -> nick, session) (fun (nick, session) -> struct (nick, session))

// ---------------------------------------------------------------------------------------------
// The tables, one per union, each in its union's declaration order (docs/PROTOCOL.md).

let private peerMessages : Table<PeerMessage> =
    table
        [ case "heartbeat"
              (fields5 (field "from" (objectOf nodeInfo)) (field "epoch" epoch) (field "leader" (nullable nodeId)) (field "load" (objectOf load)) (field "known" (listOf (objectItem nodeInfo))))
              (fun struct (from, epoch, leader, load, known) -> HeartbeatSent { From = from; Epoch = epoch; Leader = leader; Load = load; Known = known })
              (function HeartbeatSent beat -> ValueSome(struct (beat.From, beat.Epoch, beat.Leader, beat.Load, beat.Known)) | _ -> ValueNone)
          case "election" (fields2 (field "candidate" nodeId) (field "epoch" epoch))
              (fun struct (candidate, epoch) -> Election { Candidate = candidate; Epoch = epoch })
              (function Election election -> ValueSome(struct (election.Candidate, election.Epoch)) | _ -> ValueNone)
          case "leader" (fields2 (field "leader" nodeId) (field "epoch" epoch))
              (fun struct (leader, epoch) -> LeaderAnnounced { Leader = leader; Epoch = epoch })
              (function LeaderAnnounced leader -> ValueSome(struct (leader.Leader, leader.Epoch)) | _ -> ValueNone)
          case "leave" (field "node" nodeId) LeaveAnnounced (function LeaveAnnounced node -> ValueSome node | _ -> ValueNone)
          case "private" (privateLine "fromNode") PrivateForwarded (function PrivateForwarded line -> ValueSome line | _ -> ValueNone)
          case "user-joined" (fields2 (field "user" (objectOf knownUser)) (field "previous" (omittedWhenNone text)))
              (fun struct (known, previous) -> UserJoined(known, previous))
              (function UserJoined(known, previous) -> ValueSome(struct (known, previous)) | _ -> ValueNone)
          case "user-left" (fields2 (field "nick" nick) (field "node" nodeId))
              (fun struct (nick, node) -> UserLeft(nick, node))
              (function UserLeft(nick, node) -> ValueSome(struct (nick, node)) | _ -> ValueNone)
          case "member-joined" (fields2 roomField (field "nick" nick))
              (fun struct (room, nick) -> MemberJoined(room, nick))
              (function MemberJoined(room, nick) -> ValueSome(struct (room, nick)) | _ -> ValueNone)
          case "member-left" (fields2 roomField (field "nick" nick))
              (fun struct (room, nick) -> MemberLeft(room, nick))
              (function MemberLeft(room, nick) -> ValueSome(struct (room, nick)) | _ -> ValueNone)
          case "users" (fields2 (field "node" nodeId) (field "users" (listOf (objectItem knownUser))))
              (fun struct (node, users) -> UsersListed(node, users))
              (function UsersListed(node, users) -> ValueSome(struct (node, users)) | _ -> ValueNone)
          case "users-requested" (field "node" nodeId) UsersRequested (function UsersRequested node -> ValueSome node | _ -> ValueNone)
          case "place" (fields2 roomField (field "requester" nodeId))
              (fun struct (room, requester) -> PlacementRequested(room, requester))
              (function PlacementRequested(room, requester) -> ValueSome(struct (room, requester)) | _ -> ValueNone)
          case "placed" (fields2 roomField assignment)
              (fun struct (room, placement) -> RoomAssigned(room, placement))
              (function RoomAssigned(room, placement) -> ValueSome(struct (room, placement)) | _ -> ValueNone)
          case "post" (fields5 roomField (field "from" nick) (field "fromNode" int32Value) (field "text" text) (field "id" int64Value))
              (fun struct (room, from, node, text, id) -> RoomPosted { Room = room; From = from; FromNode = node; Text = text; ClientMessageId = id })
              (function RoomPosted post -> ValueSome(struct (post.Room, post.From, post.FromNode, post.Text, post.ClientMessageId)) | _ -> ValueNone)
          case "sequenced" peerRoomMessage RoomSequenced (function RoomSequenced message -> ValueSome message | _ -> ValueNone)
          case "backup-assigned" (fields2 roomField backup)
              (fun struct (room, backup) -> BackupAssigned(room, backup))
              (function BackupAssigned(room, backup) -> ValueSome(struct (room, backup)) | _ -> ValueNone)
          case "replica-sync" (fields4 roomField backup (field "committed" peerRoomMessages) (field "pending" peerRoomMessages))
              (fun struct (room, backup, committed, pending) -> ReplicaSynced(room, backup, committed, pending))
              (function ReplicaSynced(room, backup, committed, pending) -> ValueSome(struct (room, backup, committed, pending)) | _ -> ValueNone)
          case "replica-append" (fields3 roomField backup (field "messages" peerRoomMessages))
              (fun struct (room, backup, messages) -> ReplicaAppended(room, backup, messages))
              (function ReplicaAppended(room, backup, messages) -> ValueSome(struct (room, backup, messages)) | _ -> ValueNone)
          case "replica-stored" (fields3 roomField backup (field "seq" seq))
              (fun struct (room, backup, seq) -> ReplicaStored(room, backup, seq))
              (function ReplicaStored(room, backup, seq) -> ValueSome(struct (room, backup, seq)) | _ -> ValueNone)
          case "history-requested" (fields3 roomField (field "after" seq) (field "requester" nodeId))
              (fun struct (room, after, requester) -> HistoryRequested(room, after, requester))
              (function HistoryRequested(room, after, requester) -> ValueSome(struct (room, after, requester)) | _ -> ValueNone)
          case "history" (fields2 roomField (field "messages" peerRoomMessages))
              (fun struct (room, messages) -> HistoryShared(room, messages))
              (function HistoryShared(room, messages) -> ValueSome(struct (room, messages)) | _ -> ValueNone)
          case "rooms-held" (fields2 (field "node" nodeId) (field "rooms" (listOf (objectItem roomHeld))))
              (fun struct (node, rooms) -> RoomsHeld(node, rooms))
              (function RoomsHeld(node, rooms) -> ValueSome(struct (node, rooms)) | _ -> ValueNone)
          case "nick-claimed" nickClaim NickClaimed (function NickClaimed claim -> ValueSome claim | _ -> ValueNone)
          case "nick-granted" nickClaim NickGranted (function NickGranted claim -> ValueSome claim | _ -> ValueNone)
          case "nick-refused" (fields2 nickClaim (field "holder" nodeId))
              (fun struct (claim, holder) -> NickRefused(claim, holder))
              (function NickRefused(claim, holder) -> ValueSome(struct (claim, holder)) | _ -> ValueNone)
          case "nick-released" nickClaim NickReleased (function NickReleased claim -> ValueSome claim | _ -> ValueNone)
          case "nicks-reported" (fields3 (field "node" nodeId) (field "term" (objectOf nickTerm)) (field "nicks" (listOf (objectItem nickHeld))))
              (fun struct (node, term, nicks) -> NicksReported(node, term, nicks))
              (function NicksReported(node, term, nicks) -> ValueSome(struct (node, term, nicks)) | _ -> ValueNone)
          case "nicks-requested" (field "term" (objectOf nickTerm)) NicksRequested (function NicksRequested term -> ValueSome term | _ -> ValueNone) ]

/// Client rooms are read as typed; the node checks and canonicalises them (Rooms.validateRoomName).
let private clientRequests : Table<ClientRequest> =
    let anyRoom = field "room" text
    table
        [ case "hello" (fields4 (field "nick" text) (field "session" (omittedWhenNone text)) (field "resume" (omittedAt [] resumePoints)) (field "password" (omittedWhenNone password)))
              (fun struct (nick, session, resume, password) -> Hello { Nick = nick; Session = session; Resume = resume; Password = password })
              (function Hello hello -> ValueSome(struct (hello.Nick, hello.Session, hello.Resume, hello.Password)) | _ -> ValueNone)
          // Without a room, a say is a broadcast to #lobby; without an id (0) the node gives it one (ClientRequests).
          case "say" (fields3 (field "room" (orDefault Rooms.lobby.Value text)) (field "text" text) (field "id" (omittedAt 0L positive)))
              (fun struct (room, text, id) -> Say(room, text, id))
              (function Say(room, text, id) -> ValueSome(struct (room, text, id)) | _ -> ValueNone)
          case "msg" (fields2 (field "to" text) (field "text" text))
              (fun struct (target, text) -> Whisper(target, text))
              (function Whisper(target, text) -> ValueSome(struct (target, text)) | _ -> ValueNone)
          case "join" anyRoom Join (function Join room -> ValueSome room | _ -> ValueNone)
          case "leave" anyRoom Leave (function Leave room -> ValueSome room | _ -> ValueNone)
          constant "rooms" Rooms
          case "who" (field "room" (omittedWhenNone text)) Who (function Who room -> ValueSome room | _ -> ValueNone)
          constant "status" Status
          constant "quit" Quit
          case "register" (field "password" password) Register (function Register password -> ValueSome password | _ -> ValueNone) ]

let private roomSummary : Fields<RoomSummary> =
    fields4 (field "room" roomAsWritten) (field "owner" (nullable int32Value)) (field "backup" (nullable int32Value)) (field "members" int32Value)
    |> mapFields (fun struct (room, owner, backup, members) -> { Room = room; Owner = owner; Backup = backup; Members = members }) (fun summary ->
        struct (summary.Room, summary.Owner, summary.Backup, summary.Members))

let private nodeStatus : Fields<NodeStatus> =
    fields5 (field "id" int32Value) (field "client" endpoint) (field "leader" flag) (field "self" flag) (field "load" (objectOf load))
    |> mapFields
        (fun struct (id, client, isLeader, isSelf, load) -> { Id = id; ClientEndpoint = client; Load = load; IsLeader = isLeader; IsSelf = isSelf })
        (fun node -> struct (node.Id, node.ClientEndpoint, node.IsLeader, node.IsSelf, node.Load))

let private clusterStatus : Fields<ClusterStatus> =
    fields5
        (field "self" int32Value)
        (field "leader" (nullable int32Value))
        (field "epoch" int64Value)
        (field "nodes" (listOf (objectItem nodeStatus)))
        (field "unreplicated" (orDefault [] (listOf roomItem)))
    |> mapFields
        (fun struct (self, leader, epoch, nodes, unreplicated) -> { Self = self; Leader = leader; Epoch = epoch; Nodes = nodes; Unreplicated = unreplicated })
        (fun status -> struct (status.Self, status.Leader, status.Epoch, status.Nodes, status.Unreplicated))

let private serverReplies : Table<ServerReply> =
    table
        [ case "welcome" (fields4 (field "nick" nick) (field "node" int32Value) (field "leader" (nullable int32Value)) (field "session" text))
              (fun struct (nick, node, leader, session) -> Welcome(nick, node, leader, session))
              (function Welcome(nick, node, leader, session) -> ValueSome(struct (nick, node, leader, session)) | _ -> ValueNone)
          case "message" (roomMessage "node") Message (function Message message -> ValueSome message | _ -> ValueNone)
          case "private" (privateLine "node") Private (function Private line -> ValueSome line | _ -> ValueNone)
          case "joined" (fields3 (field "room" roomAsWritten) (field "owner" (nullable int32Value)) (field "members" int32Value))
              (fun struct (room, owner, members) -> Joined(room, owner, members))
              (function Joined(room, owner, members) -> ValueSome(struct (room, owner, members)) | _ -> ValueNone)
          case "left" (field "room" roomAsWritten) LeftRoom (function LeftRoom room -> ValueSome room | _ -> ValueNone)
          case "rooms" (field "rooms" (listOf (objectItem roomSummary))) RoomsListed (function RoomsListed rooms -> ValueSome rooms | _ -> ValueNone)
          case "who" (fields2 (field "room" (omittedWhenNone roomAsWritten)) (field "users" (listOf (objectItem user))))
              (fun struct (room, users) -> WhoListed(room, users))
              (function WhoListed(room, users) -> ValueSome(struct (room, users)) | _ -> ValueNone)
          case "status" clusterStatus StatusReported (function StatusReported status -> ValueSome status | _ -> ValueNone)
          case "redirect" (fields3 (field "node" int32Value) (field "client" endpoint) (field "reason" text))
              (fun struct (node, client, reason) -> Redirected(node, client, reason))
              (function Redirected(node, client, reason) -> ValueSome(struct (node, client, reason)) | _ -> ValueNone)
          case "error" (fields2 (field "code" errorCode) (field "reason" text))
              (fun struct (code, reason) -> ErrorReply(code, reason))
              (function ErrorReply(code, reason) -> ValueSome(struct (code, reason)) | _ -> ValueNone)
          case "system" (field "text" text) Notice (function Notice text -> ValueSome text | _ -> ValueNone) ]

/// The on-disk log: one room message per record, tagged "logged" (the tag is not checked on reading).
let private loggedMessages : Table<RoomMessage> = single (case "logged" peerRoomMessage id ValueSome)

// ---------------------------------------------------------------------------------------------
// Encoding: a Utf8JsonWriter, so a frame costs its UTF-8 bytes and no intermediate tree.

/// Text is written as it is, not as \uXXXX: only what JSON requires is escaped (quotes,
/// backslashes, control characters), as the frames were written before, and every frame stays
/// readable in a log. "Unsafe" in the name is about pasting JSON into HTML; frames never are.
let private writerOptions = JsonWriterOptions(Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping)

let private versionName = JsonEncodedText.Encode "v"

let private writeFrame (table: Table<'Union>) (json: Utf8JsonWriter) (value: 'Union) =
    json.WriteStartObject()
    json.WriteNumber(versionName, protocolVersion)
    write table json value
    json.WriteEndObject()
    json.Flush()

/// Inline, for the buffer's own type: a call through IBufferWriter is an interface dispatch per frame.
let inline private writeNewline (buffer: #IBufferWriter<byte>) =
    buffer.GetSpan(1).[0] <- byte '\n'
    buffer.Advance 1

/// One frame's JSON as UTF-8, with a newline after it when it is to be a whole line.
let private encodeUtf8 (table: Table<'Union>) (value: 'Union) (newline: bool) : byte array =
    use buffer = new PooledBufferWriter(512)
    do
        use json = new Utf8JsonWriter(buffer, writerOptions)
        writeFrame table json value
    if newline then writeNewline buffer
    buffer.ToArray()

/// Encodes frame after frame with one buffer and one JSON writer kept between them, so a frame
/// costs its bytes and nothing more (a new writer and buffer per frame were half of what encoding
/// allocated, 360 against 192 bytes). Not for two threads at once: the loop keeps its own, and so
/// does its room log.
[<Sealed>]
type FrameWriter() =
    // A frame far larger than usual (a state transfer) is not kept as every later frame's buffer.
    static let keptCapacity = 256 * 1024
    let mutable buffer = ArrayBufferWriter<byte>(4096)
    let mutable json = new Utf8JsonWriter(buffer, writerOptions)

    /// The writer, emptied, for the next frame.
    member private _.Start() : Utf8JsonWriter =
        if buffer.Capacity > keptCapacity then
            buffer <- ArrayBufferWriter<byte>(4096)
            json <- new Utf8JsonWriter(buffer, writerOptions)
        buffer.ResetWrittenCount()
        json.Reset buffer
        json

    member private this.Line(table: Table<'Union>, value: 'Union) : byte array =
        writeFrame table (this.Start()) value
        writeNewline buffer
        buffer.WrittenSpan.ToArray()

    /// As `encodePeerMessageLine`.
    member this.PeerMessageLine(message: PeerMessage) : byte array = this.Line(peerMessages, message)

    /// As `encodeServerReplyLine`.
    member this.ServerReplyLine(reply: ServerReply) : byte array = this.Line(serverReplies, reply)

    /// As `encodeRoomMessage`, in UTF-8; the bytes are good until the next frame is written.
    member this.RoomMessage(message: RoomMessage) : ReadOnlySpan<byte> =
        writeFrame loggedMessages (this.Start()) message
        buffer.WrittenSpan

let private encode (table: Table<'Union>) (value: 'Union) : string = Encoding.UTF8.GetString(encodeUtf8 table value false)

/// One room message as a record of the on-disk log.
let encodeRoomMessage (message: RoomMessage) : string = encode loggedMessages message

/// A frame as a string, for tests, logs and the client's printing.
let encodePeerMessage (message: PeerMessage) : string = encode peerMessages message
let encodeClientRequest (request: ClientRequest) : string = encode clientRequests request
let encodeServerReply (reply: ServerReply) : string = encode serverReplies reply

/// A frame as the bytes of one line, newline included: what the shells put on a socket. A
/// frame written once can go to every member and every peer as it is.
let encodePeerMessageLine (message: PeerMessage) : byte array = encodeUtf8 peerMessages message true
let encodeClientRequestLine (request: ClientRequest) : byte array = encodeUtf8 clientRequests request true
let encodeServerReplyLine (reply: ServerReply) : byte array = encodeUtf8 serverReplies reply true

// ---------------------------------------------------------------------------------------------
// Decoding: every way a frame can be wrong becomes an Error with a reason a person can read.

type DecodeError = { Code: ErrorCode; Reason: string }

/// RFC 8259 and nothing more, nested at most 16 deep. A key given twice is refused too: which
/// of the two counts would otherwise depend on the parser (RFC 8259 §4 leaves it open).
let private documentOptions =
    JsonDocumentOptions(
        MaxDepth = 16,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        AllowDuplicateProperties = false
    )


let private versionField = name "v"
let private typeField = name "type"

/// The same rules for the one-pass reader (duplicate keys cannot pass it: it takes each property
/// once, where the writer puts it).
let private readerOptions =
    JsonReaderOptions(MaxDepth = 16, CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false)

/// A frame as Wire writes it ("v", "type", then the case's fields in the table's order), read in
/// one pass with no document; ValueNone for any other frame, which `decode` then reads by the
/// document. Peer frames always come this way: a node writes them with this codec.
/// The version may be left out (docs/PROTOCOL.md); when it is there, it is this one.
let private isThisVersion (reader: byref<Utf8JsonReader>) : bool =
    match numberValue &reader with
    | ValueSome version -> version = int64 protocolVersion
    | ValueNone -> false

let private readFrameInOrder (table: Table<'T>) (utf8: ReadOnlySpan<byte>) : 'T voption =
    let mutable reader = Utf8JsonReader(utf8, readerOptions)
    if not (reader.Read() && reader.TokenType = JsonTokenType.StartObject && reader.Read()) then ValueNone
    elif atName (&reader, versionField) && not (reader.Read() && isThisVersion &reader && reader.Read()) then ValueNone
    elif not (atName (&reader, typeField) && reader.Read() && reader.TokenType = JsonTokenType.String) then ValueNone
    else
        match readInOrder table &reader with
        | ValueSome frame when reader.TokenType = JsonTokenType.EndObject && not (reader.Read()) -> ValueSome frame
        | _ -> ValueNone

/// Whatever the one-pass reader meets (malformed JSON, a value out of range) sends the frame to
/// the document path, which refuses it with its reason.
let private tryReadInOrder (table: Table<'T>) (utf8: ReadOnlyMemory<byte>) : 'T voption =
    try
        readFrameInOrder table utf8.Span
    with _ ->
        ValueNone

/// Parses one frame of UTF-8: the version is checked, then `read` maps the "type" to a value.
/// A frame laid out as `table` writes it is read in one pass instead (readFrameInOrder), to the
/// same value. Everything is read out of the document before it is disposed (it lends pooled buffers).
let private decode (table: Table<'T>) (read: string -> JsonElement -> 'T) (utf8: ReadOnlyMemory<byte>) : Result<'T, DecodeError> =
    try
        // Checked first and whole: JSON text must be UTF-8 (RFC 8259 §8.1), and bytes that are
        // not would otherwise reach the members as U+FFFD.
        if not (Utf8.IsValid utf8.Span) then fail "not valid UTF-8"
        match tryReadInOrder table utf8 with
        | ValueSome frame -> Ok frame
        | ValueNone ->
        use document =
            try
                JsonDocument.Parse(utf8, documentOptions)
            with :? JsonException as error ->
                fail $"not valid JSON: {error.Message}"
        let frame = document.RootElement
        if frame.ValueKind <> JsonValueKind.Object then fail "a frame is one JSON object"
        match tryField frame versionField with
        | ValueNone -> ()
        | ValueSome _ when readInt frame versionField = protocolVersion -> ()
        | ValueSome _ -> raise (FrameInvalid "version")
        Ok(read (readString frame typeField) frame)
    with
    | FrameInvalid "version" ->
        Result.Error { Code = VersionMismatch; Reason = $"this node speaks protocol version {protocolVersion}" }
    | FrameInvalid reason -> Result.Error { Code = BadFrame; Reason = reason }
    // Whatever else a hostile frame provokes in the parser is refused too: the decoder never throws.
    | error -> Result.Error { Code = BadFrame; Reason = error.Message }

/// A frame given as a string (tests, the log, the client) is read as its UTF-8 bytes, in a pooled
/// array: nothing read out of the frame refers to it once `decode` returns.
let private decodeText (table: Table<'T>) (read: string -> JsonElement -> 'T) (line: string) : Result<'T, DecodeError> =
    let utf8 = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetByteCount line)
    try
        decode table read (ReadOnlyMemory(utf8, 0, Encoding.UTF8.GetBytes(line, 0, line.Length, utf8, 0)))
    finally
        ArrayPool<byte>.Shared.Return utf8

let private readLogged : string -> JsonElement -> RoomMessage = fun _ frame -> peerRoomMessage.Read frame
let private readPeerMessage = read peerMessages
let private readClientRequest = read clientRequests
let private readServerReply = read serverReplies

// The decoders. The UTF-8 ones take a frame's bytes as they came off the socket, without its
// newline, so invalid UTF-8 is seen and refused; the string ones serve tests, logs and clients.

/// A record of the on-disk log; Error when it is not one.
let decodeRoomMessage (line: string) : Result<RoomMessage, DecodeError> = decodeText loggedMessages readLogged line
let decodePeerMessage (line: string) : Result<PeerMessage, DecodeError> = decodeText peerMessages readPeerMessage line
let decodeClientRequest (line: string) : Result<ClientRequest, DecodeError> = decodeText clientRequests readClientRequest line
let decodeServerReply (line: string) : Result<ServerReply, DecodeError> = decodeText serverReplies readServerReply line

let decodeRoomMessageUtf8 (utf8: ReadOnlyMemory<byte>) : Result<RoomMessage, DecodeError> = decode loggedMessages readLogged utf8
let decodePeerMessageUtf8 (utf8: ReadOnlyMemory<byte>) : Result<PeerMessage, DecodeError> = decode peerMessages readPeerMessage utf8
let decodeClientRequestUtf8 (utf8: ReadOnlyMemory<byte>) : Result<ClientRequest, DecodeError> = decode clientRequests readClientRequest utf8
let decodeServerReplyUtf8 (utf8: ReadOnlyMemory<byte>) : Result<ServerReply, DecodeError> = decode serverReplies readServerReply utf8
