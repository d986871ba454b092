/// Heartbeat failure detection (spec/FailureDetector.tla, composed in spec/FormalChat.tla).
/// One tick is one heartbeat interval: every live node sends a heartbeat per tick, so a peer
/// whose age reaches K has missed K heartbeats and is suspected.
module FormalChat.Protocol.FailureDetector

/// Spec: Suspects(i). The peers the next Tick removes: those whose age reaches `suspectAfter` with it.
let suspects (suspectAfter: int) (state: Coordination) : Set<NodeId> =
    state.Age |> Map.filter (fun _ age -> age + 1 >= suspectAfter) |> Map.keys |> Set.ofSeq

/// Spec: Tick(i). Ages every peer by one interval and removes from the view (and so from the
/// ring) each peer that has now missed `suspectAfter` heartbeats. A changed view abandons the
/// election round in progress, because its ring no longer exists.
let tick (suspectAfter: int) (state: Coordination) : Coordination =
    let aged = state.Age |> Map.map (fun _ age -> age + 1)
    let suspected = suspects suspectAfter state
    { state with
        Age = aged |> Map.filter (fun peer _ -> not (suspected.Contains peer))
        View = Set.difference state.View suspected
        Participant = state.Participant && suspected.IsEmpty }

/// Spec: RecvHeartbeat(i, j). A heartbeat proves `from` is alive: it joins the view if it was
/// unknown (a view change, so the running round is abandoned) and its age restarts at 0. A
/// heartbeat reporting a leader is news under the same rule as a leader announcement (a newer
/// epoch, or this epoch while no leader is known): that is how a late joiner learns the leader
/// of a round it never saw, and how a node whose announcement went round a different ring
/// (views disagreed during the round) still learns who won.
let recvHeartbeat (from: NodeId) (epoch: Epoch) (leader: NodeId option) (state: Coordination) : Coordination =
    if from = state.Self then
        state
    else
        let joined = not (state.View.Contains from)
        let seen =
            { state with
                View = state.View.Add from
                Age = state.Age.Add(from, 0)
                Participant = state.Participant && not joined }
        match leader with
        | Some _ when Coordination.isLeaderNews epoch seen ->
            { seen with Epoch = epoch; Leader = leader; Participant = false }
        | _ -> seen

/// Spec: RecvLeave(i, m). A node that leaves on purpose is removed at once, without waiting
/// for K missed heartbeats.
let recvLeave (from: NodeId) (state: Coordination) : Coordination =
    if from = state.Self || not (state.View.Contains from) then
        state
    else
        { state with
            View = state.View.Remove from
            Age = state.Age.Remove from
            Participant = false }
