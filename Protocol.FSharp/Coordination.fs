/// The part of a node's state that the TLA+ spec models (spec/FormalChat.tla, one row of each
/// per-node variable): what the failure detector believes and where the election stands.
namespace FormalChat.Protocol

type Coordination =
    { Self: NodeId
      /// Nodes believed live, Self included (spec: view[i]). The ring is this set ordered by id.
      View: Set<NodeId>
      /// Ticks since the last heartbeat of each peer in View, Self excluded (spec: age[i]).
      Age: Map<NodeId, int>
      /// The newest election round this node has taken part in or heard of (spec: epoch[i]).
      Epoch: Epoch
      /// Whether this node has sent or forwarded a candidate in the current round (spec: participant[i]).
      Participant: bool
      /// The leader this node follows; None while an election runs (spec: leader[i], 0 for none).
      Leader: NodeId option }

/// A ring message a transition sends: to a node id, never to an address (the shell resolves it).
type Sent = { To: NodeId; Message: PeerMessage }

module Coordination =
    /// Spec: Init. A node starts alone, in epoch 0, with no leader.
    let init (self: NodeId) : Coordination =
        { Self = self
          View = Set.singleton self
          Age = Map.empty
          Epoch = 0L
          Participant = false
          Leader = None }

    /// Spec: IsLeader(i). Only the leader decides placements and backups.
    let isLeader (state: Coordination) : bool = state.Leader = Some state.Self

    /// Spec: news of a leader (RecvLeader, and the leader a heartbeat reports): a newer epoch, or
    /// this epoch while no leader is known. Anything else is of a round already decided or past.
    let isLeaderNews (epoch: Epoch) (state: Coordination) : bool =
        epoch > state.Epoch || (epoch = state.Epoch && state.Leader.IsNone)

    /// Spec: a leader's decision, sent to every other node in its view.
    let announce (state: Coordination) (message: PeerMessage) : Sent list =
        [ for node in state.View do
              if node <> state.Self then { To = node; Message = message } ]

    /// Spec: TypeOK and the shape the functions rely on. Broken invariants fail loudly.
    let invariantViolations (state: Coordination) : string list =
        [ if not (state.View.Contains state.Self) then "view must contain self"
          if state.Age |> Map.exists (fun peer _ -> peer = state.Self || not (state.View.Contains peer)) then
              "age is kept only for peers in view"
          if state.View |> Set.exists (fun peer -> peer <> state.Self && not (state.Age.ContainsKey peer)) then
              "every peer in view has an age"
          if state.Age |> Map.exists (fun _ age -> age < 0) then "ages are never negative"
          if state.Epoch < 0L then "epochs are never negative"
          if state.Participant && state.Leader.IsSome then "a participant has no leader yet" ]
