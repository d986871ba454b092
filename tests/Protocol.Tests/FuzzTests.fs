/// Fuzzing the two doors of a node (issue 11): random and mutated client and peer frames go
/// through the UTF-8 decoders, and whatever decodes goes through Node.step on a node that has
/// peers, a leader, placed rooms with a backup and users. Nothing may throw. Mutations start
/// from valid frames, because random bytes alone rarely get past the JSON parser: bits are
/// flipped, bytes inserted, deleted and repeated, frames cut and spliced, and fields given
/// hostile values or grafted in from other frames.
module FormalChat.Protocol.Tests.FuzzTests

open System
open System.Diagnostics
open System.Text
open System.Text.Json.Nodes
open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FsCheck
open FsCheck.FSharp

let private config = { ProtocolConfig.defaults with SuspectAfter = 3; Rebalance = None }

let private infoOf (id: NodeId) : NodeInfo = Simulation.Nodes.infoOf id

// ---------------------------------------------------------------------------------------------
// Where the frames start: valid frames of every kind, naming the nodes, rooms and users the
// fuzzed node knows, so a mutation lands on code that does something.

let private message (seq: int64) : RoomMessage =
    { Room = Rooms.lobby; Seq = seq; From = Nick "alice"; FromNode = 1; Text = $"line {seq}"; ClientMessageId = seq }

let private backup : BackupAssignment = { Backup = 2; Owner = 1; Epoch = 1L; Leader = 3; Version = 1 }

let private knownUser nick node : KnownUser =
    { User = { Nick = Nick nick; Node = node; Rooms = [ Rooms.lobby; (RoomName "#dev") ] }; Session = $"session-{nick}" }

let private validPeerMessages : PeerMessage list =
    [ HeartbeatSent { From = infoOf 2; Epoch = 1L; Leader = Some 3; Load = Load.zero; Known = [ infoOf 1; infoOf 3; infoOf 4 ] }
      Election { Candidate = 3; Epoch = 2L }
      LeaderAnnounced { Leader = 3; Epoch = 1L }
      LeaveAnnounced 2
      PrivateForwarded { From = Nick "dave"; FromNode = 2; To = Nick "alice"; Text = "psst" }
      UserJoined(knownUser "dave" 2, None)
      UserLeft(Nick "bob", 1)
      MemberJoined((RoomName "#dev"), Nick "dave")
      MemberLeft(Rooms.lobby, Nick "alice")
      UsersListed(2, [ knownUser "dave" 2; knownUser "alice" 2 ])
      UsersRequested 3
      PlacementRequested((RoomName "#dev"), 2)
      RoomAssigned((RoomName "#dev"), { Owner = 2; Epoch = 1L; Leader = 3; Version = 2; LastSeq = 4L })
      RoomPosted { Room = Rooms.lobby; From = Nick "dave"; FromNode = 2; Text = "hello"; ClientMessageId = 5L }
      RoomSequenced(message 4L)
      BackupAssigned(Rooms.lobby, backup)
      ReplicaSynced(Rooms.lobby, backup, [ message 1L; message 2L ], [ message 3L ])
      ReplicaAppended(Rooms.lobby, backup, [ message 4L; message 5L ])
      ReplicaStored(Rooms.lobby, backup, 3L)
      HistoryRequested(Rooms.lobby, 1L, 2)
      HistoryShared(Rooms.lobby, [ message 1L; message 2L; message 3L ]) ]

let private validClientRequests : ClientRequest list =
    [ Hello { Nick = "erin"; Session = None; Resume = []; Password = None }
      Hello { Nick = "alice"; Session = Some "session-alice"; Resume = [ Rooms.lobby.Value, 1L; "#dev", 0L ]; Password = None }
      Say(Rooms.lobby.Value, "hi all", 7L)
      Say("#dev", "hi dev", 0L)
      Whisper("bob", "psst")
      Join "#dev"
      Join "#new"
      Leave "#dev"
      Rooms
      Who None
      Who(Some Rooms.lobby.Value)
      Status
      Quit ]

let private peerSeeds = validPeerMessages |> List.map Wire.encodePeerMessage |> Array.ofList
let private clientSeeds = validClientRequests |> List.map Wire.encodeClientRequest |> Array.ofList

/// Values that have broken parsers and nodes before: edges of int32 and int64, of the peer
/// ranges (2^53, Wire.maxSeq) and of Node.maxEpochLead (2^20), 2^62, a non-canonical
/// room, fractions, wrong types, empty and long text, a NUL, and this node's own id.
let private hostileValues =
    [| "0"; "-1"; "1"; "2"; "3"; "99"; "2147483647"; "-2147483648"; "2147483648"; "9223372036854775807"
       "-9223372036854775808"; "9007199254740992"; "9007199254740993"; "4611686018427387904"; "1048577"; "1e3"; "1.5"; "null"; "true"; "[]"; "{}"; "[1,2]"; "\"\""; "\"#lobby\""
       "\"#Lobby\""; "\"#dev\""; "\"lobby\""; "\"#../x\""; "\"alice\""; "\"bob\""; "\"\\u0000\""
       $"\"{String('x', 2000)}\""; "{\"backup\":2,\"owner\":1,\"epoch\":1,\"version\":1}"
       "{\"room\":\"#lobby\",\"seq\":2,\"from\":\"a\",\"fromNode\":1,\"text\":\"t\",\"id\":1}"
       "{\"id\":9,\"client\":\"127.0.0.1:5009\",\"peer\":\"127.0.0.1:6009\"}" |]

// ---------------------------------------------------------------------------------------------
// Mutations.

type Mutation =
    | FlipBit of position: int * bit: int
    | InsertByte of position: int * value: byte
    | DeleteBytes of position: int * count: int
    | RepeatBytes of position: int * count: int
    | CutAt of position: int
    /// The start of this frame, then the rest of another from some point on.
    | SpliceWith of other: int * position: int * otherPosition: int
    /// One field (by index among all fields of the frame) given one of the hostile values.
    | SetField of field: int * value: int
    /// A field of another frame added, or replacing the field of that name.
    | GraftField of other: int * field: int

let private at (bytes: byte array) (position: int) = if bytes.Length = 0 then 0 else abs (position % (bytes.Length + 1))

/// Every object in a frame, the frame itself first, with its field names.
let rec private objectsOf (node: JsonNode | null) : JsonObject list =
    match node with
    | :? JsonObject as inner -> inner :: [ for property in inner do yield! objectsOf property.Value ]
    | :? JsonArray as items -> [ for item in items do yield! objectsOf item ]
    | _ -> []

let private withFields (bytes: byte array) (change: JsonObject list -> unit) : byte array =
    // A frame the byte mutations already broke has no fields to change; it stays as it is.
    try
        match JsonNode.Parse(ReadOnlySpan bytes) with
        | null -> bytes
        | root ->
            change (objectsOf root)
            Encoding.UTF8.GetBytes(root.ToJsonString())
    with _ -> bytes

let private fieldsOf (objects: JsonObject list) = [| for inner in objects do for property in inner -> inner, property.Key |]

let private mutate (seeds: string array) (bytes: byte array) (mutation: Mutation) : byte array =
    match mutation with
    | FlipBit(position, bit) when bytes.Length > 0 ->
        let copy = Array.copy bytes
        let index = abs (position % bytes.Length)
        copy.[index] <- copy.[index] ^^^ (1uy <<< (abs bit % 8))
        copy
    | FlipBit _ -> bytes
    | InsertByte(position, value) ->
        let index = at bytes position
        Array.concat [ bytes.[.. index - 1]; [| value |]; bytes.[index..] ]
    | DeleteBytes(position, count) ->
        let index = at bytes position
        Array.append bytes.[.. index - 1] bytes.[min bytes.Length (index + abs count % 8) ..]
    | RepeatBytes(position, count) ->
        let index = at bytes position
        let piece = bytes.[index .. min (bytes.Length - 1) (index + abs count % 16)]
        Array.concat [ bytes.[.. index - 1]; piece; piece; bytes.[index..] ]
    | CutAt position -> bytes.[.. at bytes position - 1]
    | SpliceWith(other, position, otherPosition) ->
        let otherBytes = Encoding.UTF8.GetBytes seeds.[abs other % seeds.Length]
        Array.append bytes.[.. at bytes position - 1] otherBytes.[at otherBytes otherPosition ..]
    | SetField(field, value) ->
        withFields bytes (fun objects ->
            let fields = fieldsOf objects
            if fields.Length > 0 then
                let inner, name = fields.[abs field % fields.Length]
                inner.[name] <- JsonNode.Parse(hostileValues.[abs value % hostileValues.Length]))
    | GraftField(other, field) ->
        let donor = objectsOf (JsonNode.Parse(seeds.[abs other % seeds.Length])) |> fieldsOf
        withFields bytes (fun objects ->
            match objects with
            | target :: _ when donor.Length > 0 ->
                let source, name = donor.[abs field % donor.Length]
                target.[name] <- (match source.[name] with null -> null | value -> value.DeepClone())
            | _ -> ())

let private mutationGen : Gen<Mutation> =
    let anyInt = Gen.choose (0, Int32.MaxValue)
    Gen.oneof
        [ Gen.map2 (fun p b -> FlipBit(p, b)) anyInt anyInt
          Gen.map2 (fun p v -> InsertByte(p, v)) anyInt (Gen.elements (Encoding.UTF8.GetBytes "{}[]\",:\\0-9e.nt \u0000\xff" |> List.ofArray))
          Gen.map2 (fun p c -> DeleteBytes(p, c)) anyInt anyInt
          Gen.map2 (fun p c -> RepeatBytes(p, c)) anyInt anyInt
          Gen.map CutAt anyInt
          Gen.map3 (fun o p q -> SpliceWith(o, p, q)) anyInt anyInt anyInt
          Gen.map2 (fun f v -> SetField(f, v)) anyInt anyInt
          Gen.map2 (fun f v -> SetField(f, v)) anyInt anyInt
          Gen.map2 (fun o f -> GraftField(o, f)) anyInt anyInt ]

/// A frame: a valid seed with 0–4 mutations, or (one time in ten) bytes at random.
let private frameGen (seeds: string array) : Gen<byte array> =
    Gen.frequency
        [ 9,
          gen {
              let! seed = Gen.elements seeds
              let! mutations = Gen.choose (0, 4) |> Gen.bind (fun count -> Gen.listOfLength count mutationGen)
              return mutations |> List.fold (mutate seeds) (Encoding.UTF8.GetBytes seed)
          }
          1, Gen.choose (0, 64) |> Gen.bind (fun length -> Gen.arrayOfLength length (Gen.choose (0, 255) |> Gen.map byte)) ]

// ---------------------------------------------------------------------------------------------
// The node the frames hit.

let private run (state: NodeState) (events: Event list) : NodeState =
    events |> List.fold (fun state event -> fst (Node.step config state event)) state

/// Node 1: peers 2 and 3, leader 3, owner of #lobby with node 2 as its confirmed backup, #dev on
/// node 2, three users who said hello (alice, bob, carol) and one connection that did not.
let private fuzzedNode : NodeState =
    let heartbeat id = PeerMessageReceived(HeartbeatSent { From = infoOf id; Epoch = 1L; Leader = Some 3; Load = Load.zero; Known = [] })
    let connect client nick =
        [ ClientConnected(client, Simulation.Nodes.sessionOf client)
          ClientRequested(client, Hello { Nick = nick; Session = None; Resume = []; Password = None }) ]
    run
        (NodeState.init (infoOf 1))
        [ heartbeat 2
          heartbeat 3
          PeerMessageReceived(LeaderAnnounced { Leader = 3; Epoch = 1L })
          PeerMessageReceived(RoomAssigned(Rooms.lobby, { Owner = 1; Epoch = 1L; Leader = 3; Version = 1; LastSeq = 0L }))
          PeerMessageReceived(RoomAssigned((RoomName "#dev"), { Owner = 2; Epoch = 1L; Leader = 3; Version = 1; LastSeq = 0L }))
          PeerMessageReceived(BackupAssigned(Rooms.lobby, backup))
          PeerMessageReceived(ReplicaStored(Rooms.lobby, backup, 0L))
          yield! connect 1L "alice"
          yield! connect 2L "bob"
          yield! connect 3L "carol"
          ClientConnected(4L, Simulation.Nodes.sessionOf 4L)
          ClientRequested(1L, Say(Rooms.lobby.Value, "first", 1L))
          ClientRequested(1L, Join "#dev")
          Ticked ]

/// Frames from one peer link and from clients 1–4, in one run: whatever decodes is stepped,
/// with a tick every 50 frames so timers run too. Returns how many frames decoded.
let private feed (peerFrames: byte array array) (clientFrames: (int64 * byte array) array) : int =
    let mutable state = fuzzedNode
    let mutable decoded = 0
    let step event = state <- fst (Node.step config state event)
    for index in 0 .. max peerFrames.Length clientFrames.Length - 1 do
        if index < peerFrames.Length then
            match Wire.decodePeerMessageUtf8(ReadOnlyMemory peerFrames.[index]) with
            | Ok message ->
                decoded <- decoded + 1
                step (PeerMessageReceived message)
            | Result.Error error -> if String.IsNullOrWhiteSpace error.Reason then failwith "a refusal without a reason"
        if index < clientFrames.Length then
            let client, bytes = clientFrames.[index]
            match Wire.decodeClientRequestUtf8(ReadOnlyMemory bytes) with
            | Ok request ->
                decoded <- decoded + 1
                step (ClientRequested(client, request))
            | Result.Error error -> if String.IsNullOrWhiteSpace error.Reason then failwith "a refusal without a reason"
        if index % 50 = 49 then step Ticked
    decoded

/// Per FsCheck case: this many peer frames and as many client frames, on one fresh node.
let framesPerSide = 250
let cases = 200

let ``property: no client or peer frame, however mangled, makes the decoders or Node.step throw`` () =
    let caseGen =
        Gen.map2
            (fun peer client -> peer, client)
            (Gen.arrayOfLength framesPerSide (frameGen peerSeeds))
            (Gen.arrayOfLength framesPerSide (Gen.map2 (fun client frame -> int64 client, frame) (Gen.choose (1, 4)) (frameGen clientSeeds)))
    let mutable frames = 0
    let mutable decoded = 0
    let clock = Stopwatch.StartNew()
    let property (peer: byte array array, client: (int64 * byte array) array) =
        frames <- frames + peer.Length + client.Length
        decoded <- decoded + feed peer client
    Check.One(Config.QuickThrowOnFailure.WithMaxTest(cases).WithQuietOnSuccess(true), Prop.forAll (Arb.fromGen caseGen) property)
    // The CI budget (issue 11): at least 100,000 frames a run.
    if frames < 100_000 then failwith $"only {frames} frames were fuzzed"
    printfn $"fuzz: {frames} frames ({decoded} decoded and stepped) in {clock.Elapsed.TotalSeconds:F1} s, 0 exceptions"

[<Tests>]
let tests =
    testList "Fuzz" [
        testCase "property: no client or peer frame, however mangled, makes the decoders or Node.step throw"
            ``property: no client or peer frame, however mangled, makes the decoders or Node.step throw``
    ]
