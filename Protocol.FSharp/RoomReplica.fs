/// A node's rooms: the replica rules of Replication.fs applied to the node's state (onReplica,
/// carryOut), the owner's sequencing, the backup's side, taking a room over, and the
/// acknowledgement of a client's post (acknowledgePost). Node.fs routes room traffic here.
module FormalChat.Protocol.RoomReplica

open FormalChat.Protocol.Chat
open FormalChat.Protocol.NodeState

// ---------------------------------------------------------------------------------------------
// Effects on peers, and threading a step's state through several changes.

let toEveryPeer (state: NodeState) message = [ for info in livePeers state -> SendToPeer(info, message) ]

/// A node this one has no address for (never heard of, or named only by a frame) gets nothing
/// and the log says so: a lookup must never take the node down.
let private noAddress (node: NodeId) (dropped: int) =
    Log(Warning, $"no address for node {node}; dropped {dropped} message(s)")

/// Every message to one node by id goes through here or toPeer.
let toPeerAll (state: NodeState) (node: NodeId) (messages: PeerMessage list) : Effect list =
    match state.Peers.TryGetValue node with
    | true, peer -> [ for message in messages -> SendToPeer(peer.Info, message) ]
    | _ -> [ noAddress node messages.Length ]

/// One message (a post, a confirmation: one per message on the hot path, so no list of one).
let toPeer (state: NodeState) (node: NodeId) (message: PeerMessage) : Effect list =
    match state.Peers.TryGetValue node with
    | true, peer -> [ SendToPeer(peer.Info, message) ]
    | _ -> [ noAddress node 1 ]

let then' (next: NodeState -> NodeState * Effect list) (state: NodeState, effects: Effect list) =
    let state, more = next state
    state, effects @ more

/// `next` for each item in turn, threading the state, with the effects in order. They are joined
/// once at the end, from the last list back: appending as it goes (then' in a fold) costs the
/// square of the number of items, and under load that is thousands of posts or messages in one
/// step. The last non-empty list is kept as it is, and the ones before it are copied in front:
/// one step's few effects (an owner's post) cost no buffer.
let forEach (next: 'T -> NodeState -> NodeState * Effect list) (items: 'T seq) (state: NodeState, effects: Effect list) =
    let mutable state = state
    // Newest first: each item's effects, the non-empty ones.
    let mutable produced = if effects.IsEmpty then [] else [ effects ]
    match items with
    | :? ('T list) as items ->
        for item in items do
            let after, more = next item state
            state <- after
            if not more.IsEmpty then produced <- more :: produced
    | _ ->
        for item in items do
            let after, more = next item state
            state <- after
            if not more.IsEmpty then produced <- more :: produced
    match produced with
    | [] -> state, []
    | last :: before ->
        let mutable all = last
        for earlier in before do all <- earlier @ all
        state, all

// ---------------------------------------------------------------------------------------------
// Rooms: the replica rules (Replication.fs) applied to this node's state, and their outputs
// turned into effects.

/// The acknowledgement of a client's post: the post's sequenced message has come back to the
/// node the client posted through (committed by the owner, so its backup holds it), and the post
/// stops waiting there; the client sees the message itself, with its number, as its answer. A
/// post waiting here is done once its message is known here: as it arrives, or already in the
/// history (a retry of a message sequenced before). Nicknames are unique, so a sender and a
/// client message id name one message, whichever node the retry went through; without an id (0)
/// the text and the sender's node must match too.
let private acknowledgedIn (unconfirmed: Map<RoomName, WaitingPosts>) (message: RoomMessage) : Map<RoomName, WaitingPosts> =
    match unconfirmed.TryGetValue message.Room with
    | true, waiting ->
        match WaitingPosts.tryRemoveAnswered message waiting with
        | Some waiting -> unconfirmed.Add(message.Room, waiting)
        | None -> unconfirmed
    | _ -> unconfirmed

let private acknowledged (message: RoomMessage) (state: NodeState) : Map<RoomName, WaitingPosts> = acknowledgedIn state.Unconfirmed message

let acknowledgePost (message: RoomMessage) (state: NodeState) : NodeState =
    let unconfirmed = acknowledged message state
    if LanguagePrimitives.PhysicalEquality unconfirmed state.Unconfirmed then state else { state with Unconfirmed = unconfirmed }

/// The accounts room has no members; the client that registered, if it is here, is told.
let private accountCommitted (message: RoomMessage) (state: NodeState) : Effect list =
    match state.Chat.LocalNicks.TryFind message.From with
    | Some client when message.FromNode = self state -> [ SendToClients(Set.singleton client, Notice(Accounts.registered message.From)) ]
    | _ -> []

/// The room's members here that see its messages: all but those still waiting for its history.
let showingTo (room: RoomName) (state: NodeState) : Set<ClientId> =
    match state.CatchingUp.TryFind room with
    | None -> localMembers room state.Chat
    | Some waiting -> localMembers room state.Chat |> Set.filter (fun client -> not (waiting.ContainsKey client))

/// A committed message goes to the room's members here, unless they have been shown its number;
/// the waiting posts become `unconfirmed` in the same copy of the state.
let private showWith (unconfirmed: Map<RoomName, WaitingPosts>) (message: RoomMessage) (state: NodeState) : NodeState * Effect list =
    let shown =
        match state.Shown.TryGetValue message.Room with
        | true, seq -> seq
        | _ -> 0L
    if message.Seq <= shown then
        (if LanguagePrimitives.PhysicalEquality unconfirmed state.Unconfirmed then state else { state with Unconfirmed = unconfirmed }), []
    else
        let state = { state with Unconfirmed = unconfirmed; Shown = state.Shown.Add(message.Room, message.Seq) }
        if Accounts.isAccountsRoom message.Room then state, accountCommitted message state
        else state, [ SendToClients(showingTo message.Room state, Message message) ]

/// A committed message goes to the room's members here, unless they have been shown its number.
let show (message: RoomMessage) (state: NodeState) : NodeState * Effect list = showWith state.Unconfirmed message state

/// Spec: Interested(o), at this node, the owner: where a committed message goes. The node the
/// post came through counts as a member node: the post waits there for this message (its
/// acknowledgement), also when the sender has since left the room or disconnected. The accounts
/// room has no members but every node checks passwords against it: it goes to every node.
let interestedPeers (message: RoomMessage) (state: NodeState) : NodeInfo list =
    // A node alone has nobody to send to: no sets built per committed message.
    if state.Peers.IsEmpty then []
    elif Accounts.isAccountsRoom message.Room then livePeers state
    else
        // Tested node by node, in the order of ids as the set would be: no sets per message.
        let members = state.Chat.MemberNodes.TryFind message.Room |> Option.defaultValue Map.empty
        let isMemberNode node = node = message.FromNode || members.ContainsKey node
        let backup = state.Backups.TryFind message.Room
        // A fold from the highest id down builds the list in order, with no enumerator.
        (state.Peers, [])
        ||> Map.foldBack (fun node peer interested ->
            if Replication.isInterested (self state) isMemberNode backup state.Coordination node then peer.Info :: interested else interested)

/// Asks the room's live owner for the committed messages after `last`.
let private askForMissingAfter (room: RoomName) (last: int64) (state: NodeState) : Effect list =
    match state.Placements.TryFind room with
    | Some placement when placement.Owner <> self state && state.Coordination.View.Contains placement.Owner ->
        toPeer state placement.Owner (HistoryRequested(room, last, self state))
    | _ -> []

/// Asks the room's live owner for the committed messages after the last one this node has.
let askForMissing (room: RoomName) (state: NodeState) : Effect list = askForMissingAfter room (historyOf room state).LastSeq state

/// What this node holds of a room, as the replica rules see it.
let replicaOf (room: RoomName) (state: NodeState) : Replication.Replica =
    { History = historyOf room state
      Stored = (match state.Replicas.TryGetValue room with | true, stored -> stored | _ -> Uncommitted.empty)
      Primary = state.Primaries.TryFind room
      Durable = (match state.Durable.TryGetValue room with | true, seq -> seq | _ -> 0L)
      AwaitingFill = state.FillsRequested.Contains room }

/// The replica back into the state, each map touched only where the replica changed it, in one
/// copy of the state (a post passes here once or twice), which also counts `sequenced` messages
/// towards the load.
let private replicaAndShownInto
    (room: RoomName)
    (before: Replication.Replica)
    (replica: Replication.Replica)
    (sequenced: int)
    (unconfirmed: Map<RoomName, WaitingPosts>)
    (shown: Map<RoomName, int64>)
    (state: NodeState)
    : NodeState =
    let changed (a: 'T) (b: 'T) = not (LanguagePrimitives.PhysicalEquality a b)
    let historyChanged = changed before.History replica.History
    let storedChanged = changed before.Stored replica.Stored
    let primaryChanged = changed before.Primary replica.Primary
    let durableChanged = before.Durable <> replica.Durable
    let fillChanged = before.AwaitingFill <> replica.AwaitingFill
    if not (historyChanged || storedChanged || primaryChanged || durableChanged || fillChanged) && sequenced = 0
       && not (changed unconfirmed state.Unconfirmed) && not (changed shown state.Shown) then
        state
    else
        { state with
            MessagesSinceTick = state.MessagesSinceTick + sequenced
            Unconfirmed = unconfirmed
            Shown = shown
            Histories = if historyChanged then state.Histories.Add(room, replica.History) else state.Histories
            Replicas =
                if not storedChanged then state.Replicas
                elif replica.Stored.IsEmpty then state.Replicas.Remove room
                else state.Replicas.Add(room, replica.Stored)
            Primaries =
                match replica.Primary with
                | _ when not primaryChanged -> state.Primaries
                | Some primary -> state.Primaries.Add(room, primary)
                | None -> state.Primaries.Remove room
            Durable = if durableChanged then state.Durable.Add(room, replica.Durable) else state.Durable
            FillsRequested =
                if not fillChanged then state.FillsRequested
                elif replica.AwaitingFill then state.FillsRequested.Add room
                else state.FillsRequested.Remove room }

let private replicaInto (room: RoomName) (before: Replication.Replica) (replica: Replication.Replica) (sequenced: int) (state: NodeState) : NodeState =
    replicaAndShownInto room before replica sequenced state.Unconfirmed state.Shown state

/// The replica back into the state, each map touched only where the replica changed it.
let withReplica (room: RoomName) (before: Replication.Replica) (replica: Replication.Replica) (state: NodeState) : NodeState =
    replicaInto room before replica 0 state

/// One replica output as effects on this node, in order.
let carryOut (room: RoomName) (output: Replication.ReplicaOutput) (state: NodeState) : NodeState * Effect list =
    match output with
    | Replication.LogAppended messages -> state, [ AppendToLog(room, messages) ]
    | Replication.LogReplaced messages ->
        state, [ RewriteLog(room, messages); Log(Info, $"room {room}: replaced this node's copy with the owner's ({messages.Length} messages)") ]
    // acknowledgePost, then show, in one copy of the state.
    | Replication.Delivered message -> showWith (acknowledged message state) message state
    | Replication.AlreadyDelivered message -> acknowledgePost message state, []
    | Replication.SentTo sent -> state, toPeer state sent.To sent.Message
    | Replication.SentToInterested message ->
        match interestedPeers message state with
        | [] -> state, []
        | peers ->
            let sequenced = RoomSequenced message
            state, [ for peer in peers -> SendToPeer(peer, sequenced) ]
    | Replication.FillRequested -> state, askForMissing room state
    | Replication.SharedHistoryRefused ->
        state, [ Log(Warning, $"room {room}: ignored a shared history that disagrees with this node's copy (it owns or backs up the room)") ]
    | Replication.StoredBeyondSequenced(confirmed, sequenced) ->
        state, [ Log(Warning, $"replica-stored for {room} confirms seq {confirmed}, beyond the {sequenced} this owner sequenced; ignored") ]

/// A replica rule's outputs carried out (as carryOut does, one after the other) and its replica
/// put back, in one copy of the state: only acknowledging and showing change the state as
/// outputs are carried out (Unconfirmed and Shown, kept aside meanwhile), and only a fill request
/// reads what the rule changed (the history's last seq, taken from the replica).
/// The same room, without F#'s generic equality (type tests per call): a rule's outputs are
/// checked per message.
let private isRoom (room: RoomName) (other: RoomName) =
    LanguagePrimitives.PhysicalEquality room other || System.String.Equals(room.Value, other.Value)

let private applyOutputsFrom
    (unconfirmed: Map<RoomName, WaitingPosts>)
    (room: RoomName)
    (before: Replication.Replica)
    (after: Replication.Replica)
    (sequenced: int)
    (outputs: Replication.ReplicaOutput list)
    (state: NodeState)
    : NodeState * Effect list =
    let mutable unconfirmed = unconfirmed
    let mutable shown = state.Shown
    // The rule's room's waiting posts, last shown seq and members shown to, read once and written
    // back once: a commit delivers many messages of the room, and a map update per message cost
    // a lookup and a path of new tree nodes each. A message of another room (none is expected)
    // goes through the maps.
    let mutable roomWaiting = match unconfirmed.TryGetValue room with | true, waiting -> ValueSome waiting | _ -> ValueNone
    let mutable roomWaitingChanged = false
    let mutable roomShown = match shown.TryGetValue room with | true, seq -> seq | _ -> 0L
    let mutable roomShownChanged = false
    let mutable roomShowing = ValueNone
    // Where the room's committed messages from one sender's node go (interestedPeers): the same
    // for each message of a commit from that node, so it is worked out once per node in a row.
    let mutable roomInterested = ValueNone
    let answered (waiting: WaitingPosts voption) (message: RoomMessage) =
        match waiting with
        | ValueSome posts ->
            match WaitingPosts.tryRemoveAnswered message posts with
            | Some posts -> struct (ValueSome posts, true)
            | None -> struct (waiting, false)
        | ValueNone -> struct (waiting, false)
    // Newest first; an output's one effect (nearly always one) goes here without a list of its own.
    let mutable effects = []
    for output in outputs do
        match output with
        | Replication.Delivered message when isRoom room message.Room ->
            let struct (waiting, changed) = answered roomWaiting message
            roomWaiting <- waiting
            roomWaitingChanged <- roomWaitingChanged || changed
            if message.Seq > roomShown then
                roomShown <- message.Seq
                roomShownChanged <- true
                if Accounts.isAccountsRoom message.Room then
                    for effect in accountCommitted message state do effects <- effect :: effects
                else
                    let showing =
                        match roomShowing with
                        | ValueSome showing -> showing
                        | ValueNone -> showingTo room state
                    roomShowing <- ValueSome showing
                    effects <- SendToClients(showing, Message message) :: effects
        | Replication.Delivered message ->
            unconfirmed <- acknowledgedIn unconfirmed message
            let shownSeq =
                match shown.TryGetValue message.Room with
                | true, seq -> seq
                | _ -> 0L
            if message.Seq > shownSeq then
                shown <- shown.Add(message.Room, message.Seq)
                if Accounts.isAccountsRoom message.Room then
                    for effect in accountCommitted message state do effects <- effect :: effects
                else effects <- SendToClients(showingTo message.Room state, Message message) :: effects
        | Replication.AlreadyDelivered message when isRoom room message.Room ->
            let struct (waiting, changed) = answered roomWaiting message
            roomWaiting <- waiting
            roomWaitingChanged <- roomWaitingChanged || changed
        | Replication.AlreadyDelivered message -> unconfirmed <- acknowledgedIn unconfirmed message
        | Replication.LogAppended messages -> effects <- AppendToLog(room, messages) :: effects
        // carryOut's, onto `effects` with no list of its own: one per message on an owner.
        | Replication.SentToInterested message ->
            let peers =
                match roomInterested with
                | ValueSome(struct (node, peers)) when node = message.FromNode && isRoom room message.Room -> peers
                | _ ->
                    let peers = interestedPeers message state
                    if isRoom room message.Room then roomInterested <- ValueSome(struct (message.FromNode, peers))
                    peers
            match peers with
            | [] -> ()
            | peers ->
                let sequenced = RoomSequenced message
                for peer in peers do effects <- SendToPeer(peer, sequenced) :: effects
        | Replication.FillRequested -> for effect in askForMissingAfter room after.History.LastSeq state do effects <- effect :: effects
        | other -> for effect in snd (carryOut room other state) do effects <- effect :: effects
    match roomWaiting with
    | ValueSome waiting when roomWaitingChanged -> unconfirmed <- unconfirmed.Add(room, waiting)
    | _ -> ()
    if roomShownChanged then shown <- shown.Add(room, roomShown)
    let state = replicaAndShownInto room before after sequenced unconfirmed shown state
    match effects with
    | [] | [ _ ] -> state, effects
    | _ -> state, List.rev effects

let private applyOutputs room before after sequenced outputs (state: NodeState) =
    applyOutputsFrom state.Unconfirmed room before after sequenced outputs state

/// Runs one replica rule on a room of this node and carries out what it asks.
let onReplica (room: RoomName) (rule: Replication.Replica -> Replication.Replica * Replication.ReplicaOutput list) (state: NodeState) : NodeState * Effect list =
    let before = replicaOf room state
    let after, outputs = rule before
    match outputs with
    | [] -> withReplica room before after state, []
    | _ -> applyOutputs room before after 0 outputs state

/// A room whose log was damaged takes the seqs it lacks from any node's committed copy: the
/// messages only fill the gap (Rooms.fill), they are not shown again (members here saw them
/// before the restart, or get them with the room's history) and are written when the repaired
/// log is rewritten (repairDamaged).
let fillDamaged (room: RoomName) (messages: RoomMessage list) (state: NodeState) : NodeState =
    if state.Damaged.Contains room then { state with Histories = state.Histories.Add(room, Rooms.fill messages (historyOf room state)) }
    else state

/// The clients waiting for a room's history get it, from this node's copy, now current: the owner
/// has answered this node's request (or this node owns the room now, or it has no owner). They
/// have seen nothing of the room yet; from here on they see its messages with the others.
let release (room: RoomName) (state: NodeState) : NodeState * Effect list =
    match state.CatchingUp.TryFind room with
    | None -> state, []
    | Some waiting ->
        let history = historyOf room state
        let shown = state.Shown.TryFind room |> Option.defaultValue 0L
        // With no other member here, what was shown before (to members since gone) no longer
        // counts: a copy the owner's replaced can end below it, and the numbers it takes back
        // must reach the clients released now when they come again.
        let shown = if (showingTo room state).IsEmpty then history.LastSeq else max shown history.LastSeq
        let wanted = function
            | Since seq -> Rooms.since seq history
            | Last count -> Rooms.last count history
        { state with CatchingUp = state.CatchingUp.Remove room; Shown = state.Shown.Add(room, shown) },
        [ for KeyValue(client, want) in waiting do
              for message in wanted want do
                  SendToClients(Set.singleton client, Message message) ]

/// Whether a client joining the room here must wait for its history first: another node owns the
/// room and this node has no member in it yet (or is already catching up). Committed messages
/// are sent only to nodes with members (Replication.interestedNodes): this node's copy may have
/// grown stale meanwhile, and must not be shown as current.
let needsCatchUp (room: RoomName) (state: NodeState) : bool =
    match state.Placements.TryFind room with
    | Some placement when placement.Owner <> self state ->
        state.CatchingUp.ContainsKey room || (localMembers room state.Chat).IsEmpty
    | _ -> false

/// Spec: Join(n). A client joins a room this node must catch up on (needsCatchUp): it waits, and
/// the owner is asked for the messages after this node's last one (after the news of the
/// member, on the same link, so the owner sends this node the later ones). Asked again every
/// tick while it waits (catchUpAgain).
let catchUp (room: RoomName) (client: ClientId) (wanted: HistoryWanted) (state: NodeState) : NodeState * Effect list =
    let waiting = state.CatchingUp.TryFind room
    let state = { state with CatchingUp = state.CatchingUp.Add(room, (waiting |> Option.defaultValue Map.empty).Add(client, wanted)) }
    state, (if waiting.IsSome then [] else askForMissing room state)

/// Every room with clients waiting for its history: released if this node owns it now or it has
/// no owner (its copy is all there is), else the owner is asked again (it may have died, or the
/// request was lost with a link).
let catchUpAgain (state: NodeState) : NodeState * Effect list =
    let rooms = List.ofSeq state.CatchingUp.Keys
    let again room (state: NodeState) =
        match state.Placements.TryFind room with
        | Some placement when placement.Owner <> self state -> state, askForMissing room state
        | _ -> release room state
    forEach again rooms (state, [])

/// The room's owner changed here: what this node waits for from the owner (its history, or the
/// committed messages after a gap) is asked of the new one at once. The request may have gone
/// nowhere (askForMissing sends nothing while the placement is unknown: the owner's first
/// messages to a new member node can arrive before the leader's placement does), or to an owner
/// now gone; and the gap rule asks only once (Replication.recvSequenced), so without this the
/// room's later messages would wait for the next tick.
let askNewOwner (room: RoomName) (state: NodeState) : NodeState * Effect list =
    match state.Placements.TryFind room with
    | Some placement when placement.Owner <> self state && (state.CatchingUp.ContainsKey room || state.FillsRequested.Contains room) ->
        state, askForMissing room state
    | Some _ when state.CatchingUp.ContainsKey room -> release room state
    | _ -> state, []

/// A client gone from a room (or from the node) stops waiting for its history.
let stopWaiting (client: ClientId) (room: RoomName) (state: NodeState) : NodeState =
    match state.CatchingUp.TryFind room with
    | Some waiting when waiting.ContainsKey client ->
        let waiting = waiting.Remove client
        { state with CatchingUp = if waiting.IsEmpty then state.CatchingUp.Remove room else state.CatchingUp.Add(room, waiting) }
    | _ -> state

/// Committed messages another node shares as the room's owner (Replication.recvShared); clients
/// waiting for the room's history get it.
let recvShared (room: RoomName) (messages: RoomMessage list) (state: NodeState) : NodeState * Effect list =
    let backsUp = state.Backups.TryFind room |> Option.exists (fun backup -> backup.Backup = self state)
    onReplica room (Replication.recvShared backsUp messages) (fillDamaged room messages state)
    |> then' (release room)

/// A leader decides (places rooms, promotes backups, assigns them) only with a majority it has
/// heard from within about an interval (age 0 or 1), not merely one still in its view: a leader
/// cut off by a partition loses its peers from the view one tick at a time, and for a tick or two
/// its view still holds a majority that is already gone. Nor before it has listened since it
/// started or regained a majority (see maybeStartElection): a node back from a partition, or
/// restarted, can win an election others start before it has heard everyone, and would take the
/// nodes it has not heard yet for dead.
let decidesWithQuorum (state: NodeState) : bool =
    let heard = state.Coordination.Age |> Seq.filter (fun (KeyValue(_, age)) -> age <= 1) |> Seq.length
    let known = state.Peers.Count + 1
    hasQuorum state && state.TicksSinceStart >= listenTicksBeforeElection && (known <= 2 || 2 * (heard + 1) > known)

let backupTarget (room: RoomName) (state: NodeState) =
    Replication.backupTarget room state.Placements state.Backups state.Coordination

/// The owner's replication step on its replica of a room: a backup that has not had the room's
/// state gets it (SyncBackup), the pending messages not sent yet go to it in one append while the
/// window has room (SendAppends), and what the backup has stored (everything, when the owner is
/// alone in its view) is committed: written and delivered here and sent to every node (Commit).
/// The three actions in a row on one replica, their outputs in that order.
let private replicateReplica (room: RoomName) (state: NodeState) (replica: Replication.Replica) : Replication.Replica * Replication.ReplicaOutput list =
    let target = backupTarget room state
    let alone = state.Coordination.View.Count = 1
    // Without a backup there is nothing to sync or append: commit alone, with no tuples for them.
    if target.IsNone then Replication.commit (hasQuorum state) alone target replica else
    let replica, synced = Replication.syncBackup target room replica
    let replica, appended = Replication.sendAppends Replication.appendWindow target room replica
    let replica, committed = Replication.commit (hasQuorum state) alone target replica
    replica, (match synced, appended with
              | [], [] -> committed
              | _ -> synced @ appended @ committed)

/// The owner's replication step for a room (replicateReplica), carried out on this node.
let replicate (room: RoomName) (state: NodeState) : NodeState * Effect list =
    if not (state.Primaries.ContainsKey room) then state, []
    else onReplica room (replicateReplica room state) state

/// The owner gives a post the room's next number; it goes to the backup with the next append
/// (replicate) and is committed when the backup confirms. A retry of a committed message is only sent again to the node that
/// retried; a retry of a pending one waits with it. Sequencing and the replication step run on
/// the replica in one pass, and the state is copied once.
/// `unconfirmed` is the node's Unconfirmed with the post waiting (sequenceWaitingAsOwner).
let private sequenceAsOwnerFrom (unconfirmed: Map<RoomName, WaitingPosts>) (post: RoomPost) (placement: Assignment) (state: NodeState) : NodeState * Effect list =
    let withUnconfirmed (state: NodeState) =
        if LanguagePrimitives.PhysicalEquality unconfirmed state.Unconfirmed then state else { state with Unconfirmed = unconfirmed }
    // The placement names this node: it acts as the owner even before it has taken the room over.
    let before = replicaOf post.Room state
    let owning = if before.Primary.IsSome then before else { before with Primary = Some Replication.emptyPrimary }
    match Replication.sequencePost post placement owning with
    | _, Replication.AlreadyCommitted message, _ ->
        let state = acknowledgePost message (withUnconfirmed state)
        if post.FromNode <> self state then state, toPeer state post.FromNode (RoomSequenced message)
        else state, []
    | _, (Replication.AlreadyPending | Replication.NotOwner), _ -> withUnconfirmed state, []
    | sequenced, Replication.Sequenced _, outputs ->
        // The sequenced replica owns the room, so the replication step applies to it (replicate).
        let after, replicated = replicateReplica post.Room state sequenced
        let outputs = if outputs.IsEmpty then replicated else outputs @ replicated
        applyOutputsFrom unconfirmed post.Room before after 1 outputs state

let sequenceAsOwner (post: RoomPost) (placement: Assignment) (state: NodeState) : NodeState * Effect list =
    sequenceAsOwnerFrom state.Unconfirmed post placement state

/// sequenceAsOwner for a post of a client here that waits from now on: `unconfirmed` is the
/// node's Unconfirmed with the post added, put into the state in the copy that sequencing makes
/// (not in one of its own before).
let sequenceWaitingAsOwner (unconfirmed: Map<RoomName, WaitingPosts>) (post: RoomPost) (placement: Assignment) (state: NodeState) : NodeState * Effect list =
    sequenceAsOwnerFrom unconfirmed post placement state

/// The room's backup assignment changed here: the owner sends its state to a new backup.
let applyBackup (room: RoomName) (backup: BackupAssignment) (state: NodeState) : NodeState * Effect list =
    let backups = Replication.recvBackupAssignment room backup state.Backups
    if backups = state.Backups then state, []
    else replicate room { state with Backups = backups }

let isCurrentBackup (backup: BackupAssignment) (room: RoomName) (state: NodeState) =
    Replication.isCurrentBackup (self state) backup room state.Placements state.Backups

/// Spec: RecvSync, on the backup (Replication.recvSync), after the assignment it carries.
let recvSync (room: RoomName) (backup: BackupAssignment) (committed: RoomMessage list) (pending: RoomMessage list) (state: NodeState) =
    let state, effects = applyBackup room backup state
    let current = isCurrentBackup backup room state
    let state = if current then fillDamaged room committed state else state
    then' (onReplica room (Replication.recvSync current room backup committed pending)) (state, effects)

/// Spec: StoreReplica, on the backup (Replication.storeReplica), after the assignment it carries.
let recvAppend (room: RoomName) (backup: BackupAssignment) (messages: RoomMessage list) (state: NodeState) =
    let state, effects = applyBackup room backup state
    let current = isCurrentBackup backup room state
    then' (onReplica room (Replication.storeReplica current room backup messages)) (state, effects)

/// Spec: RecvStored, on the owner (Replication.recvStored), then what can commit does.
let recvStored (room: RoomName) (backup: BackupAssignment) (seq: int64) (state: NodeState) =
    if not (state.Primaries.ContainsKey room) then state, []
    else
        let state, effects = onReplica room (Replication.recvStored backup seq) state
        if effects.IsEmpty then replicate room state else state, effects

/// Spec: TakeOwnership (Replication.takeOwnership); a new owner then commits what it can.
let takeOwnership (room: RoomName) (owner: NodeId) (state: NodeState) : NodeState * Effect list =
    let owns = owner = self state
    let becomesOwner = owns && not (state.Primaries.ContainsKey room)
    let state, effects = onReplica room (Replication.takeOwnership owns) state
    if becomesOwner then then' (replicate room) (state, effects) else state, effects

/// A post from another node that this node cannot place yet (the owner's assignment has not
/// arrived here, or names a node that has left) waits here like a local one, and goes on when
/// the assignment arrives: the sender sends it only once.
let hold (post: RoomPost) (state: NodeState) : NodeState =
    let waiting = state.Unconfirmed.TryFind post.Room |> Option.defaultValue WaitingPosts.empty
    if post.FromNode = self state || WaitingPosts.contains post waiting then state
    else { state with Unconfirmed = state.Unconfirmed.Add(post.Room, WaitingPosts.add post waiting) }
