/// Exactly one winner per nickname (spec/NickRegistry.tla). The leader of each term is the
/// nickname registrar: a node that gets a hello claims the nickname from the registrar of the
/// term it follows and welcomes the client only on that registrar's grant. A new registrar
/// grants nothing until every node in its view has reported the nicknames it holds in the new
/// term, and a node takes a grant only in the term it follows now; together they keep one
/// winner across a leader change. A claim with the session the registry holds for the nickname
/// is the same user resuming on another node: the nickname moves to the claimant.
///
/// Its own step and events, like etcd-raft's: Node.fs feeds it what happened and carries out
/// what it returns.
module FormalChat.Protocol.NickRegistry

/// A hello waiting for the registrar's answer (spec: pending[n]).
type Waiting =
    { Client: ClientId
      /// The hello's nickname, checked (Chat.validateNick).
      Nick: Nick
      Hello: HelloRequest
      Session: string
      /// Messages of each room the welcome replays when the client resumes nothing.
      HistoryOnJoin: int
      /// The term the claim was last sent in.
      Term: NickTerm
      TicksWaited: int }

/// Who holds a nickname, as the registrar knows it.
type Holder = { Node: NodeId; Session: string }

type State =
    { /// Spec: term[n]. The registrar this node follows.
      Following: NickTerm option
      /// Hellos waiting for an answer, by nickname (one claim per nickname per node).
      Waiting: Map<Nick, Waiting>
      /// Spec: lead[n]. The term this node is registrar of.
      Leading: NickTerm option
      /// Spec: registry[n]. Meaningful only while Leading.
      Registry: Map<Nick, Holder>
      /// Spec: reported[n]. Nodes that reported in the Leading term.
      Reported: Set<NodeId> }

let empty =
    { Following = None
      Waiting = Map.empty
      Leading = None
      Registry = Map.empty
      Reported = Set.empty }

/// What the node around the registry knows when it steps.
type Context =
    { Self: NodeId
      /// The nodes this node believes live (the registrar's view).
      View: Set<NodeId>
      /// This node leads with a majority in view (NodeState.decidesWithQuorum).
      Decides: bool
      /// The nicknames this node has welcomed, with their sessions (spec: held[n]).
      Held: unit -> (Nick * string) list }

type Event =
    /// The node follows this leader now (spec: Elect when it is this node, FollowRegistrar).
    | LeaderFollowed of NickTerm
    /// A client said hello with a nickname nobody here holds (spec: ClaimNick).
    | HelloReceived of Waiting
    /// A waiting client went away (spec: AbandonClaim).
    | ClientLeft of ClientId
    /// A welcomed user went away (spec: ReleaseNick).
    | UserLeft of nick: Nick * session: string
    /// One heartbeat interval (spec: ClaimAgain, AskForReport); a hello waits at most
    /// maxTicksWaited of them.
    | Ticked of maxTicksWaited: int
    /// A registry message from a peer (or from this node to itself).
    | Received of PeerMessage

type Output =
    | Send of Sent
    /// The registrar granted the nickname: welcome this client.
    | Welcome of Waiting
    | Refuse of Waiting * ErrorCode * reason: string
    | Note of string

/// Spec: Before(a, b). Terms are ordered by epoch, then leader.
let isBefore (a: NickTerm) (b: NickTerm) : bool = (a.Epoch, a.Leader) < (b.Epoch, b.Leader)

/// A hello waits this many ticks for the registrar, then is refused with try-again: long
/// enough for the election that follows a leader's death (K ticks and a ring round).
let maxTicksWaited (suspectAfter: int) = 2 * suspectAfter + 2

let private claimOf (context: Context) (term: NickTerm) (waiting: Waiting) : NickClaim =
    { Nick = waiting.Nick; Session = waiting.Session; Previous = waiting.Hello.Session; Node = context.Self; Term = term }

let private sendClaim (context: Context) (term: NickTerm) (waiting: Waiting) : Output =
    Send { To = term.Leader; Message = NickClaimed(claimOf context term waiting) }

let private report (context: Context) (term: NickTerm) : Output =
    Send { To = term.Leader; Message = NicksReported(context.Self, term, context.Held()) }

/// Spec: Ready(l). The registrar has heard every node in its view, and may decide.
let isReady (context: Context) (state: State) : bool =
    context.Decides && Set.isSubset context.View state.Reported

/// Spec: Elect(l). A new registrar starts with an empty registry and waits for every report.
let private elect (context: Context) (term: NickTerm) (state: State) : State =
    if term.Leader = context.Self && state.Leading |> Option.forall (fun leading -> isBefore leading term) then
        { state with Leading = Some term; Registry = Map.empty; Reported = Set.empty }
    else
        state

/// Spec: FollowRegistrar(n, l) and ClaimAgain for every waiting hello: the node reports what it
/// holds to the new registrar, then claims again what it waits for.
let followRegistrar (context: Context) (term: NickTerm) (state: State) : State * Output list =
    let state = elect context term state
    if state.Following |> Option.exists (fun following -> not (isBefore following term)) then
        state, []
    else
        let waiting = state.Waiting |> Map.map (fun _ w -> { w with Term = term })
        { state with Following = Some term; Waiting = waiting },
        report context term :: [ for KeyValue(_, w) in waiting -> sendClaim context term w ]

/// Spec: ClaimNick(n, k, s). Without a registrar the claim waits for one (followRegistrar).
let claimNick (context: Context) (waiting: Waiting) (state: State) : State * Output list =
    match state.Waiting.TryFind waiting.Nick with
    | Some other when other.Client <> waiting.Client ->
        state, [ Refuse(waiting, NickTaken, $"the nickname {waiting.Nick} is being claimed on this node right now") ]
    | _ ->
    match state.Following with
    | Some term ->
        let waiting = { waiting with Term = term }
        { state with Waiting = state.Waiting.Add(waiting.Nick, waiting) }, [ sendClaim context term waiting ]
    | None -> { state with Waiting = state.Waiting.Add(waiting.Nick, waiting) }, []

/// Spec: RecvReport(l, n). The node's entries become exactly what it reports, once a term: a
/// second report (an answer to an earlier request) can be older than a grant this registrar has
/// made the node since, and taking it would forget that grant.
let recvReport (node: NodeId) (term: NickTerm) (nicks: (Nick * string) list) (state: State) : State =
    if state.Leading <> Some term || state.Reported.Contains node then state
    else
        let others = state.Registry |> Map.filter (fun _ holder -> holder.Node <> node)
        let registry = nicks |> List.fold (fun registry (nick, session) -> Map.add nick { Node = node; Session = session } registry) others
        { state with Registry = registry; Reported = state.Reported.Add node }

/// Spec: LiveHolders(l, k). The holder of a nickname, if it is on a node in view.
let private liveHolder (context: Context) (nick: Nick) (state: State) : Holder option =
    state.Registry.TryFind nick |> Option.filter (fun holder -> context.View.Contains holder.Node)

/// Spec: RecvClaim(l, n). Once Ready, a nickname nobody live holds, or held with the claim's
/// session (or the one its resume proves: tokens rotate, which the spec does not model), is
/// granted; any other is refused. A claim of another term, or before Ready, is
/// dropped: the claimant asks again on its next tick.
let recvClaim (context: Context) (claim: NickClaim) (state: State) : State * Output list =
    if state.Leading <> Some claim.Term || not (isReady context state) then
        state, [ Note $"nickname claim for {claim.Nick} from node {claim.Node} dropped: the registry is not ready for epoch {claim.Term.Epoch}" ]
    else
        match liveHolder context claim.Nick state with
        | Some holder when holder.Session <> claim.Session && claim.Previous <> Some holder.Session ->
            state, [ Send { To = claim.Node; Message = NickRefused(claim, holder.Node) } ]
        | _ ->
            { state with Registry = state.Registry.Add(claim.Nick, { Node = claim.Node; Session = claim.Session }) },
            [ Send { To = claim.Node; Message = NickGranted claim } ]

let private answers (claim: NickClaim) (waiting: Waiting) =
    waiting.Session = claim.Session && waiting.Term = claim.Term

/// Spec: RecvGrant(n, l). Welcome, if the claim still waits in this very term; a grant nobody
/// waits for any more is given back.
let recvGrant (context: Context) (claim: NickClaim) (state: State) : State * Output list =
    match state.Waiting.TryFind claim.Nick with
    | Some waiting when state.Following = Some claim.Term && answers claim waiting ->
        { state with Waiting = state.Waiting.Remove claim.Nick }, [ Welcome waiting ]
    | _ when state.Following = Some claim.Term && not (context.Held() |> List.contains (claim.Nick, claim.Session)) ->
        state, [ Send { To = claim.Term.Leader; Message = NickReleased claim } ]
    | _ -> state, []

/// Spec: RecvRefusal(n, l).
let recvRefusal (claim: NickClaim) (holder: NodeId) (state: State) : State * Output list =
    match state.Waiting.TryFind claim.Nick with
    | Some waiting when answers claim waiting ->
        { state with Waiting = state.Waiting.Remove claim.Nick },
        [ Refuse(waiting, NickTaken, $"the nickname {claim.Nick} is already in use on node {holder}") ]
    | _ -> state, []

/// Spec: ReleaseNick(n, k, s).
let releaseNick (context: Context) (nick: Nick) (session: string) (state: State) : State * Output list =
    match state.Following with
    | Some term -> state, [ Send { To = term.Leader; Message = NickReleased { Nick = nick; Session = session; Previous = None; Node = context.Self; Term = term } } ]
    | None -> state, []

/// Spec: RecvRelease(l, n). Only the sender's own entry, only in this term.
let recvRelease (claim: NickClaim) (state: State) : State =
    match state.Registry.TryFind claim.Nick with
    | Some holder when state.Leading = Some claim.Term && holder = { Node = claim.Node; Session = claim.Session } ->
        { state with Registry = state.Registry.Remove claim.Nick }
    | _ -> state

/// Spec: AbandonClaim(n, k, s, t).
let abandonClaim (client: ClientId) (state: State) : State =
    { state with Waiting = state.Waiting |> Map.filter (fun _ waiting -> waiting.Client <> client) }

/// Spec: RecvReportRequest(n, l). Report in the term this node follows, or follow a newer one.
let recvReportRequest (context: Context) (term: NickTerm) (state: State) : State * Output list =
    match state.Following with
    | Some following when following = term -> state, [ report context term ]
    | Some following when isBefore term following -> state, []
    | _ -> followRegistrar context term state

/// Spec: ClaimAgain and AskForReport, once a tick. Waiting hellos are claimed again (a claim
/// the registrar dropped before it was ready, or lost on a broken link) until they have waited
/// too long; a registrar forgets the reports of nodes that left its view and asks every node in
/// view that has not reported.
let tick (context: Context) (maxWaited: int) (state: State) : State * Output list =
    let aged = state.Waiting |> Map.map (fun _ waiting -> { waiting with TicksWaited = waiting.TicksWaited + 1 })
    let expired, still = aged |> Map.partition (fun _ waiting -> waiting.TicksWaited > maxWaited)
    let reported = Set.intersect state.Reported context.View
    let state = { state with Waiting = still; Reported = reported }
    let outputs =
        [ for KeyValue(nick, waiting) in expired do
              yield Refuse(waiting, TryAgain, $"no registrar answered for the nickname {nick}: the cluster may be electing a leader; say hello again")
          match state.Following with
          | Some term -> for KeyValue(_, waiting) in still do yield sendClaim context term waiting
          | None -> ()
          match state.Leading with
          | Some term when context.Decides ->
              for node in Set.difference context.View reported do
                  yield Send { To = node; Message = NicksRequested term }
          | _ -> () ]
    state, outputs

/// The one entry point: what an event does to the registry, and what the node must do.
let step (context: Context) (state: State) (event: Event) : State * Output list =
    match event with
    | LeaderFollowed term -> followRegistrar context term state
    | HelloReceived waiting -> claimNick context waiting state
    | ClientLeft client -> abandonClaim client state, []
    | UserLeft(nick, session) -> releaseNick context nick session state
    | Ticked maxWaited -> tick context maxWaited state
    | Received message ->
        match message with
        | NickClaimed claim -> recvClaim context claim state
        | NickGranted claim -> recvGrant context claim state
        | NickRefused(claim, holder) -> recvRefusal claim holder state
        | NickReleased claim -> recvRelease claim state, []
        | NicksReported(node, term, nicks) -> recvReport node term nicks state, []
        | NicksRequested term -> recvReportRequest context term state
        | _ -> state, []
