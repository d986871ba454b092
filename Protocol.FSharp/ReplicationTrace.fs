/// Trace validation of replication (spec/TraceReplication.tla): after a step of a node, one line
/// per room the step touched, with the node's variables of spec/Replication.tla for that room
/// (history, replicas, primary, backups, LastOf(disk), missing) and the room's replication
/// messages the step received and sent. Which Replication.tla actions the step took is not
/// derived here: TLC finds them (TraceReplication lets the logged node take a few of its own
/// actions to reach the logged variables), so a change of how the F# functions are split or
/// called does not change this file. Pure: the shell adds the step counter and the clock, and
/// writes the lines to a file of their own (--trace-file PATH: PATH.replication).
module FormalChat.Protocol.ReplicationTrace

open FormalChat.Protocol.NodeState

/// The room a replication message is about, for the messages Replication.tla models.
let roomOf (message: PeerMessage) : RoomName option =
    match message with
    | RoomSequenced sequenced -> Some sequenced.Room
    | BackupAssigned(room, _)
    | ReplicaSynced(room, _, _, _)
    | ReplicaStored(room, _, _)
    | ReplicaAppended(room, _, _) -> Some room
    | _ -> None

let private assignmentKey (a: BackupAssignment) = $"{a.Backup}.{a.Owner}.{a.Epoch}.{a.Leader}.{a.Version}"

let private lastSeqOf (messages: RoomMessage list) = match List.tryLast messages with Some m -> m.Seq | None -> 0L

/// The same text at the sender and at the receiver: the trace merger puts a receipt after its send.
let messageKey (message: PeerMessage) : string =
    match message with
    | RoomSequenced m -> $"sequenced/{m.Seq}/{m.ClientMessageId}"
    | BackupAssigned(_, a) -> $"backup/{assignmentKey a}"
    | ReplicaSynced(_, a, committed, pending) ->
        $"sync/{assignmentKey a}/{lastSeqOf committed}/{committed.Length}/{lastSeqOf pending}/{pending.Length}"
    | ReplicaAppended(_, a, batch) -> $"append/{assignmentKey a}/{lastSeqOf batch}/{batch.Length}"
    | ReplicaStored(_, a, seq) -> $"stored/{assignmentKey a}/{seq}"
    | _ -> ""

let private json (text: string) = System.Text.Json.JsonSerializer.Serialize text

/// A message as the spec writes it: [seq, id].
let private messagesJson (messages: RoomMessage list) =
    messages |> List.map (fun m -> $"{{\"seq\":{m.Seq},\"id\":{m.ClientMessageId}}}") |> String.concat ","

let private replicaJson (room: RoomName) (state: NodeState) =
    let replica = RoomReplica.replicaOf room state
    let backup =
        match state.Backups.TryFind room with
        | Some a -> $"{{\"backup\":{a.Backup},\"owner\":{a.Owner},\"version\":{a.Version}}}"
        | None -> "{\"backup\":0,\"owner\":0,\"version\":0}"
    let primary =
        match replica.Primary with
        | Some p ->
            let synced = p.Synced |> Option.map (fun a -> a.Backup) |> Option.defaultValue 0
            let confirmed = p.Stored |> Option.defaultValue -1L
            $"\"owner\":true,\"pending\":[{messagesJson p.Pending.Messages}],\"synced\":{synced},\"confirmed\":{confirmed}"
        | None -> "\"owner\":false,\"pending\":[],\"synced\":0,\"confirmed\":-1"
    let history = replica.History.Recent |> List.rev
    let missing = if replica.AwaitingFill then "true" else "false"
    $"\"history\":[{messagesJson history}],\"stored\":[{messagesJson replica.Stored.Messages}],{primary},\"backup\":{backup},"
    + $"\"durable\":{replica.Durable},\"missing\":{missing}"

/// The step's trace lines, one per room whose replica or backup assignment changed or whose
/// replication messages the step received or sent. `step` is the node's local step counter,
/// `clock` a monotonic timestamp for the merger.
let linesOf (step: int64) (clock: int64) (event: Event) (before: NodeState) (after: NodeState) (effects: Effect list) : string list =
    let received =
        match event with
        | PeerMessageReceived message -> roomOf message |> Option.map (fun room -> room, messageKey message) |> Option.toList
        | _ -> []
    let sent =
        [ for effect in effects do
              match effect with
              | SendToPeer(peer, message) ->
                  match roomOf message with
                  | Some room -> room, (peer.Id, messageKey message)
                  | None -> ()
              | _ -> () ]
    let changed (room: RoomName) =
        RoomReplica.replicaOf room before <> RoomReplica.replicaOf room after
        || before.Backups.TryFind room <> after.Backups.TryFind room
    let rooms =
        [ yield! received |> List.map fst
          yield! sent |> List.map fst
          for room in Set.union (Set.ofSeq (Map.keys before.Placements)) (Set.ofSeq (Map.keys after.Placements)) do
              if changed room then room ]
        |> List.distinct
    [ for room in rooms do
          let receivedJson = received |> List.filter (fst >> (=) room) |> List.map (snd >> json) |> String.concat ","
          let sentJson =
              sent
              |> List.filter (fst >> (=) room)
              |> List.map (fun (_, (peer, key)) -> $"{{\"to\":{peer},\"key\":{json key}}}")
              |> String.concat ","
          $"{{\"node\":{after.Info.Id},\"step\":{step},\"clock\":{clock},\"room\":{json room.Value},\"received\":[{receivedJson}],\"sent\":[{sentJson}],"
          + replicaJson room after + "}" ]

/// For the shell's test-only faults (Node.CSharp/TestFault.cs): the same state with other
/// backup copies. F# records have no `with` in C#.
let withReplicas (replicas: Map<RoomName, Uncommitted>) (state: NodeState) : NodeState =
    { state with Replicas = replicas }
