/// Conformance of Protocol.FSharp with spec/FormalChat.tla, on fixtures TLC made
/// (ci/fixtures.sh) and that are committed, so these tests run with or without TLC.
/// Regenerating the fixtures needs TLC and is checked by ci/fixtures.sh --check (run from
/// ci/tlc.sh), not here: without TLC that check reports itself SKIPPED.
module FormalChat.Protocol.Tests.Conformance.ConformanceTests

open System
open System.IO
open System.Reflection
open System.Security.Cryptography
open System.Text.RegularExpressions
open Xunit
open Expecto
open FormalChat.Protocol
open FormalChat.Protocol.Tests.Conformance.Harness

/// Actions of Next that no F# function implements: the C# shell or the world performs them.
let environmentActions = set [ "Crash"; "Leave"; "LoseMessage" ]

/// Spec operators (not actions) that the F# modules also expose under the same name.
let sharedGuards = set [ "LeaderOk"; "NeedsElection" ]

let lowerCamel (name: string) = string (Char.ToLowerInvariant name[0]) + name.Substring 1

/// The action names in the definition of Next in spec/FormalChat.tla.
let specActions () : string list =
    let text = File.ReadAllText(specPath "FormalChat.tla")
    let body = Regex.Match(text, @"^Next ==\s*\n(.*?)\n\s*\n", RegexOptions.Singleline ||| RegexOptions.Multiline)
    Assert.True(body.Success, "no definition of Next found in spec/FormalChat.tla")
    [ for m in Regex.Matches(body.Groups[1].Value, @"\b([A-Z][A-Za-z]*)\(") -> m.Groups[1].Value ]
    |> List.filter (fun name -> name <> "MessagesOf")
    |> List.distinct

/// The public functions of the F# modules that mirror the spec.
let fsharpFunctions () : Map<string, string> =
    let assembly = typeof<Coordination>.Assembly
    [ for moduleName in [ "FormalChat.Protocol.FailureDetector"; "FormalChat.Protocol.Election" ] do
          let moduleType = assembly.GetType moduleName |> Option.ofObj
          Assert.True(moduleType.IsSome, $"module {moduleName} not found in Protocol.FSharp")
          for method in moduleType.Value.GetMethods(BindingFlags.Public ||| BindingFlags.Static) do
              method.Name, moduleName ]
    |> Map.ofList

let ``action map: every action of Next has an F# function of the same name or is an environment action`` () =
    let actions = specActions ()
    let functions = fsharpFunctions ()
    let missing =
        actions
        |> List.filter (fun action -> not (environmentActions.Contains action) && not (functions.ContainsKey(lowerCamel action)))
    Assert.True(List.isEmpty missing, $"spec actions with no F# function: %A{missing}")
    let notInSpec = environmentActions |> Set.filter (fun action -> not (List.contains action actions))
    Assert.True(Set.isEmpty notInSpec, $"environment actions listed here but not in Next: %A{notInSpec}")
    Assert.Equal<string list>(
        [ "Tick"; "RecvHeartbeat"; "StartElection"; "RecvElection"; "RecvLeader"; "RecvLeave"; "Crash"; "Leave"; "LoseMessage" ],
        actions)

let ``action map: every public F# function of FailureDetector and Election is a spec action or a spec guard`` () =
    let actions = specActions () |> List.map lowerCamel |> Set.ofList
    let guards = sharedGuards |> Set.map lowerCamel
    let orphans =
        fsharpFunctions () |> Map.filter (fun name _ -> not (actions.Contains name) && not (guards.Contains name))
    Assert.True(orphans.IsEmpty, $"F# functions with no spec counterpart: %A{orphans}")
    let lcr = File.ReadAllText(specPath "LCR.tla")
    for guard in sharedGuards do
        Assert.Contains($"\n{guard}(i) ==", lcr)

// ---------------------------------------------------------------------------------------

/// The step TLC took, from its action name and parameters, as a harness step.
let stepOf (step: Tla.TraceStep) : Step =
    let node name = Tla.asInt step.Parameters[name]
    let message () = toSent step.Parameters["m"]
    match step.Action with
    | "Tick" -> Tick(node "i")
    | "RecvHeartbeat" -> RecvHeartbeat(node "i", node "j")
    | "StartElection" -> StartElection(node "i")
    | "RecvElection" -> RecvElection(node "i", message ())
    | "RecvLeader" -> RecvLeader(node "i", message ())
    | "RecvLeave" -> RecvLeave(node "i", message ())
    | "Crash" -> Crash(node "i")
    | "Leave" -> Leave(node "i")
    | "LoseMessage" -> LoseMessage(message ())
    | other -> failwithf "unknown action %s" other

let traceSets = [ "TracesLossy3"; "TracesSync4"; "TracesLossy5" ]

let ``trace replay: every step of every TLC behaviour is the F# function of the same action`` () =
    let mutable behaviours = 0
    let mutable steps = 0
    let covered = Collections.Generic.HashSet<string>()
    let failures = ResizeArray<string>()
    for set in traceSets do
        let model = modelOf set
        let files = Directory.GetFiles(specPath $"traces/{set}", "*.ndjson") |> Array.sort
        Assert.True(files.Length > 0, $"no behaviours under spec/traces/{set}")
        for file in files do
            let trace = Tla.readBehaviour file
            behaviours <- behaviours + 1
            Assert.True(trace.Length >= 31, $"{file}: {trace.Length - 1} steps, fewer than 30")
            Assert.Equal("Init", trace.Head.Action)
            let mutable current = abstractState trace.Head.State
            let mutable index = 1
            for next in trace.Tail do
                if failures.Count = 0 then
                    let step = stepOf next
                    let expected = abstractState next.State
                    covered.Add next.Action |> ignore
                    steps <- steps + 1
                    match apply model current step with
                    | Some actual when actual = expected -> ()
                    | Some actual ->
                        failures.Add(
                            $"{Path.GetFileName file} step {index}: {showStep step}\nfrom:\n{showCluster current}\n"
                            + $"F# reached:\n{showCluster actual}\nTLC reached:\n{showCluster expected}")
                    | None ->
                        failures.Add(
                            $"{Path.GetFileName file} step {index}: {showStep step} is not enabled in F#, TLC took it\n"
                            + $"from:\n{showCluster current}\nTLC reached:\n{showCluster expected}")
                    current <- expected
                    index <- index + 1
    Console.WriteLine($"replayed {behaviours} behaviours, {steps} steps; actions covered: %A{List.ofSeq covered}")
    Assert.True(failures.Count = 0, String.Join("\n\n", failures))
    Assert.True(behaviours >= 200, $"only {behaviours} behaviours under spec/traces")
    let uncovered = specActions () |> List.filter (fun action -> not (covered.Contains action))
    Assert.True(List.isEmpty uncovered, $"actions never taken in the behaviours: %A{uncovered}")

// ---------------------------------------------------------------------------------------

let graphs = [ "GraphSync3"; "GraphJoin2"; "GraphLossy2" ]

let private checkStateGraph (name: string) =
    let model = modelOf name
    let graph = Tla.readGraph (specPath $"fixtures/graphs/{name}.txt")
    let clusters = graph.States |> Map.map (fun _ text -> abstractState (Tla.parseState text))
    let failures = ResizeArray<string>()
    let mutable edges = 0
    for KeyValue(id, cluster) in clusters do
        let tlc =
            graph.Edges.TryFind id |> Option.defaultValue [] |> List.map (fun (label, target) -> label, clusters[target])
        edges <- edges + tlc.Length
        let fsharp = successors model cluster
        let tlcStates = tlc |> List.map snd |> Set.ofList
        let fsharpStates = fsharp |> List.map snd |> Set.ofList
        if tlcStates <> fsharpStates && failures.Count < 3 then
            let onlyFSharp = fsharp |> List.filter (fun (_, next) -> not (tlcStates.Contains next))
            let onlyTlc = tlc |> List.filter (fun (_, next) -> not (fsharpStates.Contains next))
            let show (label: string, next: Cluster) = $"  by {label}:\n{showCluster next}"
            failures.Add(
                $"{name}, state {id}:\n{showCluster cluster}\n"
                + $"successors only F# reaches ({onlyFSharp.Length}):\n"
                + String.Join("\n", onlyFSharp |> List.map (fun (step, next) -> show (showStep step, next)))
                + $"\nsuccessors only TLC reaches ({onlyTlc.Length}):\n"
                + String.Join("\n", onlyTlc |> List.map show))
    Console.WriteLine($"{name}: {clusters.Count} states, {edges} edges compared")
    Assert.True(failures.Count = 0, String.Join("\n\n", failures))
    Assert.True(clusters.Count > 1000, $"{name}: only {clusters.Count} states")

let ``successor sets: 3 nodes, synchronous, formed cluster`` () = checkStateGraph "GraphSync3"

let ``successor sets: 2 nodes starting alone, one crash or leave`` () = checkStateGraph "GraphJoin2"

let ``successor sets: 2 nodes, lossy, one crash or leave`` () = checkStateGraph "GraphLossy2"

// ---------------------------------------------------------------------------------------

let ``freshness: the fixtures were made from the spec and configuration files as they are now`` () =
    let files = manifestRoot.GetProperty "files"
    let stale =
        [ for entry in files.EnumerateObject() do
              let path = Path.Combine(repositoryRoot, entry.Name)
              let actual =
                  if File.Exists path then Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes path)) else "missing"
              let recorded = entry.Value.GetString() |> Option.ofObj |> Option.defaultValue ""
              if actual <> recorded then entry.Name ]
    Assert.True(
        List.isEmpty stale,
        $"changed since the fixtures were made: %A{stale}; run ci/fixtures.sh (needs TLC) and commit spec/fixtures and spec/traces")
    for name in graphs @ traceSets do
        Assert.True(manifestRoot.GetProperty("constants").TryGetProperty(name) |> fst, $"manifest has no constants for {name}")
    let version = manifestRoot.GetProperty("tlc").GetString() |> Option.ofObj |> Option.defaultValue ""
    Assert.StartsWith("TLC2 Version", version)

let ``freshness: every spec module the fixtures depend on is in the manifest`` () =
    let files = manifestRoot.GetProperty "files"
    for required in [ "spec/FailureDetector.tla"; "spec/LCR.tla"; "spec/FormalChat.tla"; "spec/MCFormalChatTraces.tla" ] do
        Assert.True(files.TryGetProperty(required) |> fst, $"{required} missing from spec/fixtures/manifest.json")

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "Conformance" [
        testCase "action map: every action of Next has an F# function of the same name or is an environment action"
            ``action map: every action of Next has an F# function of the same name or is an environment action``
        testCase "action map: every public F# function of FailureDetector and Election is a spec action or a spec guard"
            ``action map: every public F# function of FailureDetector and Election is a spec action or a spec guard``
        testCase "trace replay: every step of every TLC behaviour is the F# function of the same action"
            ``trace replay: every step of every TLC behaviour is the F# function of the same action``
        testCase "successor sets: 3 nodes, synchronous, formed cluster"
            ``successor sets: 3 nodes, synchronous, formed cluster``
        testCase "successor sets: 2 nodes starting alone, one crash or leave"
            ``successor sets: 2 nodes starting alone, one crash or leave``
        testCase "successor sets: 2 nodes, lossy, one crash or leave"
            ``successor sets: 2 nodes, lossy, one crash or leave``
        testCase "freshness: the fixtures were made from the spec and configuration files as they are now"
            ``freshness: the fixtures were made from the spec and configuration files as they are now``
        testCase "freshness: every spec module the fixtures depend on is in the manifest"
            ``freshness: every spec module the fixtures depend on is in the manifest``
    ]
