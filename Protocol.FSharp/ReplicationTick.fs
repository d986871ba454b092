/// The owner's replication duties each tick: a backup that fell behind gets the room's state
/// again, what can commit does, and missing messages are asked for again.
module FormalChat.Protocol.ReplicationTick

open FormalChat.Protocol.NodeState
open FormalChat.Protocol.RoomReplica

/// Every owned room: a backup that fell behind (a lost message) is sent the state again, and
/// what can commit does. Missing messages not yet received are asked for again, of the room's
/// owner now (the one asked may have died).
let replicateOwnedRooms (config: ProtocolConfig) (state: NodeState) : NodeState * Effect list =
    let resynced = state.Primaries |> Map.map (fun _ primary -> Replication.resyncIfStalled config.SuspectAfter primary)
    let stalled =
        [ for KeyValue(room, primary) in resynced do
              if primary.Synced.IsNone && state.Primaries[room].Synced.IsSome then
                  Log(Info, $"room {room}: the backup confirmed nothing new for {config.SuspectAfter} ticks; sending it the room's state again") ]
    let state = { state with Primaries = resynced }
    let owned = forEach replicate (List.ofSeq state.Primaries.Keys) (state, stalled)
    owned |> then' (fun state ->
        let stillMissing = state.FillsRequested |> Set.filter (fun room -> not (state.Primaries.ContainsKey room))
        { state with FillsRequested = stillMissing }, [ for room in stillMissing do yield! askForMissing room state ])

