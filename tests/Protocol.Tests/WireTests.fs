/// The wire format: every message survives encode then decode, and every malformed frame becomes
/// an Error with a code and a reason, never an exception.
module FormalChat.Protocol.Tests.WireTests

open System
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

let private intGen : Gen<int> =
    Gen.oneof [ Gen.choose (-5, 100); Gen.elements [ Int32.MinValue; Int32.MaxValue; 0 ]; Gen.choose (Int32.MinValue, Int32.MaxValue) ]

let private endpointGen : Gen<Endpoint> =
    // Not "localhost": the parser maps it to 127.0.0.1 on purpose.
    Gen.map2
        (fun host port -> { Host = host; Port = port })
        (Gen.elements [ "127.0.0.1"; "10.1.2.3"; "node-a.example"; "::1"; "fe80::1" ])
        (Gen.choose (1, 65535))

let private nodeInfoGen : Gen<NodeInfo> =
    Gen.map3 (fun id client peer -> { Id = id; ClientEndpoint = client; PeerEndpoint = peer }) intGen endpointGen endpointGen

let private loadGen : Gen<Load> =
    Gen.map3 (fun clients rooms rate -> { Clients = clients; Rooms = rooms; MessagesPerSecond = rate }) intGen intGen intGen

let private smallListOf (gen: Gen<'T>) : Gen<'T list> = Gen.listOf gen |> Gen.map (List.truncate 6)

let private peerMessageGen : Gen<PeerMessage> =
    Gen.oneof
        [ gen {
              let! from = nodeInfoGen
              let! epoch = intGen
              let! leader = Gen.optionOf intGen
              let! load = loadGen
              let! known = smallListOf nodeInfoGen
              return HeartbeatSent { From = from; Epoch = epoch; Leader = leader; Load = load; Known = known }
          }
          Gen.map2 (fun candidate epoch -> Election { Candidate = candidate; Epoch = epoch }) intGen intGen
          Gen.map2 (fun leader epoch -> LeaderAnnounced { Leader = leader; Epoch = epoch }) intGen intGen
          intGen |> Gen.map LeaveAnnounced
          Gen.map3 (fun from node text -> BroadcastForwarded { From = from; FromNode = node; Text = text }) textGen intGen textGen
          gen {
              let! from = textGen
              let! node = intGen
              let! target = textGen
              let! text = textGen
              return PrivateForwarded { From = from; FromNode = node; To = target; Text = text }
          }
          Gen.map2 (fun nick node -> UserJoined(nick, node)) textGen intGen
          Gen.map2 (fun nick node -> UserLeft(nick, node)) textGen intGen
          Gen.map2 (fun node nicks -> UsersListed(node, nicks)) intGen (smallListOf textGen) ]

let private clientRequestGen : Gen<ClientRequest> =
    Gen.oneof
        [ textGen |> Gen.map Hello
          textGen |> Gen.map Say
          Gen.map2 (fun target text -> Whisper(target, text)) textGen textGen
          Gen.constant Who
          Gen.constant Status
          Gen.constant Quit ]

let private errorCodeGen : Gen<ErrorCode> =
    Gen.elements [ NickTaken; NickInvalid; HelloFirst; AlreadyHello; NoSuchUser; ServerFull; TextInvalid; BadFrame; FrameTooLarge; VersionMismatch ]

let private nodeStatusGen : Gen<NodeStatus> =
    gen {
        let! id = intGen
        let! client = endpointGen
        let! load = loadGen
        let! isLeader = Gen.elements [ true; false ]
        let! isSelf = Gen.elements [ true; false ]
        return { Id = id; ClientEndpoint = client; Load = load; IsLeader = isLeader; IsSelf = isSelf }
    }

let private serverReplyGen : Gen<ServerReply> =
    Gen.oneof
        [ Gen.map3 (fun nick node leader -> Welcome(nick, node, leader)) textGen intGen (Gen.optionOf intGen)
          Gen.map3 (fun from node text -> Message { From = from; FromNode = node; Text = text }) textGen intGen textGen
          gen {
              let! from = textGen
              let! node = intGen
              let! target = textGen
              let! text = textGen
              return Private { From = from; FromNode = node; To = target; Text = text }
          }
          smallListOf (Gen.map2 (fun nick node -> { Nick = nick; Node = node }) textGen intGen) |> Gen.map WhoListed
          gen {
              let! self = intGen
              let! leader = Gen.optionOf intGen
              let! epoch = intGen
              let! nodes = smallListOf nodeStatusGen
              return StatusReported { Self = self; Leader = leader; Epoch = epoch; Nodes = nodes }
          }
          Gen.map2 (fun code reason -> Error(code, reason)) errorCodeGen textGen
          textGen |> Gen.map Notice ]

// ---------------------------------------------------------------------------------------------
// Round trips.

let private assertOneLine (frame: string) =
    Assert.False(frame.Contains '\n' || frame.Contains '\r', $"a frame is one line: {frame}")

[<Fact>]
let ``property: every peer message decodes to itself after encoding, as one line`` () =
    let property (message: PeerMessage) =
        let frame = Wire.encodePeerMessage message
        assertOneLine frame
        Assert.Equal(Ok message, Wire.decodePeerMessage frame)

    Check.One(checkConfig, Prop.forAll (Arb.fromGen peerMessageGen) property)

[<Fact>]
let ``property: every client request decodes to itself after encoding, as one line`` () =
    let property (request: ClientRequest) =
        let frame = Wire.encodeClientRequest request
        assertOneLine frame
        Assert.Equal(Ok request, Wire.decodeClientRequest frame)

    Check.One(checkConfig, Prop.forAll (Arb.fromGen clientRequestGen) property)

[<Fact>]
let ``property: every server reply decodes to itself after encoding, as one line`` () =
    let property (reply: ServerReply) =
        let frame = Wire.encodeServerReply reply
        assertOneLine frame
        Assert.Equal(Ok reply, Wire.decodeServerReply frame)

    Check.One(checkConfig, Prop.forAll (Arb.fromGen serverReplyGen) property)

[<Fact>]
let ``every frame carries the protocol version`` () =
    let frame = Wire.encodeClientRequest Who

    Assert.StartsWith($"{{\"v\":{protocolVersion},", frame)

[<Fact>]
let ``a documented frame written by hand decodes`` () =
    Assert.Equal(Ok(Whisper("bob", "hi")), Wire.decodeClientRequest """{"v":1,"type":"msg","to":"bob","text":"hi"}""")
    Assert.Equal(Ok(Election { Candidate = 3; Epoch = 2 }), Wire.decodePeerMessage """{"type":"election","epoch":2,"candidate":3,"v":1}""")

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

[<Theory>]
[<InlineData("")>]
[<InlineData("   ")>]
[<InlineData("\u0000\u0001\u00ff\u00fe garbage")>]
[<InlineData("hello")>]
[<InlineData("{")>]
[<InlineData("{\"v\":1,\"type\":\"say\",\"text\":\"hi")>]
[<InlineData("{\"v\":1,\"type\":\"who\",")>]
[<InlineData("{\"v\":1,\"type\":\"who\"}}")>]
[<InlineData("[1,2,3]")>]
[<InlineData("[{\"v\":1,\"type\":\"who\"}]")>]
[<InlineData("\"who\"")>]
[<InlineData("42")>]
[<InlineData("null")>]
[<InlineData("true")>]
[<InlineData("{}")>]
[<InlineData("{\"v\":1}")>]
[<InlineData("{\"v\":1,\"type\":null}")>]
[<InlineData("{\"v\":1,\"type\":7}")>]
[<InlineData("{\"v\":1,\"type\":\"no-such-type\"}")>]
[<InlineData("{\"v\":\"1\",\"type\":\"who\"}")>]
[<InlineData("{\"v\":99999999999999999999999,\"type\":\"who\"}")>]
[<InlineData("{\"v\":1.5,\"type\":\"who\"}")>]
let ``a malformed frame is refused as BadFrame with a reason`` (frame: string) =
    assertRefused BadFrame frame

[<Theory>]
[<InlineData("{\"v\":2,\"type\":\"who\"}")>]
[<InlineData("{\"v\":0,\"type\":\"hello\",\"nick\":\"alice\"}")>]
[<InlineData("{\"v\":-1,\"type\":\"who\"}")>]
let ``a frame of another protocol version is refused as VersionMismatch with a reason`` (frame: string) =
    assertRefused VersionMismatch frame

let private refusedBy (decode: string -> Result<'T, Wire.DecodeError>) (frame: string) : Wire.DecodeError =
    match decode frame with
    | Ok value -> failwith $"accepted {frame} as {value}"
    | Result.Error error -> error

[<Theory>]
[<InlineData("{\"v\":1,\"type\":\"hello\"}", "nick")>]
[<InlineData("{\"v\":1,\"type\":\"hello\",\"nick\":null}", "nick")>]
[<InlineData("{\"v\":1,\"type\":\"hello\",\"nick\":42}", "nick")>]
[<InlineData("{\"v\":1,\"type\":\"hello\",\"nick\":[\"alice\"]}", "nick")>]
[<InlineData("{\"v\":1,\"type\":\"say\",\"text\":{\"a\":1}}", "text")>]
[<InlineData("{\"v\":1,\"type\":\"msg\",\"text\":\"hi\"}", "to")>]
let ``a client request with a missing or mistyped field names the field`` (frame: string, field: string) =
    let error = refusedBy Wire.decodeClientRequest frame

    Assert.Equal(BadFrame, error.Code)
    Assert.Contains($"'{field}'", error.Reason)

[<Theory>]
[<InlineData("{\"v\":1,\"type\":\"election\",\"candidate\":3}", "epoch")>]
[<InlineData("{\"v\":1,\"type\":\"election\",\"candidate\":\"3\",\"epoch\":1}", "candidate")>]
[<InlineData("{\"v\":1,\"type\":\"election\",\"candidate\":3.5,\"epoch\":1}", "candidate")>]
[<InlineData("{\"v\":1,\"type\":\"election\",\"candidate\":99999999999999999999999,\"epoch\":1}", "")>]
[<InlineData("{\"v\":1,\"type\":\"election\",\"candidate\":4294967296,\"epoch\":1}", "candidate")>]
[<InlineData("{\"v\":1,\"type\":\"leader\",\"leader\":true,\"epoch\":1}", "leader")>]
[<InlineData("{\"v\":1,\"type\":\"leave\"}", "node")>]
[<InlineData("{\"v\":1,\"type\":\"users\",\"node\":2,\"nicks\":\"alice\"}", "nicks")>]
[<InlineData("{\"v\":1,\"type\":\"users\",\"node\":2,\"nicks\":[1,2]}", "")>]
[<InlineData("{\"v\":1,\"type\":\"heartbeat\",\"epoch\":1,\"leader\":null,\"known\":[],\"load\":{\"clients\":0,\"rooms\":0,\"messagesPerSecond\":0}}", "from")>]
[<InlineData("{\"v\":1,\"type\":\"heartbeat\",\"from\":{\"id\":2,\"client\":\"nowhere\",\"peer\":\"127.0.0.1:6002\"},\"epoch\":1,\"leader\":null,\"known\":[],\"load\":{\"clients\":0,\"rooms\":0,\"messagesPerSecond\":0}}", "client")>]
[<InlineData("{\"v\":1,\"type\":\"heartbeat\",\"from\":{\"id\":2,\"client\":\"127.0.0.1:5002\",\"peer\":\"127.0.0.1:6002\"},\"epoch\":1,\"leader\":null,\"known\":[],\"load\":7}", "load")>]
[<InlineData("{\"v\":1,\"type\":\"heartbeat\",\"from\":{\"id\":2,\"client\":\"127.0.0.1:5002\",\"peer\":\"127.0.0.1:6002\"},\"epoch\":1,\"leader\":null,\"known\":[3],\"load\":{\"clients\":0,\"rooms\":0,\"messagesPerSecond\":0}}", "")>]
let ``a peer message with a missing, mistyped or out-of-range field is refused as BadFrame`` (frame: string, field: string) =
    let error = refusedBy Wire.decodePeerMessage frame

    Assert.Equal(BadFrame, error.Code)
    Assert.False(String.IsNullOrWhiteSpace error.Reason)
    if field <> "" then Assert.Contains($"'{field}'", error.Reason)

[<Fact(Skip = "Protocol.FSharp bug, see report: Wire.intField turns an integer beyond Int64 into a cast-exception message")>]
let ``an integer beyond 64 bits is refused as out of range, naming the field`` () =
    let error = refusedBy Wire.decodePeerMessage "{\"v\":1,\"type\":\"election\",\"candidate\":99999999999999999999999,\"epoch\":1}"

    Assert.Equal(BadFrame, error.Code)
    Assert.Equal("field 'candidate' is out of range", error.Reason)

[<Theory>]
[<InlineData("{\"v\":1,\"type\":\"error\",\"code\":\"no-such-code\",\"reason\":\"x\"}")>]
[<InlineData("{\"v\":1,\"type\":\"status\",\"self\":1,\"leader\":null,\"epoch\":1,\"nodes\":[{\"id\":1}]}")>]
[<InlineData("{\"v\":1,\"type\":\"who\",\"users\":[\"alice\"]}")>]
let ``a server reply with an unknown code or malformed items is refused as BadFrame`` (frame: string) =
    let error = refusedBy Wire.decodeServerReply frame

    Assert.Equal(BadFrame, error.Code)
    Assert.False(String.IsNullOrWhiteSpace error.Reason)

[<Fact(Skip = "Protocol.FSharp bug, see report: Wire.parseObject accepts an object whose closing brackets are missing")>]
let ``a valid frame cut before its closing brackets is refused as BadFrame`` () =
    for frame in
        [ Wire.encodeClientRequest Who
          Wire.encodeClientRequest(Whisper("bob", "hi"))
          Wire.encodePeerMessage(Election { Candidate = 3; Epoch = 1 })
          Wire.encodePeerMessage(UsersListed(2, [ "alice" ])) ] do
        // Drop the final '}', and for the list also its ']'.
        assertRefused BadFrame (frame.Substring(0, frame.Length - 1))
    assertRefused BadFrame "{\"v\":1,\"type\":\"users\",\"node\":2,\"nicks\":[\"a\""

[<Fact>]
let ``a deeply nested frame is refused, not followed down`` () =
    let frame = String.replicate 10_000 "[" + String.replicate 10_000 "]"

    assertRefused BadFrame frame
    assertRefused BadFrame ("{\"v\":1,\"type\":\"who\",\"x\":" + frame + "}")

[<Fact>]
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
