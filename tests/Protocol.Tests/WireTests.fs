/// The wire format: every message survives encode then decode, and every malformed frame becomes
/// an Error with a code and a reason, never an exception.
module FormalChat.Protocol.Tests.WireTests

open System
open Expecto
open FormalChat.Protocol
open FsCheck
open FsCheck.FSharp
open Xunit

let private checkConfig = Config.QuickThrowOnFailure.WithMaxTest(300)

// ---------------------------------------------------------------------------------------------
// Generators.

/// Pieces that are hard for an encoder: quotes, backslashes, control characters, accents, CJK,
/// a surrogate pair (emoji), right-to-left text, a JSON look-alike and the empty string.
let private awkwardPieces =
    [ "\""; "\\"; "'"; "\n"; "\r\n"; "\t"; "\u0000"; "\u001f"; "é"; "ñ"; "漢字"; "😀"; "👩‍💻"; "مرحبا"
      "{\"v\":1}"; "</script>"; "\u2028"; " "; "" ]

let private textGen : Gen<string> =
    let piece =
        Gen.frequency
            [ 3, Gen.elements awkwardPieces
              2, Gen.elements [ 'a' .. 'z' ] |> Gen.map string
              1, Gen.choose (0x20, 0xD7FF) |> Gen.map (fun code -> string (char code)) ]
    Gen.listOf piece |> Gen.map String.Concat

let private nickGen : Gen<Nick> = textGen |> Gen.map Nick

/// Rooms a node's reply names are read as written, whatever they hold.
let private roomTextGen : Gen<RoomName> = textGen |> Gen.map RoomName

/// Rooms between nodes are canonical names (Wire refuses any other on a peer link).
let private roomGen : Gen<RoomName> =
    let allowed = [ 'a' .. 'z' ] @ [ '0' .. '9' ] @ [ '_'; '-' ]
    Gen.choose (1, 32)
    |> Gen.bind (fun length -> Gen.listOfLength length (Gen.elements allowed))
    |> Gen.map (fun chars -> RoomName("#" + String(Array.ofList chars)))

let private intGen : Gen<int> =
    Gen.oneof [ Gen.choose (-5, 100); Gen.elements [ Int32.MinValue; Int32.MaxValue; 0 ]; Gen.choose (Int32.MinValue, Int32.MaxValue) ]

/// Peer frames carry numbers only inside Wire's ranges (docs/PROTOCOL.md): the edges included.
let private nodeIdGen : Gen<NodeId> =
    Gen.oneof [ Gen.choose (1, 100); Gen.elements [ 1; Int32.MaxValue ]; Gen.choose (1, Int32.MaxValue) ]

let private boundedGen (bound: int64) : Gen<int64> =
    Gen.oneof
        [ Gen.choose (0, 100) |> Gen.map int64
          Gen.elements [ 0L; int64 Int32.MaxValue; int64 Int32.MaxValue + 1L; bound ]
          Gen.map2 (fun (high: int) (low: int) -> ((int64 high <<< 32) ||| int64 (uint32 low)) % (bound + 1L)) (Gen.choose (0, Int32.MaxValue)) intGen ]

let private seqGen : Gen<int64> = boundedGen Wire.maxSeq
let private epochGen : Gen<Epoch> = boundedGen Wire.maxEpoch
let private versionGen : Gen<int> = Gen.oneof [ Gen.choose (0, 100); Gen.elements [ 0; Wire.maxVersion ] ]

let private endpointGen : Gen<Endpoint> =
    // Not "localhost": the parser maps it to 127.0.0.1 on purpose.
    Gen.map2
        (fun host port -> { Host = host; Port = port })
        (Gen.elements [ "127.0.0.1"; "10.1.2.3"; "node-a.example"; "::1"; "fe80::1" ])
        (Gen.choose (1, 65535))

let private nodeInfoGen : Gen<NodeInfo> =
    Gen.map3 (fun id client peer -> { Id = id; ClientEndpoint = client; PeerEndpoint = peer }) nodeIdGen endpointGen endpointGen

let private loadGen : Gen<Load> =
    Gen.map3 (fun clients rooms rate -> { Clients = clients; Rooms = rooms; MessagesPerSecond = rate }) intGen intGen intGen

let private smallListOf (gen: Gen<'T>) : Gen<'T list> = Gen.listOf gen |> Gen.map (List.truncate 6)

let private longGen : Gen<int64> =
    Gen.oneof
        [ Gen.choose (0, 100) |> Gen.map int64
          Gen.elements [ Int64.MinValue; Int64.MaxValue; 0L; -1L; int64 Int32.MaxValue + 1L ]
          Gen.map2 (fun (high: int) (low: int) -> (int64 high <<< 32) ||| int64 (uint32 low)) intGen intGen ]

let private userEntryGen : Gen<UserEntry> =
    Gen.map3 (fun nick node rooms -> { Nick = nick; Node = node; Rooms = rooms }) nickGen nodeIdGen (smallListOf roomTextGen)

let private knownUserGen : Gen<KnownUser> =
    Gen.map2 (fun user session -> { User = user; Session = session }) userEntryGen textGen

let private roomMessageGen : Gen<RoomMessage> =
    gen {
        let! room = roomGen
        let! seq = seqGen
        let! from = nickGen
        let! node = intGen
        let! text = textGen
        let! id = longGen
        return { Room = room; Seq = seq; From = from; FromNode = node; Text = text; ClientMessageId = id }
    }

let private peerMessageGen : Gen<PeerMessage> =
    Gen.oneof
        [ gen {
              let! from = nodeInfoGen
              let! epoch = epochGen
              let! leader = Gen.optionOf nodeIdGen
              let! load = loadGen
              let! known = smallListOf nodeInfoGen
              return HeartbeatSent { From = from; Epoch = epoch; Leader = leader; Load = load; Known = known }
          }
          Gen.map2 (fun candidate epoch -> Election { Candidate = candidate; Epoch = epoch }) nodeIdGen epochGen
          Gen.map2 (fun leader epoch -> LeaderAnnounced { Leader = leader; Epoch = epoch }) nodeIdGen epochGen
          nodeIdGen |> Gen.map LeaveAnnounced
          gen {
              let! from = nickGen
              let! node = nodeIdGen
              let! target = nickGen
              let! text = textGen
              return PrivateForwarded { From = from; FromNode = node; To = target; Text = text }
          }
          knownUserGen |> Gen.map (fun known -> UserJoined(known, None))
          Gen.map2 (fun nick node -> UserLeft(nick, node)) nickGen nodeIdGen
          Gen.map2 (fun room nick -> MemberJoined(room, nick)) roomGen nickGen
          Gen.map2 (fun room nick -> MemberLeft(room, nick)) roomGen nickGen
          Gen.map2 (fun node users -> UsersListed(node, users)) nodeIdGen (smallListOf knownUserGen)
          nodeIdGen |> Gen.map UsersRequested
          Gen.map2 (fun room requester -> PlacementRequested(room, requester)) roomGen nodeIdGen
          gen {
              let! room = roomGen
              let! owner = nodeIdGen
              let! epoch = epochGen
              let! leader = nodeIdGen
              let! version = versionGen
              let! lastSeq = seqGen
              return RoomAssigned(room, { Owner = owner; Epoch = epoch; Leader = leader; Version = version; LastSeq = lastSeq })
          }
          roomMessageGen
          |> Gen.map (fun message ->
              RoomPosted
                  { Room = message.Room
                    From = message.From
                    FromNode = message.FromNode
                    Text = message.Text
                    ClientMessageId = message.ClientMessageId })
          roomMessageGen |> Gen.map RoomSequenced ]

let private helloGen : Gen<HelloRequest> =
    gen {
        let! nick = textGen
        let! session = Gen.optionOf textGen
        // A JSON object keeps one value per name: the rooms of a resume are distinct.
        let! resume = smallListOf (Gen.zip textGen longGen) |> Gen.map (List.distinctBy fst)
        let! password = Gen.optionOf (textGen |> Gen.map Given)
        return { Nick = nick; Session = session; Resume = resume; Password = password }
    }

let private clientRequestGen : Gen<ClientRequest> =
    Gen.oneof
        [ helloGen |> Gen.map Hello
          // A say's id is positive, or 0 for none (left out): the decoder refuses any other.
          Gen.map3 (fun room text id -> Say(room, text, id)) textGen textGen (longGen |> Gen.map (fun id -> if id < 0L then 0L else id))
          Gen.map2 (fun target text -> Whisper(target, text)) textGen textGen
          textGen |> Gen.map Join
          textGen |> Gen.map Leave
          Gen.constant Rooms
          Gen.optionOf textGen |> Gen.map Who
          Gen.constant Status
          Gen.constant Quit
          textGen |> Gen.map (Given >> Register) ]

let private errorCodeGen : Gen<ErrorCode> =
    Gen.elements
        [ NickTaken; NickInvalid; HelloFirst; AlreadyHello; NoSuchUser; ServerFull; TextInvalid; BadFrame; FrameTooLarge; VersionMismatch
          RoomInvalid; NotInRoom; RateLimited; TlsRequired; LoginThrottled; PasswordRequired; PasswordWrong; PasswordInvalid ]

let private nodeStatusGen : Gen<NodeStatus> =
    gen {
        let! id = intGen
        let! client = endpointGen
        let! load = loadGen
        let! isLeader = Gen.elements [ true; false ]
        let! isSelf = Gen.elements [ true; false ]
        return { Id = id; ClientEndpoint = client; Load = load; IsLeader = isLeader; IsSelf = isSelf }
    }

let private roomSummaryGen : Gen<RoomSummary> =
    Gen.map4 (fun room owner backup members -> { Room = room; Owner = owner; Backup = backup; Members = members }) roomTextGen (Gen.optionOf intGen) (Gen.optionOf intGen) intGen

let private serverReplyGen : Gen<ServerReply> =
    Gen.oneof
        [ gen {
              let! nick = nickGen
              let! node = intGen
              let! leader = Gen.optionOf intGen
              let! session = textGen
              return Welcome(nick, node, leader, session)
          }
          roomMessageGen |> Gen.map Message
          gen {
              let! from = nickGen
              let! node = intGen
              let! target = nickGen
              let! text = textGen
              return Private { From = from; FromNode = node; To = target; Text = text }
          }
          Gen.map3 (fun room owner members -> Joined(room, owner, members)) roomTextGen (Gen.optionOf intGen) intGen
          roomTextGen |> Gen.map LeftRoom
          smallListOf roomSummaryGen |> Gen.map RoomsListed
          Gen.map2 (fun room users -> WhoListed(room, users)) (Gen.optionOf roomTextGen) (smallListOf userEntryGen)
          gen {
              let! self = intGen
              let! leader = Gen.optionOf intGen
              let! epoch = longGen
              let! nodes = smallListOf nodeStatusGen
              let! unreplicated = smallListOf roomTextGen
              return StatusReported { Self = self; Leader = leader; Epoch = epoch; Nodes = nodes; Unreplicated = unreplicated }
          }
          Gen.map3 (fun node client reason -> Redirected(node, client, reason)) intGen endpointGen textGen
          Gen.map2 (fun code reason -> ErrorReply(code, reason)) errorCodeGen textGen
          textGen |> Gen.map Notice ]

// ---------------------------------------------------------------------------------------------
// Round trips.

let private assertOneLine (frame: string) =
    Assert.False(frame.Contains '\n' || frame.Contains '\r', $"a frame is one line: {frame}")

let ``property: every peer message decodes to itself after encoding, as one line`` () =
    let property (message: PeerMessage) =
        let frame = Wire.encodePeerMessage message
        assertOneLine frame
        Assert.Equal(Ok message, Wire.decodePeerMessage frame)

    Check.One(checkConfig, Prop.forAll (Arb.fromGen peerMessageGen) property)

let ``property: every client request decodes to itself after encoding, as one line`` () =
    let property (request: ClientRequest) =
        let frame = Wire.encodeClientRequest request
        assertOneLine frame
        Assert.Equal(Ok request, Wire.decodeClientRequest frame)

    Check.One(checkConfig, Prop.forAll (Arb.fromGen clientRequestGen) property)

let ``property: every server reply decodes to itself after encoding, as one line`` () =
    let property (reply: ServerReply) =
        let frame = Wire.encodeServerReply reply
        assertOneLine frame
        Assert.Equal(Ok reply, Wire.decodeServerReply frame)

    Check.One(checkConfig, Prop.forAll (Arb.fromGen serverReplyGen) property)

/// One FrameWriter over many frames, as a node's loop and its log use it: every frame comes out
/// byte for byte as the one-off encoders write it, whatever came before it (a frame of several
/// hundred kilobytes included, after which the writer starts a smaller buffer).
let ``property: a kept frame writer writes every frame as the one-off encoders do`` () =
    let frames = Wire.FrameWriter()
    let huge = { RoomMessage.Room = RoomName "#big"; Seq = 1L; From = Nick "a"; FromNode = 1; Text = String('x', 300_000); ClientMessageId = 1L }
    let property (peer: PeerMessage, reply: ServerReply, logged: RoomMessage, large: bool) =
        if large then Assert.Equal<byte>(Wire.encodePeerMessageLine(RoomSequenced huge), frames.PeerMessageLine(RoomSequenced huge))
        Assert.Equal<byte>(Wire.encodePeerMessageLine peer, frames.PeerMessageLine peer)
        Assert.Equal<byte>(Wire.encodeServerReplyLine reply, frames.ServerReplyLine reply)
        Assert.Equal(Wire.encodeRoomMessage logged, Text.Encoding.UTF8.GetString(frames.RoomMessage logged))

    let inputs = Gen.zip (Gen.zip peerMessageGen serverReplyGen) (Gen.zip roomMessageGen (Gen.elements [ false; false; true ]))
    Check.One(checkConfig, Prop.forAll (Arb.fromGen inputs) (fun ((peer, reply), (logged, large)) -> property (peer, reply, logged, large)))

/// The same frame with its top-level properties in reverse order and one unknown property more:
/// not as the codec writes it, so the decoder reads it by the document, not in one pass.
let private laidOutOtherwise (frame: string) : string =
    let original = (System.Text.Json.Nodes.JsonNode.Parse frame |> nonNull).AsObject()
    let reordered = System.Text.Json.Nodes.JsonObject()
    reordered["unknown"] <- System.Text.Json.Nodes.JsonValue.Create 1
    for property in Seq.rev (List.ofSeq original) do
        reordered[property.Key] <- (match property.Value with null -> null | value -> value.DeepClone())
    reordered.ToJsonString()

let ``property: a frame laid out otherwise decodes to what the same frame as written decodes to`` () =
    let property (message: PeerMessage) (request: ClientRequest) (reply: ServerReply) =
        let peerFrame = Wire.encodePeerMessage message
        Assert.Equal(Wire.decodePeerMessage peerFrame, Wire.decodePeerMessage(laidOutOtherwise peerFrame))
        let requestFrame = Wire.encodeClientRequest request
        Assert.Equal(Wire.decodeClientRequest requestFrame, Wire.decodeClientRequest(laidOutOtherwise requestFrame))
        let replyFrame = Wire.encodeServerReply reply
        Assert.Equal(Wire.decodeServerReply replyFrame, Wire.decodeServerReply(laidOutOtherwise replyFrame))

    Check.One(checkConfig, Prop.forAll (Arb.fromGen (Gen.zip3 peerMessageGen clientRequestGen serverReplyGen)) (fun (m, q, r) -> property m q r))

/// Frames as the codec lays them out, with a value that is wrong: the one-pass reader gives them
/// to the document path, which names the fault as it always has.
let ``a frame as written with a bad value is refused with the reason the document path gives`` () =
    let refused (frame: string) =
        match Wire.decodePeerMessage frame with
        | Error error -> error.Reason
        | Ok message -> failwith $"decoded {message}"
    Assert.Equal("field 'seq' is out of range: -1 (0 to 9007199254740992)", refused """{"v":1,"type":"replica-stored","room":"#a","backup":{"backup":2,"owner":1,"epoch":1,"leader":3,"version":1},"seq":-1}""")
    Assert.Equal("field 'candidate' is not a node id: 0", refused """{"v":1,"type":"election","candidate":0,"epoch":2}""")
    Assert.Equal("field 'epoch' is null", refused """{"v":1,"type":"election","candidate":1,"epoch":null}""")
    Assert.Equal("field 'fromNode' must be an integer", refused """{"v":1,"type":"sequenced","room":"#a","seq":1,"from":"x","fromNode":1.5,"text":"t","id":1}""")
    Assert.Equal(BadFrame, (match Wire.decodePeerMessage """{"v":1,"type":"election","candidate":1,"epoch":2}x""" with Error e -> e.Code | Ok _ -> VersionMismatch))

let ``every frame carries the protocol version`` () =
    let frame = Wire.encodeClientRequest(Who None)

    Assert.StartsWith($"{{\"v\":{protocolVersion},", frame)

let ``a documented frame written by hand decodes`` () =
    Assert.Equal(Ok(Whisper("bob", "hi")), Wire.decodeClientRequest """{"v":1,"type":"msg","to":"bob","text":"hi"}""")
    Assert.Equal(Ok(Election { Candidate = 3; Epoch = 2L }), Wire.decodePeerMessage """{"type":"election","epoch":2,"candidate":3,"v":1}""")
    Assert.Equal(Ok(Say("#dev", "hi", 7L)), Wire.decodeClientRequest """{"v":1,"type":"say","room":"#dev","text":"hi","id":7}""")
    Assert.Equal(
        Ok(Hello { Nick = "alice"; Session = Some "s3cret"; Resume = [ "#lobby", 1042L; "#dev", 7L ]; Password = None }),
        Wire.decodeClientRequest """{"v":1,"type":"hello","nick":"alice","session":"s3cret","resume":{"#lobby":1042,"#dev":7}}""")

let ``a say without a room is a broadcast to #lobby, and without an id has id 0`` () =
    Assert.Equal(Ok(Say(Rooms.lobby.Value, "hi", 0L)), Wire.decodeClientRequest """{"v":1,"type":"say","text":"hi"}""")

/// The one-pass reader meets these in a frame laid out as written; each must read as the document does.
let ``a frame as written with escaped names, nulls or other spellings of a number decodes as the document reads it`` () =
    Assert.Equal(Ok(Say("#dev", "hi", 7L)), Wire.decodeClientRequest """{"v":1,"t\u0079pe":"\u0073ay","r\u006fom":"#dev","text":"h\u0069","id":7}""")
    Assert.Equal(Ok(Say(Rooms.lobby.Value, "hi", 0L)), Wire.decodeClientRequest """{"v":1,"type":"say","room":null,"text":"hi","id":null}""")
    Assert.Equal(Ok(Hello { Nick = "alice"; Session = None; Resume = []; Password = None }), Wire.decodeClientRequest """{"v":1,"type":"hello","nick":"alice","session":null}""")
    for id in [ "7.0"; "7e0"; "-0"; "9223372036854775808" ] do
        let asWritten = Wire.decodeClientRequest $"""{{"v":1,"type":"say","room":"#dev","text":"hi","id":{id}}}"""
        let reordered = Wire.decodeClientRequest $"""{{"id":{id},"text":"hi","room":"#dev","type":"say","v":1}}"""
        Assert.Equal(reordered, asWritten)

// ---------------------------------------------------------------------------------------------
// Malformed frames.

let private decoders : (string * (string -> Result<unit, Wire.DecodeError>)) list =
    [ "peer", Wire.decodePeerMessage >> Result.map ignore
      "client", Wire.decodeClientRequest >> Result.map ignore
      "reply", Wire.decodeServerReply >> Result.map ignore ]

let private assertRefused (expected: ErrorCode) (frame: string) =
    for name, decode in decoders do
        match decode frame with
        | Ok() -> failwith $"the {name} decoder accepted {frame}"
        | Result.Error error ->
            Assert.True((error.Code = expected), $"the {name} decoder gave {error.Code}, not {expected}, for {frame}")
            Assert.False(String.IsNullOrWhiteSpace error.Reason, $"the {name} decoder gave no reason for {frame}")

let ``a malformed frame is refused as BadFrame with a reason`` (frame: string) =
    assertRefused BadFrame frame

let ``a frame of another protocol version is refused as VersionMismatch with a reason`` (frame: string) =
    assertRefused VersionMismatch frame

let private refusedBy (decode: string -> Result<'T, Wire.DecodeError>) (frame: string) : Wire.DecodeError =
    match decode frame with
    | Ok value -> failwith $"accepted {frame} as {value}"
    | Result.Error error -> error

let ``a client request with a missing or mistyped field names the field`` (frame: string, field: string) =
    let error = refusedBy Wire.decodeClientRequest frame

    Assert.Equal(BadFrame, error.Code)
    Assert.Contains($"'{field}'", error.Reason)

let ``a say whose id is not a positive integer is refused as BadFrame naming the id`` (frame: string) =
    let error = refusedBy Wire.decodeClientRequest frame

    Assert.Equal(BadFrame, error.Code)
    Assert.Contains("'id'", error.Reason)

let ``a peer message with a missing, mistyped or out-of-range field is refused as BadFrame`` (frame: string, field: string) =
    let error = refusedBy Wire.decodePeerMessage frame

    Assert.Equal(BadFrame, error.Code)
    Assert.False(String.IsNullOrWhiteSpace error.Reason)
    if field <> "" then Assert.Contains($"'{field}'", error.Reason)

let ``a peer frame naming a room other than by its canonical name is refused, not met deep in the node`` () =
    for room in [ "#Lobby"; "lobby"; "#../etc"; "#"; "#" + String('a', 33) ] do
        let frame = $"{{\"v\":1,\"type\":\"sequenced\",\"room\":\"{room}\",\"seq\":1,\"from\":\"alice\",\"fromNode\":1,\"text\":\"hi\",\"id\":1}}"
        let error = refusedBy Wire.decodePeerMessage frame
        Assert.Equal(BadFrame, error.Code)
        Assert.Contains("'room'", error.Reason)

let ``a peer frame with a number outside its range is refused, naming the field`` (frame: string, field: string) =
    let error = refusedBy Wire.decodePeerMessage frame

    Assert.Equal(BadFrame, error.Code)
    Assert.Contains($"'{field}'", error.Reason)

let ``the edges of the peer ranges are accepted`` () =
    let decodes frame = Assert.True(Result.isOk (Wire.decodePeerMessage frame), frame)
    decodes $"{{\"v\":1,\"type\":\"leader\",\"leader\":{System.Int32.MaxValue},\"epoch\":{Wire.maxEpoch}}}"
    decodes "{\"v\":1,\"type\":\"leader\",\"leader\":1,\"epoch\":0}"
    decodes $"{{\"v\":1,\"type\":\"history-requested\",\"room\":\"#dev\",\"after\":{Wire.maxSeq},\"requester\":1}}"
    decodes $"{{\"v\":1,\"type\":\"placed\",\"room\":\"#dev\",\"owner\":2,\"epoch\":1,\"leader\":3,\"version\":{Wire.maxVersion},\"lastSeq\":0}}"

let ``an integer beyond 64 bits is refused as out of range, naming the field`` () =
    let error = refusedBy Wire.decodePeerMessage "{\"v\":1,\"type\":\"election\",\"candidate\":99999999999999999999999,\"epoch\":1}"

    Assert.Equal(BadFrame, error.Code)
    Assert.Equal("field 'candidate' is out of range", error.Reason)

let ``a server reply with an unknown code or malformed items is refused as BadFrame`` (frame: string) =
    let error = refusedBy Wire.decodeServerReply frame

    Assert.Equal(BadFrame, error.Code)
    Assert.False(String.IsNullOrWhiteSpace error.Reason)

let ``a valid frame cut before its closing brackets is refused as BadFrame`` () =
    for frame in
        [ Wire.encodeClientRequest(Who None)
          Wire.encodeClientRequest(Whisper("bob", "hi"))
          Wire.encodeClientRequest(Hello { Nick = "alice"; Session = None; Resume = [ "#lobby", 3L ]; Password = None })
          Wire.encodePeerMessage(Election { Candidate = 3; Epoch = 1L })
          Wire.encodePeerMessage(UsersListed(2, [ { User = { Nick = Nick "alice"; Node = 2; Rooms = [ (RoomName "#lobby") ] }; Session = "s" } ])) ] do
        // Drop the final '}', and for the nested ones also what closes inside.
        assertRefused BadFrame (frame.Substring(0, frame.Length - 1))
        assertRefused BadFrame (frame.Substring(0, frame.Length - 2))
    assertRefused BadFrame "{\"v\":1,\"type\":\"users\",\"node\":2,\"users\":[{\"nick\":\"a\""

let ``a valid frame followed by trailing text is refused as BadFrame`` (frame: string) =
    assertRefused BadFrame frame

let ``a deeply nested frame is refused, not followed down`` () =
    let frame = String.replicate 10_000 "[" + String.replicate 10_000 "]"

    assertRefused BadFrame frame
    assertRefused BadFrame ("{\"v\":1,\"type\":\"who\",\"x\":" + frame + "}")

let ``property: decoding never throws on arbitrary strings`` () =
    let anyTextGen =
        Gen.oneof
            [ ArbMap.defaults |> ArbMap.generate<char array> |> Gen.map String
              textGen
              // Mutations of valid frames: cut short, or with one character replaced.
              gen {
                  let! message = peerMessageGen
                  let frame = Wire.encodePeerMessage message
                  let! cut = Gen.choose (0, frame.Length)
                  let! replacement = Gen.elements [ '"'; '{'; '}'; ','; ':'; '9'; 'x'; '\\'; ' ' ]
                  let! truncate = Gen.elements [ true; false ]
                  return
                      if truncate then frame.Substring(0, cut)
                      elif cut = frame.Length then frame + string replacement
                      else frame.Substring(0, cut) + string replacement + frame.Substring(cut + 1)
              } ]

    let property (text: string) =
        for name, decode in decoders do
            match decode text with
            | Ok() -> ()
            | Result.Error error -> Assert.False(String.IsNullOrWhiteSpace error.Reason, $"the {name} decoder gave no reason")

    Check.One(Config.QuickThrowOnFailure.WithMaxTest(1000), Prop.forAll (Arb.fromGen anyTextGen) property)

// ---------------------------------------------------------------------------------------------
// Strict JSON (issue 11): what a lenient parser would accept is refused, on every link.

let private utf8Decoders : (string * (ReadOnlyMemory<byte> -> Result<unit, Wire.DecodeError>)) list =
    [ "peer", Wire.decodePeerMessageUtf8 >> Result.map ignore
      "client", Wire.decodeClientRequestUtf8 >> Result.map ignore
      "reply", Wire.decodeServerReplyUtf8 >> Result.map ignore ]

let private assertRefusedBytes (bytes: byte array) (reasonPart: string) =
    for name, decode in utf8Decoders do
        match decode (ReadOnlyMemory bytes) with
        | Ok() -> failwith $"the {name} decoder accepted {Convert.ToHexString bytes}"
        | Result.Error error ->
            Assert.Equal(BadFrame, error.Code)
            Assert.Contains(reasonPart, error.Reason)

let ``lenient JSON is refused as BadFrame with a reason, from a string and from bytes`` (frame: string) =
    assertRefused BadFrame frame
    assertRefusedBytes (Text.Encoding.UTF8.GetBytes frame) ""

let ``a key given twice is refused, so no two parsers can read a frame two ways`` () =
    let frame = "{\"v\":1,\"type\":\"say\",\"text\":\"hi\",\"text\":\"FORGED\"}"
    assertRefused BadFrame frame
    Assert.Contains("text", (refusedBy Wire.decodeClientRequest frame).Reason)

let ``invalid UTF-8 is refused, not turned into U+FFFD`` () =
    let valid = Text.Encoding.UTF8.GetBytes "{\"v\":1,\"type\":\"say\",\"text\":\"hi \"}"
    let at = valid.Length - 3 // the space inside the text
    for bad in [ [| 0xFFuy |]; [| 0xC3uy |]; [| 0xEDuy; 0xA0uy; 0x80uy |]; [| 0xC0uy; 0xAFuy |]; [| 0x80uy |] ] do
        let frame = Array.concat [ valid.[.. at - 1]; bad; valid.[at + 1 ..] ]
        assertRefusedBytes frame "UTF-8"

let ``the UTF-8 decoders read what the encoders write, and a line ends in one newline`` () =
    let message = { Room = (RoomName "#dev"); Seq = 7L; From = Nick "alice"; FromNode = 2; Text = "héllo 漢字 😀"; ClientMessageId = 9L }
    let line = Wire.encodePeerMessageLine(RoomSequenced message)
    Assert.Equal(byte '\n', line.[line.Length - 1])
    Assert.Equal(1, line |> Array.filter ((=) (byte '\n')) |> Array.length)
    Assert.Equal(Ok(RoomSequenced message), Wire.decodePeerMessageUtf8(ReadOnlyMemory(line, 0, line.Length - 1)))
    let say = Say("#dev", "héllo", 3L)
    let sayLine = Wire.encodeClientRequestLine say
    Assert.Equal(Ok say, Wire.decodeClientRequestUtf8(ReadOnlyMemory(sayLine, 0, sayLine.Length - 1)))
    let reply = Message message
    let replyLine = Wire.encodeServerReplyLine reply
    Assert.Equal(Ok reply, Wire.decodeServerReplyUtf8(ReadOnlyMemory(replyLine, 0, replyLine.Length - 1)))

/// The frames as docs/PROTOCOL.md shows them and as the Newtonsoft codec wrote them, byte for byte:
/// the field order, no spaces, text other than quotes, backslashes and control characters as it is.
let ``frames are written byte for byte as before`` () =
    Assert.Equal("""{"v":1,"type":"say","room":"#dev","text":"hi","id":7}""", Wire.encodeClientRequest(Say("#dev", "hi", 7L)))
    Assert.Equal("""{"v":1,"type":"msg","to":"bob","text":"é漢字 <>&'+ \"\\ \n\t"}""", Wire.encodeClientRequest(Whisper("bob", "é漢字 <>&'+ \"\\ \n\t")))
    Assert.Equal("""{"v":1,"type":"election","candidate":3,"epoch":2}""", Wire.encodePeerMessage(Election { Candidate = 3; Epoch = 2L }))
    Assert.Equal(
        """{"v":1,"type":"sequenced","room":"#lobby","seq":5,"from":"alice","fromNode":2,"text":"hi","id":9}""",
        Wire.encodePeerMessage(RoomSequenced { Room = (RoomName "#lobby"); Seq = 5L; From = Nick "alice"; FromNode = 2; Text = "hi"; ClientMessageId = 9L }))
    Assert.Equal(
        """{"v":1,"type":"welcome","nick":"alice","node":2,"leader":null,"session":"s"}""",
        Wire.encodeServerReply(Welcome(Nick "alice", 2, None, "s")))

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "Wire" [
        testCase "a peer frame naming a room other than by its canonical name is refused, not met deep in the node"
            ``a peer frame naming a room other than by its canonical name is refused, not met deep in the node``
        testCase "property: every peer message decodes to itself after encoding, as one line"
            ``property: every peer message decodes to itself after encoding, as one line``
        testCase "property: every client request decodes to itself after encoding, as one line"
            ``property: every client request decodes to itself after encoding, as one line``
        testCase "property: every server reply decodes to itself after encoding, as one line"
            ``property: every server reply decodes to itself after encoding, as one line``
        testCase "property: a kept frame writer writes every frame as the one-off encoders do"
            ``property: a kept frame writer writes every frame as the one-off encoders do``
        testCase "property: a frame laid out otherwise decodes to what the same frame as written decodes to"
            ``property: a frame laid out otherwise decodes to what the same frame as written decodes to``
        testCase "a frame as written with a bad value is refused with the reason the document path gives"
            ``a frame as written with a bad value is refused with the reason the document path gives``
        testCase "every frame carries the protocol version"
            ``every frame carries the protocol version``
        testCase "a documented frame written by hand decodes"
            ``a documented frame written by hand decodes``
        testCase "a say without a room is a broadcast to #lobby, and without an id has id 0"
            ``a say without a room is a broadcast to #lobby, and without an id has id 0``
        testCase "a frame as written with escaped names, nulls or other spellings of a number decodes as the document reads it"
            ``a frame as written with escaped names, nulls or other spellings of a number decodes as the document reads it``
        testTheory "a malformed frame is refused as BadFrame with a reason"
            [ ""
              "   "
              "\u0000\u0001\u00ff\u00fe garbage"
              "hello"
              "{"
              "{\"v\":1,\"type\":\"say\",\"text\":\"hi"
              "{\"v\":1,\"type\":\"who\","
              "{\"v\":1,\"type\":\"who\"}}"
              "[1,2,3]"
              "[{\"v\":1,\"type\":\"who\"}]"
              "\"who\""
              "42"
              "null"
              "true"
              "{}"
              "{\"v\":1}"
              "{\"v\":1,\"type\":null}"
              "{\"v\":1,\"type\":7}"
              "{\"v\":1,\"type\":\"no-such-type\"}"
              "{\"v\":\"1\",\"type\":\"who\"}"
              "{\"v\":99999999999999999999999,\"type\":\"who\"}"
              "{\"v\":1.5,\"type\":\"who\"}" ]
            ``a malformed frame is refused as BadFrame with a reason``
        testTheory "a frame of another protocol version is refused as VersionMismatch with a reason"
            [ "{\"v\":2,\"type\":\"who\"}"
              "{\"v\":0,\"type\":\"hello\",\"nick\":\"alice\"}"
              "{\"v\":-1,\"type\":\"who\"}" ]
            ``a frame of another protocol version is refused as VersionMismatch with a reason``
        testTheory "a client request with a missing or mistyped field names the field"
            [ ("{\"v\":1,\"type\":\"hello\"}", "nick")
              ("{\"v\":1,\"type\":\"hello\",\"nick\":null}", "nick")
              ("{\"v\":1,\"type\":\"hello\",\"nick\":42}", "nick")
              ("{\"v\":1,\"type\":\"hello\",\"nick\":[\"alice\"]}", "nick")
              ("{\"v\":1,\"type\":\"say\",\"text\":{\"a\":1}}", "text")
              ("{\"v\":1,\"type\":\"msg\",\"text\":\"hi\"}", "to") ]
            ``a client request with a missing or mistyped field names the field``
        testTheory "a say whose id is not a positive integer is refused as BadFrame naming the id"
            [ "{\"v\":1,\"type\":\"say\",\"text\":\"hi\",\"id\":0}"
              "{\"v\":1,\"type\":\"say\",\"text\":\"hi\",\"id\":-1}"
              "{\"v\":1,\"type\":\"say\",\"text\":\"hi\",\"id\":-9223372036854775808}"
              "{\"v\":1,\"type\":\"say\",\"text\":\"hi\",\"id\":\"7\"}" ]
            ``a say whose id is not a positive integer is refused as BadFrame naming the id``
        testTheory "a peer message with a missing, mistyped or out-of-range field is refused as BadFrame"
            [ ("{\"v\":1,\"type\":\"election\",\"candidate\":3}", "epoch")
              ("{\"v\":1,\"type\":\"election\",\"candidate\":\"3\",\"epoch\":1}", "candidate")
              ("{\"v\":1,\"type\":\"election\",\"candidate\":3.5,\"epoch\":1}", "candidate")
              ("{\"v\":1,\"type\":\"election\",\"candidate\":99999999999999999999999,\"epoch\":1}", "candidate")
              ("{\"v\":1,\"type\":\"election\",\"candidate\":4294967296,\"epoch\":1}", "candidate")
              ("{\"v\":1,\"type\":\"leader\",\"leader\":true,\"epoch\":1}", "leader")
              ("{\"v\":1,\"type\":\"leave\"}", "node")
              ("{\"v\":1,\"type\":\"users\",\"node\":2,\"users\":\"alice\"}", "users")
              ("{\"v\":1,\"type\":\"users\",\"node\":2,\"users\":[1,2]}", "")
              ("{\"v\":1,\"type\":\"users\",\"node\":2,\"users\":[{\"nick\":\"alice\",\"node\":2,\"rooms\":[]}]}", "session")
              ("{\"v\":1,\"type\":\"sequenced\",\"room\":\"#lobby\",\"seq\":\"1\",\"from\":\"a\",\"fromNode\":1,\"text\":\"hi\",\"id\":0}", "seq")
              ("{\"v\":1,\"type\":\"sequenced\",\"room\":\"#lobby\",\"seq\":1,\"from\":\"a\",\"fromNode\":1,\"text\":\"hi\"}", "id")
              ("{\"v\":1,\"type\":\"placed\",\"room\":\"#dev\",\"owner\":2,\"epoch\":1}", "leader")
              ("{\"v\":1,\"type\":\"placed\",\"room\":\"#dev\",\"owner\":2,\"epoch\":1,\"leader\":3}", "version")
              ("{\"v\":1,\"type\":\"placed\",\"room\":\"#dev\",\"owner\":2,\"epoch\":1,\"leader\":3,\"version\":1}", "lastSeq")
              ("{\"v\":1,\"type\":\"placed\",\"room\":\"#dev\",\"owner\":2,\"epoch\":1,\"leader\":3,\"version\":1,\"lastSeq\":99999999999999999999999}", "lastSeq")
              ("{\"v\":1,\"type\":\"users-requested\"}", "node")
              ("{\"v\":1,\"type\":\"heartbeat\",\"epoch\":1,\"leader\":null,\"known\":[],\"load\":{\"clients\":0,\"rooms\":0,\"messagesPerSecond\":0}}", "from")
              ("{\"v\":1,\"type\":\"heartbeat\",\"from\":{\"id\":2,\"client\":\"nowhere\",\"peer\":\"127.0.0.1:6002\"},\"epoch\":1,\"leader\":null,\"known\":[],\"load\":{\"clients\":0,\"rooms\":0,\"messagesPerSecond\":0}}", "client")
              ("{\"v\":1,\"type\":\"heartbeat\",\"from\":{\"id\":2,\"client\":\"127.0.0.1:5002\",\"peer\":\"127.0.0.1:6002\"},\"epoch\":1,\"leader\":null,\"known\":[],\"load\":7}", "load")
              ("{\"v\":1,\"type\":\"heartbeat\",\"from\":{\"id\":2,\"client\":\"127.0.0.1:5002\",\"peer\":\"127.0.0.1:6002\"},\"epoch\":1,\"leader\":null,\"known\":[3],\"load\":{\"clients\":0,\"rooms\":0,\"messagesPerSecond\":0}}", "") ]
            ``a peer message with a missing, mistyped or out-of-range field is refused as BadFrame``
        testTheory "a peer frame with a number outside its range is refused, naming the field"
            [ ("{\"v\":1,\"type\":\"leader\",\"leader\":3,\"epoch\":-1}", "epoch")
              ("{\"v\":1,\"type\":\"leader\",\"leader\":3,\"epoch\":9007199254740993}", "epoch")
              ("{\"v\":1,\"type\":\"leader\",\"leader\":3,\"epoch\":9223372036854775807}", "epoch")
              ("{\"v\":1,\"type\":\"election\",\"candidate\":3,\"epoch\":-9223372036854775808}", "epoch")
              ("{\"v\":1,\"type\":\"leader\",\"leader\":0,\"epoch\":1}", "leader")
              ("{\"v\":1,\"type\":\"election\",\"candidate\":-3,\"epoch\":1}", "candidate")
              ("{\"v\":1,\"type\":\"leave\",\"node\":0}", "node")
              ("{\"v\":1,\"type\":\"leave\",\"node\":-1}", "node")
              ("{\"v\":1,\"type\":\"users-requested\",\"node\":2147483648}", "node")
              ("{\"v\":1,\"type\":\"place\",\"room\":\"#dev\",\"requester\":0}", "requester")
              ("{\"v\":1,\"type\":\"sequenced\",\"room\":\"#lobby\",\"seq\":-1,\"from\":\"a\",\"fromNode\":1,\"text\":\"hi\",\"id\":0}", "seq")
              ("{\"v\":1,\"type\":\"sequenced\",\"room\":\"#lobby\",\"seq\":9007199254740993,\"from\":\"a\",\"fromNode\":1,\"text\":\"hi\",\"id\":0}", "seq")
              ("{\"v\":1,\"type\":\"replica-stored\",\"room\":\"#lobby\",\"backup\":{\"backup\":2,\"owner\":1,\"epoch\":1,\"leader\":1,\"version\":1},\"seq\":9223372036854775807}", "seq")
              ("{\"v\":1,\"type\":\"replica-stored\",\"room\":\"#lobby\",\"backup\":{\"backup\":2,\"owner\":1,\"epoch\":-5,\"leader\":1,\"version\":1},\"seq\":1}", "epoch")
              ("{\"v\":1,\"type\":\"replica-stored\",\"room\":\"#lobby\",\"backup\":{\"backup\":0,\"owner\":1,\"epoch\":1,\"leader\":1,\"version\":1},\"seq\":1}", "backup")
              ("{\"v\":1,\"type\":\"backup-assigned\",\"room\":\"#lobby\",\"backup\":{\"backup\":2,\"owner\":1,\"epoch\":1,\"leader\":1,\"version\":2147483647}}", "version")
              ("{\"v\":1,\"type\":\"placed\",\"room\":\"#dev\",\"owner\":2,\"epoch\":1,\"leader\":3,\"version\":-1,\"lastSeq\":0}", "version")
              ("{\"v\":1,\"type\":\"placed\",\"room\":\"#dev\",\"owner\":-2,\"epoch\":1,\"leader\":3,\"version\":1,\"lastSeq\":0}", "owner")
              ("{\"v\":1,\"type\":\"placed\",\"room\":\"#dev\",\"owner\":2,\"epoch\":1,\"leader\":3,\"version\":1,\"lastSeq\":-7}", "lastSeq")
              ("{\"v\":1,\"type\":\"history-requested\",\"room\":\"#dev\",\"after\":-1,\"requester\":2}", "after")
              ("{\"v\":1,\"type\":\"user-left\",\"nick\":\"bob\",\"node\":0}", "node")
              ("{\"v\":1,\"type\":\"users\",\"node\":2,\"users\":[{\"nick\":\"alice\",\"node\":-1,\"rooms\":[],\"session\":\"s\"}]}", "node")
              ("{\"v\":1,\"type\":\"heartbeat\",\"from\":{\"id\":0,\"client\":\"127.0.0.1:5002\",\"peer\":\"127.0.0.1:6002\"},\"epoch\":1,\"leader\":null,\"known\":[],\"load\":{\"clients\":0,\"rooms\":0,\"messagesPerSecond\":0}}", "id")
              ("{\"v\":1,\"type\":\"heartbeat\",\"from\":{\"id\":2,\"client\":\"127.0.0.1:5002\",\"peer\":\"127.0.0.1:6002\"},\"epoch\":1,\"leader\":-1,\"known\":[],\"load\":{\"clients\":0,\"rooms\":0,\"messagesPerSecond\":0}}", "leader")
              ("{\"v\":1,\"type\":\"heartbeat\",\"from\":{\"id\":2,\"client\":\"127.0.0.1:5002\",\"peer\":\"127.0.0.1:6002\"},\"epoch\":1000000000000000000,\"leader\":2,\"known\":[],\"load\":{\"clients\":0,\"rooms\":0,\"messagesPerSecond\":0}}", "epoch") ]
            ``a peer frame with a number outside its range is refused, naming the field``
        testCase "the edges of the peer ranges are accepted"
            ``the edges of the peer ranges are accepted``
        testCase "an integer beyond 64 bits is refused as out of range, naming the field"
            ``an integer beyond 64 bits is refused as out of range, naming the field``
        testTheory "a server reply with an unknown code or malformed items is refused as BadFrame"
            [ "{\"v\":1,\"type\":\"error\",\"code\":\"no-such-code\",\"reason\":\"x\"}"
              "{\"v\":1,\"type\":\"status\",\"self\":1,\"leader\":null,\"epoch\":1,\"nodes\":[{\"id\":1}]}"
              "{\"v\":1,\"type\":\"who\",\"users\":[\"alice\"]}" ]
            ``a server reply with an unknown code or malformed items is refused as BadFrame``
        testCase "a valid frame cut before its closing brackets is refused as BadFrame"
            ``a valid frame cut before its closing brackets is refused as BadFrame``
        testTheory "a valid frame followed by trailing text is refused as BadFrame"
            [ "{\"v\":1,\"type\":\"who\"} {\"v\":1,\"type\":\"who\"}"
              "{\"v\":1,\"type\":\"who\"}x"
              "{\"v\":1,\"type\":\"who\"}]" ]
            ``a valid frame followed by trailing text is refused as BadFrame``
        testCase "a deeply nested frame is refused, not followed down"
            ``a deeply nested frame is refused, not followed down``
        testCase "property: decoding never throws on arbitrary strings"
            ``property: decoding never throws on arbitrary strings``
        testTheory "lenient JSON is refused as BadFrame with a reason, from a string and from bytes"
            [ "{'v':1,'type':'who'}"
              "{\"v\":1,\"type\":'who'}"
              "{v:1,type:\"who\"}"
              "{\"v\":1,\"type\":\"who\"} // a comment"
              "{\"v\":1,/* a comment */\"type\":\"who\"}"
              "{\"v\":1,\"type\":\"who\",}"
              "{\"v\":1,\"type\":\"users\",\"node\":2,\"users\":[],}"
              "{\"v\":1,\"type\":\"who\"}\u0000"
              "{\"v\":1,\"type\":\"say\",\"text\":\"a\u0000b\"}"
              "{\"v\":1,\"type\":\"say\",\"text\":\"line\nbreak\"}"
              "{\"v\":1,\"type\":\"who\",\"room\":NaN}"
              "{\"v\":01,\"type\":\"who\"}" ]
            ``lenient JSON is refused as BadFrame with a reason, from a string and from bytes``
        testCase "a key given twice is refused, so no two parsers can read a frame two ways"
            ``a key given twice is refused, so no two parsers can read a frame two ways``
        testCase "invalid UTF-8 is refused, not turned into U+FFFD"
            ``invalid UTF-8 is refused, not turned into U+FFFD``
        testCase "the UTF-8 decoders read what the encoders write, and a line ends in one newline"
            ``the UTF-8 decoders read what the encoders write, and a line ends in one newline``
        testCase "frames are written byte for byte as before"
            ``frames are written byte for byte as before``
    ]
