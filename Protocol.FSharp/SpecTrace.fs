/// Trace validation (spec/TraceFormalChat.tla): the spec actions of spec/FormalChat.tla that one
/// step of a node took, derived from the event and the node's Coordination before and after it.
/// The shell writes them as NDJSON lines (--trace-file); TLC replays the merged lines of every
/// node against the spec. Pure: the shell adds the step counter and the clock.
///
/// One event can take several spec actions: a tick or a heartbeat can be followed by
/// StartElection (NodeCoordination.maybeStartElection), and a node alone in its view is its own successor, so
/// the messages it sends itself are received in the same step (Inbox.route). The derivation
/// replays the same F# transitions in the same order; only the guards that live outside the
/// Coordination (a quorum, the listening period before an election) are read off the result: an
/// election was started exactly when the epoch grew past what the first action left.
module FormalChat.Protocol.SpecTrace

open FormalChat.Protocol.NodeState

/// A ring message as the spec writes it: [type, to, id, epoch] (LCR.tla, FailureDetector.tla).
type SpecMessage =
    { Type: string
      To: NodeId
      Id: NodeId
      Epoch: Epoch }

/// One spec action: its name in FormalChat.tla, its parameters, the messages it sent and the
/// node's variables after it.
type SpecAction =
    { Action: string
      Node: NodeId
      /// The message received (RecvElection, RecvLeader, RecvLeave), or None.
      Received: SpecMessage option
      /// RecvHeartbeat: the sender and the epoch and leader (0 for none) its heartbeat carried.
      Heartbeat: (NodeId * Epoch * NodeId) option
      Sent: SpecMessage list
      After: Coordination }

let private leaderNumber (leader: NodeId option) = leader |> Option.defaultValue 0

let private specMessage (sent: Sent) : SpecMessage option =
    match sent.Message with
    | Election election -> Some { Type = "election"; To = sent.To; Id = election.Candidate; Epoch = election.Epoch }
    | LeaderAnnounced leader -> Some { Type = "leader"; To = sent.To; Id = leader.Leader; Epoch = leader.Epoch }
    | _ -> None

let private action name (after: Coordination) =
    { Action = name; Node = after.Self; Received = None; Heartbeat = None; Sent = []; After = after }

/// The messages a node sends itself are received at once, depth first (Node.step drains its inbox in the same step).
let rec private deliverLocally (state: Coordination) (sent: Sent list) : Coordination * SpecAction list =
    sent
    |> List.fold
        (fun (state: Coordination, actions) message ->
            if message.To <> state.Self then
                state, actions
            else
                let received = specMessage message
                let next, more, name =
                    match message.Message with
                    | Election election -> let next, more = Election.recvElection election state in next, more, "RecvElection"
                    | LeaderAnnounced leader -> let next, more = Election.recvLeader leader state in next, more, "RecvLeader"
                    | _ -> state, [], ""
                if name = "" then
                    state, actions
                else
                    let taken = { action name next with Received = received; Sent = List.choose specMessage more }
                    let final, chained = deliverLocally next more
                    final, actions @ [ taken ] @ chained)
        (state, [])

/// A transition and the self-deliveries that follow it, as one list of actions.
let private taking (name: string) (transition: Coordination -> Coordination * Sent list) (decorate: SpecAction -> SpecAction) (state: Coordination) =
    let next, sent = transition state
    let taken = decorate { action name next with Sent = List.choose specMessage sent }
    let final, chained = deliverLocally next sent
    final, taken :: chained

/// StartElection after a tick, a heartbeat or a leave, when the step's result shows one ran.
let private thenMaybeElection (after: Coordination) (state: Coordination, actions: SpecAction list) =
    if after.Epoch > state.Epoch && Election.needsElection state then
        let final, more = taking "StartElection" Election.startElection id state
        final, actions @ more
    else
        state, actions

/// The spec actions one step took, in order. The last one carries the real state after the
/// step, not the replayed one: if the two differ the node did something the F# functions do
/// not, and TLC must see it. A change no action explains is reported as "Unexplained", which
/// no spec action matches.
let actionsOf (suspectAfter: int) (event: Event) (before: Coordination) (after: Coordination) : SpecAction list =
    let self = before.Self
    let replayed =
        match event with
        | Ticked ->
            taking "Tick" (fun c -> FailureDetector.tick suspectAfter c, []) id before
            |> thenMaybeElection after |> snd
        | PeerMessageReceived(HeartbeatSent heartbeat) when heartbeat.From.Id <> self ->
            let from = heartbeat.From.Id
            taking "RecvHeartbeat"
                (fun c -> FailureDetector.recvHeartbeat from heartbeat.Epoch heartbeat.Leader c, [])
                (fun a -> { a with Heartbeat = Some(from, heartbeat.Epoch, leaderNumber heartbeat.Leader) })
                before
            |> thenMaybeElection after |> snd
        | PeerMessageReceived(LeaveAnnounced node) ->
            let received = { Type = "leave"; To = self; Id = node; Epoch = 0L }
            taking "RecvLeave" (fun c -> FailureDetector.recvLeave node c, []) (fun a -> { a with Received = Some received }) before
            |> thenMaybeElection after |> snd
        | PeerMessageReceived(Election election) ->
            let received = { Type = "election"; To = self; Id = election.Candidate; Epoch = election.Epoch }
            taking "RecvElection" (Election.recvElection election) (fun a -> { a with Received = Some received }) before |> snd
        | PeerMessageReceived(LeaderAnnounced leader) ->
            let received = { Type = "leader"; To = self; Id = leader.Leader; Epoch = leader.Epoch }
            taking "RecvLeader" (Election.recvLeader leader) (fun a -> { a with Received = Some received }) before |> snd
        | ShutdownRequested ->
            // Spec: Leave(i) tells every peer in the view (Node.shutdown sends to the live peers).
            let told = [ for peer in before.View.Remove self -> { Type = "leave"; To = peer; Id = self; Epoch = 0L } ]
            [ { action "Leave" before with Sent = told } ]
        | _ -> []
    match List.rev replayed with
    | last :: earlier -> List.rev ({ last with After = after } :: earlier)
    | [] when after <> before -> [ action "Unexplained" after ]
    | [] -> []

// ---------------------------------------------------------------------------------------------
// NDJSON: one line per action, numbers and short ASCII names only, so no escaping is needed.

let private messageJson (message: SpecMessage) =
    $"{{\"type\":\"{message.Type}\",\"to\":{message.To},\"id\":{message.Id},\"epoch\":{message.Epoch}}}"

let private noMessage = "{\"type\":\"none\",\"to\":0,\"id\":0,\"epoch\":0,\"leader\":0}"

/// The trace line of one action. `step` is the node's local step counter (one per event),
/// `clock` a monotonic timestamp the merger uses to break ties between causally unordered steps.
let toJsonLine (step: int64) (clock: int64) (taken: SpecAction) : string =
    let state = taken.After
    let received =
        match taken.Received, taken.Heartbeat with
        | Some message, _ -> (messageJson message).TrimEnd('}') + ",\"leader\":0}"
        | None, Some(from, epoch, leader) ->
            $"{{\"type\":\"heartbeat\",\"to\":{state.Self},\"id\":{from},\"epoch\":{epoch},\"leader\":{leader}}}"
        | None, None -> noMessage
    let sent = taken.Sent |> List.map messageJson |> String.concat ","
    let view = state.View |> Seq.map string |> String.concat ","
    let age = state.Age |> Seq.map (fun (KeyValue(peer, age)) -> $"[{peer},{age}]") |> String.concat ","
    let participant = if state.Participant then "true" else "false"
    $"{{\"node\":{taken.Node},\"step\":{step},\"clock\":{clock},\"action\":\"{taken.Action}\",\"msg\":{received},\"sent\":[{sent}],"
    + $"\"view\":[{view}],\"age\":[{age}],\"epoch\":{state.Epoch},\"participant\":{participant},\"leader\":{leaderNumber state.Leader}}}"

/// For the shell's test-only faults (Node.CSharp/TestFault.cs): the same state with another
/// Coordination. F# records have no `with` in C#.
let withCoordination (coordination: Coordination) (state: NodeState) : NodeState =
    { state with Coordination = coordination }
