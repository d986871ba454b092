/// Deterministic simulation of whole clusters: the F# cores of 3–7 nodes (Node.step, nothing
/// else) with a seeded simulated network, disks, crashes, restarts, partitions and heals, and
/// simulated clients that fail over the way Client.CSharp does. One System.Random per run, made
/// from the seed, takes every choice, so a seed replays exactly: a failure reports its seed, the
/// step, the recent history and the node and client states.
///
///     FORMALCHAT_SIM_SEED=<seed>    run that one seed again (also `ReplicationSimulation.replay`)
///     FORMALCHAT_SIM_TRACE=<n>      keep the last n events for the report (default 150)
///     FORMALCHAT_SIM_STEPS=<n>      the total budget (default 2,000,000; 5,000 steps a seed)
///     FORMALCHAT_SIM_FIRST_SEED=<n> the first seed of the window (default 1)
///     FORMALCHAT_SIM_FAULTS=all     add the faults outside the promise (below)
/// e.g. FORMALCHAT_SIM_SEED=42 dotnet run --project tests/Protocol.Tests -c Release -- --filter ReplicationSimulation
///
/// A step is one event taken from the queue: a tick, a peer message or heartbeat arriving, a
/// client request or reply arriving, a client's timer. The network, disks and clients are in
/// SimNetwork.fs and SimClientShell.fs (round Protocol.FSharp/ClientSession.fs); the invariants, checked after every step, in SimChecks.fs.
///
/// The fault budget. The promise of docs/REPLICATION.md is for ONE failure, so a run has at most
/// one faulty node at a time, of one of these kinds:
/// - Crash: it stops silently and restarts from its disk once the others have noticed (more than
///   K heartbeat intervals later); half the time what it had sent is lost with it;
/// - Leave: it shuts down announcing its leave, and restarts from its disk as late as a Crash;
/// - Isolate: a partition cuts it off from every other node (its clients can still reach it)
///   until both sides have noticed, then heals.
/// A new fault starts only after the previous one is repaired AND the cluster has converged:
/// every node is up and agrees on the view, the epoch and the leader, holds the leader's
/// placements and backups, and every placed room's owner has taken it over and reports its
/// backup up to date (Replication.isUpToDate of its backupTarget). A cluster that does not
/// converge within a bound after a repair fails the run (liveness).
///
/// Outside the promise (FORMALCHAT_SIM_FAULTS=all), still one faulty node at a time; each breaks
/// it today, in roughly 1% of the seeds all together:
/// - FastRestart: a crash and a restart sooner than K intervals, so nobody sees the node leave
///   (a quick restart after a Leave can go unnoticed too: a heartbeat sent before the leave may
///   arrive after it, seed 219 with all faults). The restarted node takes its rooms back from
///   the placements its peers introduce while a leader that did notice promotes the backup; an
///   election message lost with the old process is never sent again, and the round waits forever
///   (no view change restarts it, and the restarted node's epoch-1 round is ignored as stale).
/// - ShortIsolate: a partition healed before everyone noticed. What the cut links lost
///   (placements, backup assignments, the last committed messages) is never sent again: there is
///   no view change, so no introductions.
/// - LoseHeartbeats: most heartbeats to and from the node are lost while its TCP links work.
///   One-sided suspicions give two nodes majority views at once; a leader promotes a backup while
///   the owner, which never heard, goes on committing with its own, newer backup.
///
/// The end of a run: after the step budget, the current fault runs its course (cut short, a
/// partition or crash would turn into one nobody noticed), no new one starts, clients stop
/// sending new messages, and the run goes on until the cluster has converged, every client's
/// sends are acknowledged and every client has shown every room it is in up to the room's last
/// message. Not getting there within a bound fails the run: a send never acknowledged or a client
/// left behind is a liveness bug, reported with its seed like a safety one.
module FormalChat.Protocol.Tests.ReplicationSimulation

open System
open System.Diagnostics
open System.Threading.Tasks
open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.NodeState
open FormalChat.Protocol.Tests.SimNetwork
open FormalChat.Protocol.Tests.SimChecks
open FormalChat.Protocol.Tests.SimClientShell
open Xunit

type FaultKind =
    /// A silent crash; the node restarts from its disk once the others have noticed (more than
    /// K heartbeat intervals later).
    | Crash
    /// A silent crash and a restart sooner than K intervals: the others never see it leave.
    | FastRestart
    /// A graceful shutdown (LeaveAnnounced), then a restart from its disk once the others would
    /// have noticed anyway: a heartbeat sent just before the leave can arrive after it and put the
    /// node back in their views, and then a quick restart goes unnoticed like a FastRestart.
    | Leave
    /// A partition cuts the node off from every other node, and heals once both sides have
    /// noticed (more than K heartbeat intervals later).
    | Isolate
    /// A partition that heals before everyone has noticed: what the cut links lost is never sent
    /// again (no view changes, so no introductions).
    | ShortIsolate
    /// The heartbeats to and from the node are lost with a high probability (its TCP links
    /// work): one-sided suspicions.
    | LoseHeartbeats

type Fault = { Kind: FaultKind; Node: NodeId }

type Control =
    /// Waiting for the cluster to converge since this time (start, or the last repair).
    | Settling of since: Time
    /// Converged; the next fault may start at this time.
    | Calm of nextFault: Time
    | Faulty of Fault * until: Time

type Settings =
    { StepsPerSeed: int
      /// Fault kinds with their weights.
      Faults: (FaultKind * int) list
      /// Intervals a repaired cluster may take to converge.
      SettleIntervals: int
      /// Intervals the end of a run may take.
      EndIntervals: int
      /// Events kept for the report of a failure.
      TraceLength: int }

let stepsPerSeed = 5_000

/// The faults of a CI run. FastRestart, ShortIsolate and LoseHeartbeats break the promise today
/// (see the header); FORMALCHAT_SIM_FAULTS=all adds them.
let guaranteedFaults = [ Crash, 4; Leave, 1; Isolate, 3 ]

let allFaults = guaranteedFaults @ [ FastRestart, 2; ShortIsolate, 2; LoseHeartbeats, 2 ]

let defaultSettings =
    { StepsPerSeed = stepsPerSeed
      Faults = guaranteedFaults
      SettleIntervals = 60
      EndIntervals = 120
      TraceLength = 150 }

type RunResult =
    { Seed: int
      Nodes: int
      Clients: int
      Steps: int
      VirtualMs: int64
      Sent: int
      Acked: int
      Shown: int
      Resent: int
      Connections: int
      Timeouts: int
      Redirects: int
      Switches: int
      Gaps: int
      Crashes: int
      Leaves: int
      Partitions: int
      LossyPeriods: int
      Failovers: int
      PeerMessages: int
      /// Events run through Node.step, of all the steps.
      NodeSteps: int
      /// The longest convergence after a repair, in virtual ms.
      LongestSettleMs: int64
      /// A digest of the whole run's final state, to show that a replay is exact.
      Fingerprint: int }

exception SimulationFailed of seed: int * report: string

let private pick (random: Random) (weighted: ('T * int) list) : 'T =
    let rec go (roll: int) (rest: ('T * int) list) =
        match rest with
        | [ (value, _) ] -> value
        | (value, weight) :: _ when roll < weight -> value
        | (_, weight) :: rest -> go (roll - weight) rest
        | [] -> invalidArg (nameof weighted) "nothing to pick from"
    go (random.Next(weighted |> List.sumBy snd)) weighted

/// One run of one seed. Raises SimulationFailed with the whole report on a broken invariant.
let run (settings: Settings) (seed: int) : RunResult =
    let random = Random(seed)
    let nodeCount = between random 3 7
    let timing =
        { IntervalMs = 1000
          JitterPercent = between random 0 10
          PeerDelayMin = 1
          PeerDelayMax = between random 5 60
          SlowChance = pick random [ 0.0, 1; 0.01, 1; 0.05, 1 ]
          SlowDelayMax = between random 100 600
          DatagramDelayMax = between random 2 60
          ClientDelayMax = between random 2 40 }
    let config = { ProtocolConfig.defaults with HeartbeatIntervalMs = timing.IntervalMs }
    let net = createNet seed random config timing nodeCount settings.TraceLength
    let clientTiming =
        { WelcomeTimeout = 3
          ProgressTimeout = between random 4 8
          WakeMin = 30
          WakeMax = between random 60 200
          SendChance = 0.3 + 0.5 * random.NextDouble()
          SwitchChance = 0.005 + 0.025 * random.NextDouble()
          MaxUnconfirmed = between random 1 3 }
    let stats = newClientStats ()
    let homes = [ for home in 1..nodeCount do for _ in 1 .. between random 1 3 -> home ]
    let clients =
        homes
        |> List.mapi (fun index home ->
            let extra =
                match random.Next 4 with
                | 0 -> [ (RoomName "#a") ]
                | 1 -> [ (RoomName "#b") ]
                | _ -> []
            let client = createClient index extra stats
            client.Redirect <- Some home
            client.RetryAt <- int64 (between random 0 (3 * timing.IntervalMs))
            client)
        |> Array.ofList
    let ledger = newLedger ()
    for n in net.Nodes do after net (between random 0 timing.IntervalMs) (Tick(n.Id, n.Incarnation))
    for client in clients do after net (between random 0 timing.IntervalMs) (ClientWakes client.Index)
    after net 100 FaultControl

    let interval = int64 timing.IntervalMs
    let control = ref (Settling 0L)
    let ending = ref false
    let endedAt = ref 0L
    let finished = ref false
    let failovers = ref 0
    let longestSettle = ref 0L
    let owners = Collections.Generic.Dictionary<RoomName, NodeId>()

    let repair (fault: Fault) =
        let n = node net fault.Node
        match fault.Kind with
        | Crash
        | FastRestart
        | Leave ->
            restart net n
            net.Counters.Restarts <- net.Counters.Restarts + 1
            note net $"node {n.Id} restarts from its disk"
        | Isolate
        | ShortIsolate ->
            heal net
            note net $"partition healed: node {n.Id} rejoins"
        | LoseHeartbeats ->
            n.HeartbeatLoss <- 0.0
            note net $"node {n.Id} stops losing heartbeats"

    let inject () =
        let kind = pick random settings.Faults
        let n = net.Nodes[random.Next nodeCount]
        let fault = { Kind = kind; Node = n.Id }
        let detection = (config.SuspectAfter + 2) * timing.IntervalMs
        let lasting =
            match kind with
            | Crash
            | Leave
            | Isolate -> between random detection (detection + 6 * timing.IntervalMs)
            | FastRestart -> between random (timing.IntervalMs / 3) ((config.SuspectAfter - 1) * timing.IntervalMs)
            | ShortIsolate -> between random (timing.IntervalMs / 3) detection
            | LoseHeartbeats -> between random (timing.IntervalMs / 3) (8 * timing.IntervalMs)
            |> int64
        match kind with
        | Crash
        | FastRestart ->
            let drain = chance random 0.5
            let sent = if drain then "delivered" else "lost"
            note net $"node {n.Id} crashes (what it sent is {sent}); down for {lasting} ms"
            crash net n drain
            net.Counters.Crashes <- net.Counters.Crashes + 1
        | Leave ->
            note net $"node {n.Id} is shut down (announces its leave); down for {lasting} ms"
            stepNode net n ShutdownRequested
            if n.Up then crash net n true
            net.Counters.Leaves <- net.Counters.Leaves + 1
        | Isolate
        | ShortIsolate ->
            note net $"partition: node {n.Id} is cut off from the others for {lasting} ms"
            isolate net n.Id
            net.Counters.Partitions <- net.Counters.Partitions + 1
        | LoseHeartbeats ->
            n.HeartbeatLoss <- 0.3 + 0.7 * random.NextDouble()
            note net $"node {n.Id} loses {int (n.HeartbeatLoss * 100.0)}%% of its heartbeats for {lasting} ms"
            net.Counters.LossyPeriods <- net.Counters.LossyPeriods + 1
        control.Value <- Faulty(fault, net.Now + lasting)

    let caughtUp () =
        clients
        |> Array.forall (fun client ->
            client.Phase = Ready
            && client.Unconfirmed.Count = 0
            && client.Joining.Count = 0
            && client.Joined
               |> Seq.forall (fun room ->
                   net.Nodes |> Array.forall (fun n -> (historyOf room n.State).LastSeq <= lastShown client room)))

    let endReport () =
        let pending = clients |> Array.sumBy _.Unconfirmed.Count
        let behind =
            [ for client in clients do
                  for room in client.Joined do
                      let last = net.Nodes |> Array.map (fun n -> (historyOf room n.State).LastSeq) |> Array.max
                      if lastShown client room < last then $"client {client.Index} shows {room} up to {lastShown client room} of {last}" ]
        let phases = [ for client in clients do if client.Phase <> Ready then $"client {client.Index} {client.Phase}" ]
        $"{pending} sends unacknowledged; behind: {behind}; not ready: {phases}; convergence: {notConverged net}"

    let controlStep () =
        for room in net.Nodes |> Seq.collect (fun n -> n.State.Placements.Keys) |> Seq.distinct |> Seq.sort |> List.ofSeq do
            match newestPlacement net room with
            | Some placement ->
                match owners.TryGetValue room with
                | true, owner when owner <> placement.Owner -> failovers.Value <- failovers.Value + 1
                | _ -> ()
                owners[room] <- placement.Owner
            | None -> ()
        noteBackups net ledger
        match control.Value with
        | Faulty(fault, until) when net.Now >= until ->
            repair fault
            control.Value <- Settling net.Now
        | Faulty _ -> ()
        | Settling since ->
            match notConverged net with
            | None ->
                longestSettle.Value <- max longestSettle.Value (net.Now - since)
                control.Value <- Calm(net.Now + int64 (between random 0 (3 * timing.IntervalMs)))
            | Some why when net.Now - since > int64 settings.SettleIntervals * interval ->
                broken $"liveness: the cluster has not converged {net.Now - since} ms after the last repair: {why}"
            | Some _ -> ()
        | Calm nextFault when not ending.Value && net.Now >= nextFault ->
            // Still converged? A room placed meanwhile may not have an up-to-date backup yet.
            match notConverged net with
            | None -> inject ()
            | Some _ -> control.Value <- Settling net.Now
        | Calm _ -> ()
        if ending.Value then
            match control.Value with
            | Calm _ when caughtUp () -> finished.Value <- true
            | _ when net.Now - endedAt.Value > int64 settings.EndIntervals * interval ->
                broken $"liveness: {net.Now - endedAt.Value} ms after the end of the run: {endReport ()}"
            | _ -> ()
        after net 100 FaultControl

    let report (reason: string) =
        let header =
            [ $"simulation failed: {reason}"
              $"seed {seed}: {nodeCount} nodes, {clients.Length} clients, step {net.Counters.Steps}, virtual time {net.Now} ms, %A{control.Value}"
              let faults = if settings.Faults = allFaults then "FORMALCHAT_SIM_FAULTS=all " else ""
              $"replay: {faults}FORMALCHAT_SIM_SEED={seed} dotnet run --project tests/Protocol.Tests -c Release -- --filter ReplicationSimulation"
              "nodes:" ]
        String.Join(
            "\n",
            header
            @ [ for n in net.Nodes -> describeNode n ]
            @ [ "clients:" ]
            @ [ for client in clients -> SimClientShell.describe client ]
            @ [ "most recent events, oldest first:" ]
            @ describeTrace net settings.TraceLength
        )

    try
        while not finished.Value do
            let mutable ev = Unchecked.defaultof<Ev>
            let mutable at = struct (0L, 0L)
            if not (net.Queue.TryDequeue(&ev, &at)) then broken "nothing left to happen"
            let struct (time, _) = at
            net.Now <- time
            match ev with
            | FaultControl -> controlStep ()
            | _ ->
                trace net (Event(net.Counters.Steps, net.Now, ev))
                let stepped =
                    match ev with
                    | ClientReads(conn, items) ->
                        read net ledger clients[conn.Client] conn items
                        true
                    | ClientWakes index ->
                        wake net clientTiming (not ending.Value) clients[index]
                        true
                    | ConnectionLost conn ->
                        lost net clients[conn.Client] conn
                        true
                    | _ -> deliverToNode net ev
                if stepped then
                    net.Counters.Steps <- net.Counters.Steps + 1
                    checkLeaders net
                    checkReplicas net ledger
                    if net.Counters.Steps = settings.StepsPerSeed then
                        ending.Value <- true
                        endedAt.Value <- net.Now
                        note net "end of the run: the fault runs its course, no new one starts, clients send nothing new"
    with
    | InvariantBroken reason -> raise (SimulationFailed(seed, report reason))
    | SimulationFailed _ -> reraise ()
    | error -> raise (SimulationFailed(seed, report $"exception: {error}"))

    // FNV-1a over a text of the final state: stable across processes, unlike string hashes.
    let fingerprint =
        let text =
            String.Join(
                "|",
                [ for n in net.Nodes ->
                      let c = n.State.Coordination
                      let histories = n.State.Histories |> Map.toList |> List.map (fun (room, h) -> $"{room}:{h.LastSeq}")
                      $"{c.View}/{c.Epoch}/{c.Leader}/{n.State.Placements}/{histories}" ]
            )
            + $"|{net.Counters.Steps}|{net.Now}|{stats.Acked}|{stats.Sent}"
        text |> Seq.fold (fun h ch -> (h ^^^ int ch) * 16777619) (int 2166136261u)
    { Seed = seed
      Nodes = nodeCount
      Clients = clients.Length
      Steps = net.Counters.Steps
      VirtualMs = net.Now
      Sent = stats.Sent
      Acked = stats.Acked
      Shown = stats.Shown
      Resent = stats.Resent
      Connections = stats.Connections
      Timeouts = stats.Timeouts
      Redirects = stats.Redirects
      Switches = stats.Switches
      Gaps = stats.Gaps
      Crashes = net.Counters.Crashes
      Leaves = net.Counters.Leaves
      Partitions = net.Counters.Partitions
      LossyPeriods = net.Counters.LossyPeriods
      Failovers = failovers.Value
      PeerMessages = net.Counters.PeerMessages
      NodeSteps = net.Nodes |> Array.sumBy _.Steps
      LongestSettleMs = longestSettle.Value
      Fingerprint = fingerprint }

let private envInt (name: string) : int option =
    match Environment.GetEnvironmentVariable name with
    | null
    | "" -> None
    | text ->
        match Int32.TryParse(text.Replace("_", "")) with
        | true, value -> Some value
        | _ -> failwith $"{name} must be an integer, not {text}"

/// The settings of this process: FORMALCHAT_SIM_FAULTS=all adds the faults outside the promise,
/// FORMALCHAT_SIM_TRACE=<n> keeps n events for a failure's report.
let currentSettings () : Settings =
    let faults =
        match Environment.GetEnvironmentVariable "FORMALCHAT_SIM_FAULTS" with
        | null
        | "" -> guaranteedFaults
        | "all" -> allFaults
        | other -> failwith $"FORMALCHAT_SIM_FAULTS is 'all' or unset, not {other}"
    { defaultSettings with
        Faults = faults
        TraceLength = envInt "FORMALCHAT_SIM_TRACE" |> Option.defaultValue defaultSettings.TraceLength }

/// Runs one seed again, exactly as a CI run did (with this process's FORMALCHAT_SIM_FAULTS).
let replay (seed: int) : RunResult = run (currentSettings ()) seed

let summary (results: RunResult list) (elapsed: TimeSpan) : string =
    let sum (f: RunResult -> int) = results |> List.sumBy f
    $"replication simulation: {results.Length} runs (seeds {results |> List.map _.Seed |> List.min}..{results |> List.map _.Seed |> List.max}), "
    + $"{sum _.Steps} steps ({sum _.NodeSteps} of them Node.step), {(results |> List.sumBy _.VirtualMs) / 1000L} virtual s, {sum _.Sent} messages sent, {sum _.Acked} acknowledged, {sum _.Shown} shown, "
    + $"{sum _.Crashes} crashes, {sum _.Leaves} leaves, {sum _.Partitions} partitions, {sum _.LossyPeriods} lossy periods, "
    + $"{sum _.Failovers} failovers, {sum _.Connections} client connections ({sum _.Switches} moves without a fault), {sum _.Resent} resends, {sum _.Timeouts} client timeouts, "
    + $"{sum _.Gaps} client gaps, longest convergence {results |> List.map _.LongestSettleMs |> List.max} ms, in {elapsed.TotalSeconds:F1} s"

/// Runs many seeds on every core; fails with the report of the lowest failing seed.
let runSeeds (settings: Settings) (seeds: int list) : RunResult list * TimeSpan =
    let clock = Stopwatch.StartNew()
    let outcomes = Array.zeroCreate (List.length seeds)
    let seedArray = Array.ofList seeds
    Parallel.For(
        0,
        seedArray.Length,
        ParallelOptions(MaxDegreeOfParallelism = Environment.ProcessorCount),
        fun i ->
            outcomes[i] <-
                try
                    Ok(run settings seedArray[i])
                with SimulationFailed(seed, report) ->
                    Result.Error(seed, report)
    )
    |> ignore
    let failures = outcomes |> Array.choose (function Result.Error failure -> Some failure | Ok _ -> None)
    if failures.Length > 0 then
        let seedsFailed = failures |> Array.map fst |> Array.sort
        let _, first = failures |> Array.minBy fst
        failwith $"{failures.Length} of {seedArray.Length} seeds failed: {List.ofArray seedsFailed}\nthe first:\n{first}"
    [ for outcome in outcomes do
          match outcome with
          | Ok result -> result
          | Result.Error _ -> () ],
    clock.Elapsed

let ``ReplicationSimulation: two million steps over 400 seeds, invariants after every step`` () =
    match envInt "FORMALCHAT_SIM_SEED" with
    | Some seed ->
        let clock = Stopwatch.StartNew()
        let result =
            try
                replay seed
            with SimulationFailed(_, report) ->
                failwith report
        Console.WriteLine(summary [ result ] clock.Elapsed)
        Console.WriteLine $"%A{result}"
    | None ->
        let total = envInt "FORMALCHAT_SIM_STEPS" |> Option.defaultValue 2_000_000
        let first = envInt "FORMALCHAT_SIM_FIRST_SEED" |> Option.defaultValue 1
        let count = max 1 ((total + stepsPerSeed - 1) / stepsPerSeed)
        let results, elapsed = runSeeds (currentSettings ()) [ first .. first + count - 1 ]
        let line = summary results elapsed
        Console.WriteLine line
        Assert.True(results |> List.sumBy _.Steps >= total)

let ``ReplicationSimulation: a seed replays exactly`` () =
    let once = run defaultSettings 42
    let again = run defaultSettings 42
    Assert.Equal(once, again)
    Assert.True(once.Acked > 0, $"seed 42 acknowledged nothing: %A{once}")

// ---------------------------------------------------------------------------------------------

// Sequenced: the 400-seed run spreads over every core itself, so this list runs after the others,
// one test at a time (as xunit ran the two, one after the other).
[<Tests>]
let tests =
    testSequenced
    <| testList "ReplicationSimulation" [
        testCase "ReplicationSimulation: two million steps over 400 seeds, invariants after every step"
            ``ReplicationSimulation: two million steps over 400 seeds, invariants after every step``
        testCase "ReplicationSimulation: a seed replays exactly"
            ``ReplicationSimulation: a seed replays exactly``
    ]
