/// The successor-set comparison all three conformance suites share (FormalChat.tla, Placement.tla,
/// Replication.tla): from every state of a whole TLC state graph, the states the F# functions
/// reach must be exactly the states TLC reaches, so F# enables nothing the spec does not, and the
/// reverse. Each suite brings its own abstraction of a TLA+ state and its own successor function;
/// what "the same successors" means, and how a difference is reported, is written once, here.
module FormalChat.Protocol.Tests.Conformance.SuccessorSets

open System
open FormalChat.Protocol.Tests.Conformance.Tla
open FormalChat.Protocol.Tests.Conformance.PlacementFixtures

/// What one suite brings to the comparison.
type Suite<'Cluster, 'Step when 'Cluster: comparison> =
    {
        /// The F# value one TLA+ state stands for.
        OfTla: Map<string, Value> -> 'Cluster
        /// Every step the F# functions (and the suite's environment) can take from a state.
        Successors: 'Cluster -> ('Step * 'Cluster) list
        /// How a step is named in a report.
        ShowStep: 'Step -> string
        /// A state as lines, so that a report can show what a step changed.
        Describe: 'Cluster -> string list
    }

/// What a graph held and how much of it was compared.
type Compared = { States: int; Edges: int }

/// The lines of `left` that `right` lacks and the reverse, each tagged with its side's name.
let diffLines (leftName: string) (left: string list) (rightName: string) (right: string list) : string =
    let onlyLeft = left |> List.filter (fun line -> not (List.contains line right))
    let onlyRight = right |> List.filter (fun line -> not (List.contains line left))
    String.Join("\n", [ for line in onlyLeft -> $"  {leftName}: {line}" ] @ [ for line in onlyRight -> $"  {rightName}: {line}" ])

/// How many differing states one failure message shows: enough to see a pattern, short enough to read.
let private shownFailures = 3

let private report (suite: Suite<'Cluster, 'Step>) (name: string) (id: string) (cluster: 'Cluster) onlyTlc onlyFSharp =
    let changes next = diffLines "after " (suite.Describe next) "before" (suite.Describe cluster)
    String.Join(
        "\n",
        [ $"{name}: state {id} has different successors"
          yield! suite.Describe cluster |> List.map (fun line -> "  " + line)
          for label: string, next in onlyTlc do
              $" successor only TLC has (TLC's label {label}):"
              changes next
          for step, next in onlyFSharp do
              $" successor only F# has ({suite.ShowStep step}):"
              changes next ]
    )

/// Compares every state of `graph` (TLC's `-dump dot,actionlabels`) and fails with the first few
/// states whose successor sets differ. `observe` sees every F# step taken (source, step, target),
/// for a suite that counts which kinds of step its graphs cover.
let compareObserving (suite: Suite<'Cluster, 'Step>) (observe: 'Cluster -> 'Step -> 'Cluster -> unit) (name: string) (graph: DotGraph) : Compared =
    let clusters = graph.States |> Map.map (fun _ variables -> suite.OfTla variables)
    let tlcSuccessors =
        graph.Edges
        |> List.groupBy (fun (source, _, _) -> source)
        |> List.map (fun (source, edges) -> source, edges |> List.map (fun (_, target, label) -> label, clusters[target]))
        |> Map.ofList
    let failures = ResizeArray<string>()
    for KeyValue(id, cluster) in clusters do
        let fromTlc = tlcSuccessors.TryFind id |> Option.defaultValue []
        let fromFSharp = suite.Successors cluster
        for step, next in fromFSharp do
            observe cluster step next
        let tlcSet = fromTlc |> List.map snd |> Set.ofList
        let fsharpSet = fromFSharp |> List.map snd |> Set.ofList
        if tlcSet <> fsharpSet && failures.Count < shownFailures then
            let onlyTlc = fromTlc |> List.filter (fun (_, next) -> not (fsharpSet.Contains next))
            let onlyFSharp = fromFSharp |> List.filter (fun (_, next) -> not (tlcSet.Contains next))
            failures.Add(report suite name id cluster onlyTlc onlyFSharp)
    if failures.Count > 0 then
        failwith (String.Join("\n\n", failures))
    { States = clusters.Count; Edges = graph.Edges.Length }

/// `compareObserving` for a suite that counts nothing.
let compare (suite: Suite<'Cluster, 'Step>) (name: string) (graph: DotGraph) : Compared =
    compareObserving suite (fun _ _ _ -> ()) name graph
