/// Trace validation of placement (spec/TracePlacement.tla): after a step of a node that touched
/// placement (its placements or backup assignments changed, or it received or sent a placement
/// message), one line with the node's variables of spec/Placement.tla (placements, and the view,
/// leader and epoch its placement actions read), the client loads its LeastLoaded reads, its
/// backups (a promotion reads them), and the placement messages the step received and sent, as
/// Placement.tla's records. Which actions the step took is not derived here: TLC finds them
/// (TracePlacement lets the logged node take a few of its own actions per line). Pure: the shell
/// adds the step counter and the clock, and writes the lines to PATH.placement (--trace-file PATH).
module FormalChat.Protocol.PlacementTrace

open FormalChat.Protocol.NodeState

let private json (text: string) = System.Text.Json.JsonSerializer.Serialize text

let private assignmentFields (a: Assignment) =
    $"\"owner\":{a.Owner},\"epoch\":{a.Epoch},\"leader\":{a.Leader},\"version\":{a.Version}"

let private assignmentJson (a: Assignment) = $"{{{assignmentFields a}}}"

/// A placement message to `receiver` as Placement.tla writes it (PlaceMessage, PlacedMessage),
/// field for field the same text at the sender and the receiver: the merger matches the two.
let messageJson (receiver: NodeId) (message: PeerMessage) : string option =
    match message with
    | PlacementRequested(room, requester) ->
        Some $"{{\"type\":\"place\",\"to\":{receiver},\"room\":{json room},\"requester\":{requester}}}"
    | RoomAssigned(room, placement) ->
        Some $"{{\"type\":\"placed\",\"to\":{receiver},\"room\":{json room},\"assignment\":{assignmentJson placement}}}"
    | _ -> None

/// The step's trace line, if it touched placement. `step` is the node's local step counter,
/// `clock` a monotonic timestamp for the merger.
let linesOf (step: int64) (clock: int64) (event: Event) (before: NodeState) (after: NodeState) (effects: Effect list) : string list =
    let self = after.Info.Id
    let received =
        match event with
        | PeerMessageReceived message -> messageJson self message |> Option.toList
        | _ -> []
    let sent =
        effects |> List.choose (function SendToPeer(peer, message) -> messageJson peer.Id message | _ -> None)
    if received.IsEmpty && sent.IsEmpty && before.Placements = after.Placements && before.Backups = after.Backups then
        []
    else
        let coordination = after.Coordination
        let view = coordination.View |> Seq.map string |> String.concat ","
        let clients = coordination.View |> Seq.map (fun node -> $"[{node},{clientsOn after node}]") |> String.concat ","
        let placements =
            after.Placements
            |> Seq.map (fun (KeyValue(room, a)) -> $"{{\"room\":{json room},{assignmentFields a}}}")
            |> String.concat ","
        let backups =
            after.Backups
            |> Seq.map (fun (KeyValue(room, b)) -> $"{{\"room\":{json room},\"backup\":{b.Backup},\"owner\":{b.Owner}}}")
            |> String.concat ","
        let leader = coordination.Leader |> Option.defaultValue 0
        let received = String.concat "," received
        let sent = String.concat "," sent
        [ $"{{\"node\":{self},\"step\":{step},\"clock\":{clock},\"received\":[{received}],\"sent\":[{sent}],"
          + $"\"view\":[{view}],\"leader\":{leader},\"epoch\":{coordination.Epoch},\"clients\":[{clients}],"
          + $"\"placements\":[{placements}],\"backups\":[{backups}]}}" ]

/// For the shell's test-only faults (Node.CSharp/TestFault.cs): the same state with other
/// placements. F# records have no `with` in C#.
let withPlacements (placements: Placement.Placements) (state: NodeState) : NodeState =
    { state with Placements = placements }
