/// Messages a node sends itself (it leads, or it is alone on the ring) wait in its inbox until
/// the step drains them, as etcd-raft does with local messages; any other message goes out.
module FormalChat.Protocol.Inbox

open FormalChat.Protocol.NodeState
open FormalChat.Protocol.RoomReplica

let private routeOne (message: Sent) (state: NodeState) : NodeState * Effect list =
    if message.To = self state then
        { state with Inbox = state.Inbox @ [ message.Message ] }, []
    else
        state, toPeer state message.To message.Message

/// What a sub-protocol sends by id: to this node into the inbox, to any other as a send.
let route (sent: Sent list) (state: NodeState) : NodeState * Effect list =
    forEach routeOne sent (state, [])

/// Messages a node sends itself can lead to more (a node alone on the ring: its election
/// message, then its leader announcement); far more than that many in one step is a bug.
let maxPerStep = 10_000

/// Handles the messages this node sent itself with `handle`, oldest first, until none is left.
let drain (handle: PeerMessage -> NodeState -> NodeState * Effect list) (state: NodeState) : NodeState * Effect list =
    if state.Inbox.IsEmpty then state, [] else
    let mutable state = state
    let effects = ResizeArray<Effect list>()
    let mutable handled = 0
    while not state.Inbox.IsEmpty && handled < maxPerStep do
        let message = state.Inbox.Head
        let after, more = handle message { state with Inbox = state.Inbox.Tail }
        state <- after
        effects.Add more
        handled <- handled + 1
    if not state.Inbox.IsEmpty then
        effects.Add [ Log(Warning, $"{state.Inbox.Length} message(s) this node sent itself dropped after {maxPerStep} in one step") ]
        state <- { state with Inbox = [] }
    state, List.concat effects
