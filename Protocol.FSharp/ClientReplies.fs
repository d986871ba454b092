/// Replies to this node's clients: to one, a refusal, to everyone here, and presence notices.
module FormalChat.Protocol.ClientReplies

open FormalChat.Protocol.Chat
open FormalChat.Protocol.NodeState

let reply client message = SendToClients(Set.singleton client, message)
let refuse client code reason = reply client (ErrorReply(code, reason))
let toEveryLocal (state: NodeState) message = SendToClients(namedClients state.Chat, message)

/// Presence notices ("alice joined") go to everyone while the lobby is small; in a crowd they
/// would be most of the traffic (n arrivals announced to n users), so there `/who` tells instead.
let presenceNoticeLimit = 100

let presenceExcept (excluded: ClientId option) (state: NodeState) (text: string) : Effect list =
    let everyone = namedClients state.Chat
    if everyone.Count > presenceNoticeLimit then []
    else [ SendToClients(excluded |> Option.fold (fun clients client -> Set.remove client clients) everyone, Notice text) ]

let presence state text = presenceExcept None state text
