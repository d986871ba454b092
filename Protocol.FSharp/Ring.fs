/// The logical ring of live nodes ordered by id (spec: Succ in LCR.tla).
module FormalChat.Protocol.Ring

/// The next higher live id, wrapping around to the lowest; a node alone is its own successor.
let successor (view: Set<NodeId>) (self: NodeId) : NodeId =
    match view |> Seq.tryFind (fun id -> id > self) with
    | Some next -> next
    | None -> if Set.isEmpty view then self else Set.minElement view
