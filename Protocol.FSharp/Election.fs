/// LeLann–Chang–Roberts leader election on the ring of live nodes (spec/LCR.tla, composed in
/// spec/FormalChat.tla). Candidates travel clockwise; a node forwards a higher candidate,
/// replaces a lower one with itself once per round, and wins when its own id comes back.
/// Every message carries the round's epoch so messages of older rounds are ignored.
module FormalChat.Protocol.Election

let private sendToSuccessor (state: Coordination) (message: PeerMessage) : Sent =
    { To = Ring.successor state.View state.Self; Message = message }

/// Spec: LeaderOk(i). The leader this node follows is the highest id in its view.
let leaderOk (state: Coordination) : bool =
    state.Leader = Some(Set.maxElement state.View)

/// Spec: the guard of StartElection(i). Nobody is leading that should be (start-up, the leader
/// was suspected, or a higher node joined) and this node is not already in a round.
let needsElection (state: Coordination) : bool =
    not state.Participant && not (leaderOk state)

/// Spec: StartElection(i). Opens a new round in the next epoch with this node as candidate.
let startElection (state: Coordination) : Coordination * Sent list =
    if not (needsElection state) then
        state, []
    else
        let epoch = state.Epoch + 1L
        let next = { state with Epoch = epoch; Participant = true; Leader = None }
        next, [ sendToSuccessor next (Election { Candidate = state.Self; Epoch = epoch }) ]

/// A message of an older round, or of a round this node already saw decided, changes nothing.
let private isStaleElection (message: ElectionMessage) (state: Coordination) : bool =
    not (Coordination.isLeaderNews message.Epoch state)

/// Spec: RecvElection(i, m).
let recvElection (message: ElectionMessage) (state: Coordination) : Coordination * Sent list =
    if isStaleElection message state then
        state, []
    else
        // A newer round supersedes whatever this node was doing.
        let current =
            if message.Epoch > state.Epoch then
                { state with Epoch = message.Epoch; Participant = false; Leader = None }
            else
                state
        if not (current.View.Contains message.Candidate) then
            // The candidate has left this node's view: its round can never come back to it, and
            // forwarding it would keep every node a participant of a round nobody can win. This
            // node stops taking part, so needsElection lets it start a round of its own.
            { current with Participant = false }, []
        elif message.Candidate > current.Self then
            { current with Participant = true }, [ sendToSuccessor current (Election message) ]
        elif message.Candidate < current.Self && not current.Participant then
            let replaced = { message with Candidate = current.Self }
            { current with Participant = true }, [ sendToSuccessor current (Election replaced) ]
        elif message.Candidate < current.Self then
            current, []
        else
            let won = { current with Participant = false; Leader = Some current.Self }
            won, [ sendToSuccessor won (LeaderAnnounced { Leader = current.Self; Epoch = message.Epoch }) ]

/// Spec: RecvLeader(i, m). Followers adopt the announced leader and pass the announcement on;
/// it stops when it is back at the leader.
let recvLeader (message: LeaderMessage) (state: Coordination) : Coordination * Sent list =
    if message.Leader = state.Self || not (Coordination.isLeaderNews message.Epoch state) then
        state, []
    else
        let following =
            { state with Epoch = message.Epoch; Leader = Some message.Leader; Participant = false }
        following, [ sendToSuccessor following (LeaderAnnounced message) ]
