/// The coordination sub-protocol as one step (spec/FormalChat.tla): the failure detector
/// (FailureDetector.fs) and the LCR election (Election.fs) over one Coordination. A step takes
/// one spec action and returns the new state, the ring messages it sends and what happened, as
/// events, so the node reacts to what happened instead of comparing states. Each event is
/// reported by the rule that causes it (the same predicates the transitions use), not found by
/// a diff.
module FormalChat.Protocol.Coordinator

/// One spec action of one node. Guards that live outside the Coordination (a quorum, the
/// listening period before an election) are the caller's.
type CoordinationAction =
    /// Spec: Tick(i), with K, the heartbeats a peer may miss before it is suspected.
    | Tick of suspectAfter: int
    /// Spec: RecvHeartbeat(i, j): the sender, and the epoch and leader its heartbeat carried.
    | RecvHeartbeat of from: NodeId * epoch: Epoch * leader: NodeId option
    /// Spec: RecvLeave(i, m).
    | RecvLeave of NodeId
    /// Spec: StartElection(i).
    | StartElection
    /// Spec: RecvElection(i, m).
    | RecvElection of ElectionMessage
    /// Spec: RecvLeader(i, m).
    | RecvLeader of LeaderMessage

/// What one step changed, in the order the node reacts to it: the cause of a view change
/// before the change, the view before the leader.
type CoordinationEvent =
    /// Tick: the peer missed K heartbeats in a row; it is suspected and leaves the view.
    | SuspicionRaised of NodeId
    /// RecvLeave: the peer said it is leaving; it leaves the view at once.
    | LeaveReceived of NodeId
    /// The view, and so the ring, changed: nodes gained by a heartbeat, lost by suspicion or leave.
    | ViewChanged of gained: Set<NodeId> * lost: Set<NodeId>
    /// StartElection: this node is the candidate of a new round, in this epoch.
    | ElectionStarted of Epoch
    /// This node now follows `leader` for `epoch` (its own candidacy came back, RecvLeader, or a
    /// heartbeat naming a newer leader); `previous` is the leader it followed before the step.
    | LeaderChanged of leader: NodeId * epoch: Epoch * previous: NodeId option

let private viewChanged (gained: Set<NodeId>) (lost: Set<NodeId>) : CoordinationEvent list =
    if gained.IsEmpty && lost.IsEmpty then [] else [ ViewChanged(gained, lost) ]

/// A leader named in a message or heartbeat becomes this node's when it is news.
let private leaderNews (leader: NodeId option) (epoch: Epoch) (state: Coordination) : CoordinationEvent list =
    match leader with
    | Some leader when Coordination.isLeaderNews epoch state -> [ LeaderChanged(leader, epoch, state.Leader) ]
    | _ -> []

let private tick (suspectAfter: int) (state: Coordination) =
    let suspected = FailureDetector.suspects suspectAfter state
    FailureDetector.tick suspectAfter state, [], [ for peer in suspected -> SuspicionRaised peer ] @ viewChanged Set.empty suspected

let private recvHeartbeat (from: NodeId) (epoch: Epoch) (leader: NodeId option) (state: Coordination) =
    if from = state.Self then
        state, [], []
    else
        let gained = if state.View.Contains from then Set.empty else Set.singleton from
        FailureDetector.recvHeartbeat from epoch leader state, [], viewChanged gained Set.empty @ leaderNews leader epoch state

let private recvLeave (from: NodeId) (state: Coordination) =
    let events = if from = state.Self || not (state.View.Contains from) then [] else [ LeaveReceived from; ViewChanged(Set.empty, Set.singleton from) ]
    FailureDetector.recvLeave from state, [], events

let private startElection (state: Coordination) =
    let next, sent = Election.startElection state
    next, sent, (if Election.needsElection state then [ ElectionStarted next.Epoch ] else [])

/// A node wins when its own candidacy comes back in a round not yet decided here.
let private recvElection (message: ElectionMessage) (state: Coordination) =
    let next, sent = Election.recvElection message state
    let won = if message.Candidate = state.Self then leaderNews (Some state.Self) message.Epoch state else []
    next, sent, won

let private recvLeader (message: LeaderMessage) (state: Coordination) =
    let next, sent = Election.recvLeader message state
    next, sent, (if message.Leader = state.Self then [] else leaderNews (Some message.Leader) message.Epoch state)

/// The one entry point of the sub-protocol: the new state, the ring messages to send (by id;
/// some may be to this node itself) and the events, in order.
let step (action: CoordinationAction) (state: Coordination) : Coordination * Sent list * CoordinationEvent list =
    match action with
    | Tick suspectAfter -> tick suspectAfter state
    | RecvHeartbeat(from, epoch, leader) -> recvHeartbeat from epoch leader state
    | RecvLeave from -> recvLeave from state
    | StartElection -> startElection state
    | RecvElection message -> recvElection message state
    | RecvLeader message -> recvLeader message state
