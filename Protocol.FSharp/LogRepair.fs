/// Repair of a room log read back damaged in the middle (NodeState.Damaged): the gap is asked of
/// the peers until filled, then the log is rewritten whole.
module FormalChat.Protocol.LogRepair

open FormalChat.Protocol.NodeState

/// Every room whose log was damaged: while its history has a gap, every live peer is asked for
/// the messages after the last seq before it (any node answers from its committed copy, and
/// fillDamaged takes what is missing); once whole, the log is rewritten so the damage does not
/// come back at the next start. What is written but not committed (stored as the backup, pending
/// as the owner) is written again after the history.
let repairDamaged (state: NodeState) : NodeState * Effect list =
    let repair room (state: NodeState, effects: Effect list) =
        let history = historyOf room state
        match Rooms.firstGap history with
        | Some(before, _) -> state, effects @ [ for peer in livePeers state -> SendToPeer(peer, HistoryRequested(room, before, self state)) ]
        | None ->
            let uncommitted =
                (state.Replicas.TryFind room |> Option.map _.Messages |> Option.defaultValue [])
                @ (state.Primaries.TryFind room |> Option.map _.Pending.Messages |> Option.defaultValue [])
                |> List.filter (fun message -> message.Seq > history.LastSeq)
                |> List.distinctBy _.Seq
                |> List.sortBy _.Seq
            let messages = Rooms.last Rooms.historyCapacity history @ uncommitted
            let last = messages |> List.tryLast |> Option.map _.Seq |> Option.defaultValue 0L
            { state with Damaged = state.Damaged.Remove room; Durable = state.Durable.Add(room, last) },
            effects @ [ RewriteLog(room, messages); Log(Info, $"room {room}: the gap left by the damaged log is filled; rewrote the log ({messages.Length} messages)") ]
    state.Damaged |> Set.fold (fun acc room -> repair room acc) (state, [])

