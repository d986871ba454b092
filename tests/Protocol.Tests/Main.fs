/// The entry point: Expecto runs the [<Tests>] list of every test file (one list per file, named
/// after it), in parallel except where a list is sequenced. Its options follow `--`, e.g.
///     dotnet run --project tests/Protocol.Tests -c Release -- --filter Conformance
///     dotnet run --project tests/Protocol.Tests -c Release -- --list-tests
/// and `-- flood [posts] [burst]` (3 nodes) or `-- flood1 [posts] [burst]` (1 node, 10 members)
/// runs the throughput measurement (FloodMeasure.fs).
module FormalChat.Protocol.Tests.Main

open System.Reflection
open Expecto
open Microsoft.FSharp.Reflection

/// A test is a public module function whose name has a space (``...``), and its file's list
/// names it: a function missing from the list would never run, and nothing else would tell.
[<Tests>]
let tests =
    testList "Main" [
        testCase "every test function of the test modules is in its file's test list" <| fun () ->
            let assembly = Assembly.GetExecutingAssembly()
            let registered =
                Impl.testFromAssembly assembly
                |> Option.map (Test.toTestCodeList >> List.collect _.name >> Set.ofList)
                |> Option.defaultValue Set.empty
            let functions =
                [ for moduleType in assembly.GetExportedTypes() do
                      if FSharpType.IsModule moduleType then
                          for method in moduleType.GetMethods(BindingFlags.Public ||| BindingFlags.Static) do
                              if method.Name.Contains ' ' then moduleType.Name, method.Name ]
            Expect.isGreaterThan functions.Length 200 "the test functions are found"
            let missing = functions |> List.filter (fun (_, name) -> not (registered.Contains name))
            Expect.isEmpty missing $"test functions that no test list names: %A{missing}"
    ]

[<EntryPoint>]
let main argv =
    match argv with
    | [| "flood" |] -> FloodMeasure.run 20_000 1000
    | [| "flood"; posts |] -> FloodMeasure.run (int posts) 1000
    | [| "flood"; posts; burst |] -> FloodMeasure.run (int posts) (int burst)
    | [| "flood1" |] -> FloodMeasure.runOneNode 20_000 1000
    | [| "flood1"; posts |] -> FloodMeasure.runOneNode (int posts) 1000
    | [| "flood1"; posts; burst |] -> FloodMeasure.runOneNode (int posts) (int burst)
    | _ -> Tests.runTestsInAssemblyWithCLIArgs [] argv
