/// The wire, pinned by files captured from the codec before it became one table per union
/// (issue 9, item 7): every case's exact bytes, and what the decoders say (value or error code
/// and reason) about thousands of hostile variants of those frames. A change to the codec that
/// moves one byte or one refusal fails here. Set FORMALCHAT_WRITE_GOLDEN=1 to write the files
/// again, only when the wire is meant to change.
module FormalChat.Protocol.Tests.WireGoldenTests

open System
open System.IO
open System.IO.Compression
open System.Text
open System.Text.Encodings.Web
open System.Text.Json
open System.Text.Json.Nodes
open Expecto
open FormalChat.Protocol
open Xunit

// ---------------------------------------------------------------------------------------------
// Samples: every case of every union, each optional field both ways, awkward text.

let private awkward = "é漢字 😀 <>&'+ \"\\ \n\t\u0000\u001f\u2028"

let private message (seq: int64) (text: string) : RoomMessage =
    { Room = (RoomName "#lobby"); Seq = seq; From = Nick "alice"; FromNode = 2; Text = text; ClientMessageId = seq + 100L }

let private backup : BackupAssignment = { Backup = 2; Owner = 1; Epoch = 7L; Leader = 3; Version = 4 }

let private info (id: NodeId) : NodeInfo =
    { Id = id; ClientEndpoint = { Host = "127.0.0.1"; Port = 7000 + id }; PeerEndpoint = { Host = "127.0.0.1"; Port = 8000 + id } }

let private known (nick: string) (node: NodeId) : KnownUser =
    { User = { Nick = Nick nick; Node = node; Rooms = [ (RoomName "#lobby"); (RoomName "#dev") ] }; Session = $"session-{nick}" }

let private peerSamples : PeerMessage list =
    [ HeartbeatSent { From = info 2; Epoch = 1L; Leader = Some 3; Load = { Clients = 4; Rooms = 5; MessagesPerSecond = 6 }; Known = [ info 1; info 3 ] }
      HeartbeatSent { From = info 1; Epoch = 0L; Leader = None; Load = Load.zero; Known = [] }
      Election { Candidate = 3; Epoch = 2L }
      LeaderAnnounced { Leader = 3; Epoch = 9007199254740992L }
      LeaveAnnounced 2
      PrivateForwarded { From = Nick "dave"; FromNode = 2; To = Nick "alice"; Text = awkward }
      UserJoined(known "dave" 2, None)
      UserJoined(known "dave" 2, Some "session-before")
      UserLeft(Nick "bob", 1)
      MemberJoined((RoomName "#dev"), Nick "dave")
      MemberLeft((RoomName "#lobby"), Nick "alice")
      UsersListed(2, [ known "dave" 2; known "alice" 2 ])
      UsersListed(2, [])
      UsersRequested 3
      PlacementRequested((RoomName "#dev"), 2)
      RoomAssigned((RoomName "#dev"), { Owner = 2; Epoch = 1L; Leader = 3; Version = 2; LastSeq = 4L })
      RoomPosted { Room = (RoomName "#lobby"); From = Nick "dave"; FromNode = 2; Text = "hello"; ClientMessageId = 5L }
      RoomSequenced(message 4L "hello everyone")
      RoomSequenced(message 0L awkward)
      BackupAssigned((RoomName "#lobby"), backup)
      ReplicaSynced((RoomName "#lobby"), backup, [ message 1L "a"; message 2L "b" ], [ message 3L "c" ])
      ReplicaSynced((RoomName "#lobby"), backup, [], [])
      ReplicaAppended((RoomName "#lobby"), backup, [ message 4L "d"; message 5L "e" ])
      ReplicaStored((RoomName "#lobby"), backup, 3L)
      HistoryRequested((RoomName "#lobby"), 1L, 2)
      HistoryShared((RoomName "#lobby"), [ message 1L "a"; message 2L "b" ])
      NickClaimed { Nick = Nick "dave"; Session = "session-dave"; Previous = Some "session-old"; Node = 2; Term = { Epoch = 7L; Leader = 3 } }
      NickGranted { Nick = Nick "dave"; Session = "session-dave"; Previous = None; Node = 2; Term = { Epoch = 7L; Leader = 3 } }
      NickRefused({ Nick = Nick "dave"; Session = "session-x"; Previous = None; Node = 1; Term = { Epoch = 7L; Leader = 3 } }, 2)
      NickReleased { Nick = Nick "dave"; Session = "session-dave"; Previous = None; Node = 2; Term = { Epoch = 7L; Leader = 3 } }
      NicksReported(2, { Epoch = 7L; Leader = 3 }, [ Nick "dave", "session-dave"; Nick "alice", "session-alice" ])
      NicksReported(2, { Epoch = 7L; Leader = 3 }, [])
      RoomsHeld(2, [ RoomName "#lobby", 200L; RoomName "#story", 0L ])
      RoomsHeld(2, [])
      NicksRequested { Epoch = 7L; Leader = 3 } ]

let private clientSamples : ClientRequest list =
    [ Hello { Nick = "erin"; Session = None; Resume = []; Password = None }
      Hello { Nick = "alice"; Session = Some "session-alice"; Resume = [ "#lobby", 1L; "#dev", 0L ]; Password = None }
      Hello { Nick = "alice"; Session = None; Resume = []; Password = Some(Given awkward) }
      Say("#dev", awkward, 7L)
      Say("#lobby", "no id", 0L)
      Whisper("bob", "psst")
      Join "#dev"
      Leave "#dev"
      Rooms
      Who None
      Who(Some "#dev")
      Status
      Quit
      Register(Given awkward) ]

let private serverSamples : ServerReply list =
    [ Welcome(Nick "alice", 2, None, "s")
      Welcome(Nick "alice", 2, Some 3, "s")
      Message(message 5L awkward)
      Private { From = Nick "bob"; FromNode = 1; To = Nick "alice"; Text = "psst" }
      Joined((RoomName "#dev"), Some 2, 3)
      Joined((RoomName "#dev"), None, 0)
      LeftRoom (RoomName "#dev")
      RoomsListed [ { Room = (RoomName "#dev"); Owner = Some 2; Backup = None; Members = 1 }; { Room = (RoomName "#lobby"); Owner = None; Backup = Some 1; Members = 0 } ]
      RoomsListed []
      WhoListed(None, [ (known "dave" 2).User ])
      WhoListed(Some (RoomName "#dev"), [])
      StatusReported
          { Self = 1
            Leader = Some 3
            Epoch = 4L
            Nodes =
              [ { Id = 1; ClientEndpoint = { Host = "127.0.0.1"; Port = 7001 }; Load = Load.zero; IsLeader = false; IsSelf = true }
                { Id = 3; ClientEndpoint = { Host = "::1"; Port = 7003 }; Load = { Clients = 1; Rooms = 2; MessagesPerSecond = 3 }; IsLeader = true; IsSelf = false } ]
            Unreplicated = [ (RoomName "#dev") ] }
      StatusReported { Self = 1; Leader = None; Epoch = 0L; Nodes = []; Unreplicated = [] }
      Redirected(3, { Host = "127.0.0.1"; Port = 7003 }, "shedding load")
      Notice awkward ]
    @ [ for code in ErrorCode.all -> ErrorReply(code, $"because {code}") ]

// ---------------------------------------------------------------------------------------------
// The files.

let private goldenDirectory = Path.Combine(__SOURCE_DIRECTORY__, "Golden")

let private writing = Environment.GetEnvironmentVariable "FORMALCHAT_WRITE_GOLDEN" = "1"

/// The lines of a golden file; one ending in .gz is gzipped (read it with zcat).
let private readLines (path: string) : string list =
    use file = File.OpenRead path
    use stream = if path.EndsWith ".gz" then new GZipStream(file, CompressionMode.Decompress) :> Stream else file :> Stream
    use reader = new StreamReader(stream, Encoding.UTF8)
    reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray

let private writeLines (path: string) (lines: string list) =
    Directory.CreateDirectory goldenDirectory |> ignore
    use file = File.Create path
    use stream = if path.EndsWith ".gz" then new GZipStream(file, CompressionLevel.SmallestSize) :> Stream else file :> Stream
    use writer = new StreamWriter(stream, UTF8Encoding false)
    for line in lines do writer.Write(line + "\n")

/// Compares with the file, or writes it when asked; on a difference names the first line.
let private checkGolden (fileName: string) (lines: string list) =
    let path = Path.Combine(goldenDirectory, fileName)
    if writing then writeLines path lines
    let expected = readLines path
    Assert.Equal(expected.Length, lines.Length)
    List.zip expected lines |> List.iteri (fun index (wanted, actual) -> Assert.True((wanted = actual), $"{fileName} line {index + 1}:\nwanted {wanted}\nactual {actual}"))

/// Every frame as its string encoding; the line encoding must be the same bytes and a newline.
let private encodings : (string * string) list =
    let checkLine (text: string) (line: byte array) =
        Assert.Equal<byte array>(Encoding.UTF8.GetBytes(text + "\n"), line)
        text
    [ for message in peerSamples -> "peer", checkLine (Wire.encodePeerMessage message) (Wire.encodePeerMessageLine message)
      for request in clientSamples -> "client", checkLine (Wire.encodeClientRequest request) (Wire.encodeClientRequestLine request)
      for reply in serverSamples -> "server", checkLine (Wire.encodeServerReply reply) (Wire.encodeServerReplyLine reply)
      for seq in [ 1L; 9007199254740992L ] -> "log", Wire.encodeRoomMessage (message seq awkward) ]

let ``every case of every union is encoded exactly as before`` () =
    checkGolden "wire-encodings.txt" [ for union, frame in encodings -> $"{union}\t{frame}" ]

// ---------------------------------------------------------------------------------------------
// Hostile variants: each field of each sample (at the top and one object down) removed or
// given each of these values, plus a few whole-frame changes.

let private hostileValues : string list =
    [ "null"; "\"x\""; "\"#Dev\""; "0"; "-1"; "1.5"; "1e2"; "2147483648"; "9007199254740993"; "99999999999999999999"; "true"
      "{}"; "[]"; "[{}]"; "[\"x\"]" ]

let private compact = JsonSerializerOptions(Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping)

let private variants (frame: string) : string list =
    let root () = (nonNull (JsonNode.Parse frame)).AsObject()
    let edit (change: JsonObject -> unit) =
        let copy = root ()
        change copy
        copy.ToJsonString compact
    let editsOf (path: JsonObject -> JsonObject) (names: string list) =
        [ for name in names do
              yield edit (fun frame -> (path frame).Remove name |> ignore)
              for value in hostileValues -> edit (fun frame -> (path frame).[name] <- JsonNode.Parse value) ]
    let top = root ()
    let topNames = [ for property in top -> property.Key ]
    let nested =
        [ for property in top do
              match property.Value with
              | :? JsonObject as inner -> yield (fun (frame: JsonObject) -> (nonNull frame.[property.Key]).AsObject()), [ for p in inner -> p.Key ]
              | :? JsonArray as items when items.Count > 0 && (items.[0] :? JsonObject) ->
                  yield (fun (frame: JsonObject) -> (nonNull ((nonNull frame.[property.Key]).AsArray().[0])).AsObject()), [ for p in (nonNull items.[0]).AsObject() -> p.Key ]
              | _ -> () ]
    // Every field of an object broken at once: the reason then shows which is read first.
    let allBroken (path: JsonObject -> JsonObject) (names: string list) =
        [ for value in [ "[]"; "null"; "-1" ] ->
              edit (fun frame -> for name in names do if name <> "v" && name <> "type" then (path frame).[name] <- JsonNode.Parse value) ]
    [ yield frame
      yield! editsOf id ("extra" :: topNames)
      yield! allBroken id topNames
      for path, names in nested do
          yield! editsOf path names
          yield! allBroken path names
      yield frame.Replace("{\"v\":1,", "{\"v\":1,\"v\":1,")
      yield frame.Replace("{\"v\":1,", "{\"v\":2,")
      yield frame.Replace("{\"v\":1,", "{")
      yield frame.Replace("}", ",}")
      yield frame.Substring(0, frame.Length - 1) ]
    |> List.distinct

/// What a decoder said: the value written out again (so a frame read differently shows), or
/// the error's code and reason.
let private outcome (encode: 'T -> string) (result: Result<'T, Wire.DecodeError>) : string =
    match result with
    | Ok value -> "ok " + encode value
    | Result.Error error -> $"error {Wire.errorCodeName error.Code} {error.Reason}"

/// The four decoders on one frame, given as a string and as UTF-8 (which must agree).
let private decodeAll (frame: string) : string =
    let utf8 = ReadOnlyMemory(Encoding.UTF8.GetBytes frame)
    let viaString =
        [ outcome Wire.encodePeerMessage (Wire.decodePeerMessage frame)
          outcome Wire.encodeClientRequest (Wire.decodeClientRequest frame)
          outcome Wire.encodeServerReply (Wire.decodeServerReply frame)
          outcome Wire.encodeRoomMessage (Wire.decodeRoomMessage frame) ]
    let viaUtf8 =
        [ outcome Wire.encodePeerMessage (Wire.decodePeerMessageUtf8 utf8)
          outcome Wire.encodeClientRequest (Wire.decodeClientRequestUtf8 utf8)
          outcome Wire.encodeServerReply (Wire.decodeServerReplyUtf8 utf8)
          outcome Wire.encodeRoomMessage (Wire.decodeRoomMessageUtf8 utf8) ]
    Assert.Equal<string list>(viaString, viaUtf8)
    String.Join(" | ", viaString)

let ``hostile variants of every frame are accepted or refused, with the same reason, as before`` () =
    let frames = encodings |> List.collect (snd >> variants) |> List.distinct
    checkGolden "wire-decodings.txt.gz" [ for frame in frames -> $"{frame}\t{decodeAll frame}" ]

// ---------------------------------------------------------------------------------------------
// The samples cover every case, and the error codes are one list.

let private casesOf<'Union> (values: 'Union list) : Set<string> =
    let tagOf = Microsoft.FSharp.Reflection.FSharpValue.PreComputeUnionTagReader(typeof<'Union>)
    let cases = Microsoft.FSharp.Reflection.FSharpType.GetUnionCases(typeof<'Union>)
    values |> List.map (fun value -> cases.[tagOf (box value)].Name) |> Set.ofList

let private allCasesOf<'Union> () : Set<string> =
    Microsoft.FSharp.Reflection.FSharpType.GetUnionCases(typeof<'Union>) |> Array.map _.Name |> Set.ofArray

let ``the golden samples hold every case of every union`` () =
    Assert.Equal<Set<string>>(allCasesOf<PeerMessage> (), casesOf peerSamples)
    Assert.Equal<Set<string>>(allCasesOf<ClientRequest> (), casesOf clientSamples)
    Assert.Equal<Set<string>>(allCasesOf<ServerReply> (), casesOf serverSamples)

let ``every error code has one distinct name, which reads back as that code`` () =
    Assert.Equal<Set<string>>(allCasesOf<ErrorCode> (), casesOf ErrorCode.all)
    Assert.Equal(ErrorCode.names.Length, ErrorCode.names |> List.map snd |> List.distinct |> List.length)
    for code, name in ErrorCode.names do
        Assert.Equal(name, Wire.errorCodeName code)
        Assert.Equal(Some code, ErrorCode.tryParse name)
        match Wire.decodeServerReply $"{{\"v\":1,\"type\":\"error\",\"code\":\"{name}\",\"reason\":\"r\"}}" with
        | Ok(ErrorReply(decoded, "r")) -> Assert.Equal(code, decoded)
        | other -> failwith $"%A{other}"

let ``docs/PROTOCOL.md lists exactly the error codes`` () =
    let protocol = File.ReadAllText(Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "docs", "PROTOCOL.md"))
    let start = protocol.IndexOf "Error codes:"
    let paragraph = protocol.Substring(start, protocol.IndexOf("\n\n", start) - start)
    let listed =
        RegularExpressions.Regex.Matches(paragraph, "`([a-z-]+)`")
        |> Seq.map _.Groups.[1].Value
        |> Seq.filter (fun name -> not (name.StartsWith "--"))
        |> Set.ofSeq
    Assert.Equal<Set<string>>(ErrorCode.names |> List.map snd |> Set.ofList, listed)

[<Tests>]
let tests =
    testList "WireGolden" [
        testCase "every case of every union is encoded exactly as before"
            ``every case of every union is encoded exactly as before``
        testCase "hostile variants of every frame are accepted or refused, with the same reason, as before"
            ``hostile variants of every frame are accepted or refused, with the same reason, as before``
        testCase "the golden samples hold every case of every union"
            ``the golden samples hold every case of every union``
        testCase "every error code has one distinct name, which reads back as that code"
            ``every error code has one distinct name, which reads back as that code``
        testCase "docs/PROTOCOL.md lists exactly the error codes"
            ``docs/PROTOCOL.md lists exactly the error codes``
    ]
