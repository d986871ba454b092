/// The wire format: one JSON object per line (docs/PROTOCOL.md), for client frames and peer
/// frames alike. Encoding and decoding are pure; the shell does the reading and the writing.
module FormalChat.Protocol.Wire

open System.IO
open Newtonsoft.Json
open Newtonsoft.Json.Linq

/// Frames longer than this are refused and the connection closed (the default of --max-frame).
let defaultMaxFrameBytes = 64 * 1024

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
        | BroadcastForwarded line ->
            kind json "broadcast"
            field json "from" line.From
            field json "fromNode" line.FromNode
            field json "text" line.Text
        | PrivateForwarded line ->
            kind json "private"
            field json "from" line.From
            field json "fromNode" line.FromNode
            field json "to" line.To
            field json "text" line.Text
        | UserJoined(nick, node) ->
            kind json "user-joined"
            field json "nick" nick
            field json "node" node
        | UserLeft(nick, node) ->
            kind json "user-left"
            field json "nick" nick
            field json "node" node
        | UsersListed(node, nicks) ->
            kind json "users"
            field json "node" node
            writeArray json "nicks" nicks (fun nick -> json.WriteValue nick))

let encodeClientRequest (request: ClientRequest) : string =
    encode (fun json ->
        match request with
        | Hello nick ->
            kind json "hello"
            field json "nick" nick
        | Say text ->
            kind json "say"
            field json "text" text
        | Whisper(target, text) ->
            kind json "msg"
            field json "to" target
            field json "text" text
        | Who -> kind json "who"
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

let private allErrorCodes =
    [ NickTaken; NickInvalid; HelloFirst; AlreadyHello; NoSuchUser; ServerFull; TextInvalid; BadFrame; FrameTooLarge; VersionMismatch ]

let encodeServerReply (reply: ServerReply) : string =
    encode (fun json ->
        match reply with
        | Welcome(nick, node, leader) ->
            kind json "welcome"
            field json "nick" nick
            field json "node" node
            optionalNode json "leader" leader
        | Message line ->
            kind json "message"
            field json "from" line.From
            field json "node" line.FromNode
            field json "text" line.Text
        | Private line ->
            kind json "private"
            field json "from" line.From
            field json "node" line.FromNode
            field json "to" line.To
            field json "text" line.Text
        | WhoListed users ->
            kind json "who"
            writeArray json "users" users (fun user ->
                json.WriteStartObject()
                field json "nick" user.Nick
                field json "node" user.Node
                json.WriteEndObject())
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

let private settings =
    JsonSerializerSettings(MaxDepth = 16, DateParseHandling = DateParseHandling.None)

let private parseObject (line: string) : JObject =
    let token =
        try
            JsonConvert.DeserializeObject<JToken>(line, settings)
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

let private intField (frame: JObject) (name: string) : int =
    match required frame name with
    | token when token.Type = JTokenType.Integer ->
        let value = System.Convert.ToInt64((token :?> JValue).Value)
        if value < int64 System.Int32.MinValue || value > int64 System.Int32.MaxValue then fail $"field '{name}' is out of range"
        int value
    | _ -> fail $"field '{name}' must be an integer"

let private boolField (frame: JObject) (name: string) : bool =
    match required frame name with
    | token when token.Type = JTokenType.Boolean -> System.Convert.ToBoolean((token :?> JValue).Value)
    | _ -> fail $"field '{name}' must be true or false"

let private optionalNodeField (frame: JObject) (name: string) : NodeId option =
    match frame.[name] with
    | null -> None
    | token when token.Type = JTokenType.Null -> None
    | _ -> Some(intField frame name)

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

let private unknownType (kind: string) = fail $"unknown message type '{kind}'"

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
        | "broadcast" ->
            BroadcastForwarded { From = stringField frame "from"; FromNode = intField frame "fromNode"; Text = stringField frame "text" }
        | "private" ->
            PrivateForwarded
                { From = stringField frame "from"
                  FromNode = intField frame "fromNode"
                  To = stringField frame "to"
                  Text = stringField frame "text" }
        | "user-joined" -> UserJoined(stringField frame "nick", intField frame "node")
        | "user-left" -> UserLeft(stringField frame "nick", intField frame "node")
        | "users" -> UsersListed(intField frame "node", arrayField frame "nicks" |> List.map asString)
        | other -> unknownType other)

let decodeClientRequest (line: string) : Result<ClientRequest, DecodeError> =
    decode line (fun kind frame ->
        match kind with
        | "hello" -> Hello(stringField frame "nick")
        | "say" -> Say(stringField frame "text")
        | "msg" -> Whisper(stringField frame "to", stringField frame "text")
        | "who" -> Who
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
        | "welcome" -> Welcome(stringField frame "nick", intField frame "node", optionalNodeField frame "leader")
        | "message" -> Message { From = stringField frame "from"; FromNode = intField frame "node"; Text = stringField frame "text" }
        | "private" ->
            Private
                { From = stringField frame "from"
                  FromNode = intField frame "node"
                  To = stringField frame "to"
                  Text = stringField frame "text" }
        | "who" ->
            WhoListed(
                arrayField frame "users"
                |> List.map (fun token ->
                    let user = asObject token
                    { Nick = stringField user "nick"; Node = intField user "node" })
            )
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
                          IsSelf = boolField node "self" }) }
        | "error" -> Error(errorCodeOf (stringField frame "code"), stringField frame "reason")
        | "system" -> Notice(stringField frame "text")
        | other -> unknownType other)
