/// Conformance of Protocol.FSharp with spec/FormalChat.tla, on fixtures TLC made
/// (bash ci/tlc.sh --fixtures formalchat) and that are committed under spec/fixtures/formalchat/,
/// so these tests run with or without TLC. Regenerating them needs TLC and is checked by
/// bash ci/tlc.sh, not here.
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
open FormalChat.Protocol.Tests.Conformance.PlacementFixtures
open FormalChat.Protocol.Tests.Conformance.SpecFixtures

/// Actions of Next that no F# function implements: the C# shell or the world performs them.
let environmentActions = set [ "Crash"; "Leave"; "LoseMessage" ]

/// Spec operators (not actions) that the F# modules also expose under the same name.
let sharedGuards = set [ "LeaderOk"; "NeedsElection"; "Suspects" ]

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
        |> List.filter (fun action -> not (environmentActions.Contains action) && not (functions.ContainsKey(lowerFirst action)))
    Assert.True(List.isEmpty missing, $"spec actions with no F# function: %A{missing}")
    let notInSpec = environmentActions |> Set.filter (fun action -> not (List.contains action actions))
    Assert.True(Set.isEmpty notInSpec, $"environment actions listed here but not in Next: %A{notInSpec}")
    Assert.Equal<string list>(
        [ "Tick"; "RecvHeartbeat"; "StartElection"; "RecvElection"; "RecvLeader"; "RecvLeave"; "Crash"; "Leave"; "LoseMessage" ],
        actions)

let ``action map: every public F# function of FailureDetector and Election is a spec action or a spec guard`` () =
    let actions = specActions () |> List.map lowerFirst |> Set.ofList
    let guards = sharedGuards |> Set.map lowerFirst
    let orphans =
        fsharpFunctions () |> Map.filter (fun name _ -> not (actions.Contains name) && not (guards.Contains name))
    Assert.True(orphans.IsEmpty, $"F# functions with no spec counterpart: %A{orphans}")
    let specs = [ "LCR.tla"; "FailureDetector.tla" ] |> List.map (specPath >> File.ReadAllText)
    for guard in sharedGuards do
        Assert.True(specs |> List.exists (fun spec -> spec.Contains $"\n{guard}(i) =="), $"{guard}(i) is defined in neither LCR.tla nor FailureDetector.tla")

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

let traceSets = [ "MCFormalChatTracesLossy3"; "MCFormalChatTracesSync4"; "MCFormalChatTracesLossy5" ]

/// A state of a fixture behaviour as a step: the action's name, its parameters and the state.
let private traceStepOf (state: TraceState) : Tla.TraceStep =
    let parameters =
        match state.Action with
        | Tla.Record fields ->
            match fields.TryFind "context" with
            | Some(Tla.Record context) -> context
            | _ -> Map.empty
        | _ -> Map.empty
    { Action = Tla.asString (Tla.field "name" state.Action); Parameters = parameters; State = state.Variables }

let ``trace replay: every step of every TLC behaviour is the F# function of the same action`` () =
    let mutable behaviours = 0
    let mutable steps = 0
    let covered = Collections.Generic.HashSet<string>()
    let failures = ResizeArray<string>()
    for set in traceSets do
        let model = modelOf set
        let traces = readBehaviours (fixturePath "formalchat" $"{set}.ndjson.gz")
        Assert.True(traces.Length > 0, $"no behaviours in spec/fixtures/formalchat/{set}.ndjson.gz")
        for number, states in List.indexed traces do
            let trace = states |> List.map traceStepOf
            let file = $"{set} behaviour {number + 1}"
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
                            $"{file} step {index}: {showStep step}\nfrom:\n{showCluster current}\n"
                            + $"F# reached:\n{showCluster actual}\nTLC reached:\n{showCluster expected}")
                    | None ->
                        failures.Add(
                            $"{file} step {index}: {showStep step} is not enabled in F#, TLC took it\n"
                            + $"from:\n{showCluster current}\nTLC reached:\n{showCluster expected}")
                    current <- expected
                    index <- index + 1
    Console.WriteLine($"replayed {behaviours} behaviours, {steps} steps; actions covered: %A{List.ofSeq covered}")
    Assert.True(failures.Count = 0, String.Join("\n\n", failures))
    Assert.True(behaviours >= 200, $"only {behaviours} behaviours in spec/fixtures/formalchat")
    let uncovered = specActions () |> List.filter (fun action -> not (covered.Contains action))
    Assert.True(List.isEmpty uncovered, $"actions never taken in the behaviours: %A{uncovered}")

// ---------------------------------------------------------------------------------------

let graphs = [ "MCFormalChatGraphSync3"; "MCFormalChatGraphJoin2"; "MCFormalChatGraphLossy2" ]

let private checkStateGraph (name: string) =
    let suite: SuccessorSets.Suite<Cluster, Step> =
        { OfTla = abstractState
          Successors = successors (modelOf name)
          ShowStep = showStep
          Describe = fun cluster -> (showCluster cluster).Split('\n') |> List.ofArray }
    let compared = SuccessorSets.compare suite name (readDotGraph (fixturePath "formalchat" $"{name}.dot.gz"))
    Console.WriteLine($"{name}: {compared.States} states, {compared.Edges} edges compared")
    Assert.True(compared.States > 1000, $"{name}: only {compared.States} states")

let ``successor sets: 3 nodes, synchronous, formed cluster`` () = checkStateGraph "MCFormalChatGraphSync3"

let ``successor sets: 2 nodes starting alone, one crash or leave`` () = checkStateGraph "MCFormalChatGraphJoin2"

let ``successor sets: 2 nodes, lossy, one crash or leave`` () = checkStateGraph "MCFormalChatGraphLossy2"

// ---------------------------------------------------------------------------------------

let ``freshness: the fixtures were made from the spec and configuration files as they are now`` () =
    let manifest = readManifest "formalchat"
    assertFresh "formalchat" manifest "spec/FormalChat.tla"
    let configs = [ for fixture in Tla.asSet (Tla.field "fixtures" manifest) -> Tla.asString (Tla.field "config" fixture) ]
    for name in graphs @ traceSets do
        Assert.Contains(name + ".cfg", configs)

let ``freshness: every spec module the fixtures depend on is in the manifest`` () =
    let sources = asFunction (Tla.field "sources" (readManifest "formalchat")) |> List.map (fst >> Tla.asString)
    for required in [ "spec/FailureDetector.tla"; "spec/LCR.tla"; "spec/FormalChat.tla"; "spec/MCFormalChatTraces.tla" ] do
        Assert.True(List.contains required sources, $"{required} missing from spec/fixtures/formalchat/manifest.json")

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
