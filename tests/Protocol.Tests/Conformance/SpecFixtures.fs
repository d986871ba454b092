/// Where the specs and their committed fixtures are, and the freshness check, for the
/// conformance tests: each fixture set lives in spec/fixtures/<set>/ with a manifest.json
/// written by bash ci/tlc.sh --fixtures <set>.
module FormalChat.Protocol.Tests.Conformance.SpecFixtures

open System
open System.IO
open System.Security.Cryptography
open System.Text
open FormalChat.Protocol.Tests.Conformance.Tla
open FormalChat.Protocol.Tests.Conformance.PlacementFixtures
open Xunit

let repositoryRoot =
    let rec up (directory: DirectoryInfo | null) =
        match directory with
        | null -> failwith "FormalChat.sln not found above the test assembly"
        | directory when File.Exists(Path.Combine(directory.FullName, "FormalChat.sln")) -> directory.FullName
        | directory -> up directory.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

let specPath (name: string) = Path.Combine(repositoryRoot, "spec", name)

/// A file of the fixture set `set` (spec/fixtures/<set>/).
let fixturePath (set: string) (name: string) = Path.Combine(repositoryRoot, "spec", "fixtures", set, name)

/// The actions named in the Next of spec/<specFile>: the last identifier applied in each of its
/// disjuncts (an action without parameters ends its line).
let nextActions (specFile: string) : string list =
    let lines = File.ReadAllLines(specPath specFile)
    let start = lines |> Array.findIndex (fun line -> line.StartsWith("Next ==", StringComparison.Ordinal))
    lines
    |> Array.skip (start + 1)
    |> Array.takeWhile (fun line -> line.StartsWith("    ", StringComparison.Ordinal))
    |> Array.map (fun line -> line.Trim())
    |> Array.filter (fun line -> line.StartsWith("\\/", StringComparison.Ordinal))
    |> Array.map (fun line -> RegularExpressions.Regex.Matches(line, @"([A-Z][A-Za-z]*)(\(|$)") |> Seq.map (fun m -> m.Groups[1].Value) |> Seq.last)
    |> List.ofArray

/// A spec name as its F# function is named: lowerCamelCase.
let lowerFirst (name: string) = string (Char.ToLowerInvariant name[0]) + name.Substring 1

let readManifest (set: string) : Value = parseJson (File.ReadAllText(fixturePath set "manifest.json"))

/// The fixtures of one kind ("traces" or "graph") in a manifest, with the values of their constants.
let fixturesOf (manifest: Value) (kind: string) : (string * Value) list =
    [ for fixture in asSet (field "fixtures" manifest) do
          if asString (field "kind" fixture) = kind then
              // "values": the constants as TLC evaluated them, where the trace module wrote them.
              let values = match fixture with Record fields -> fields.TryFind "values" | _ -> None
              asString (field "file" fixture), defaultArg values (Record Map.empty) ]

let private sha256Hex (path: string) =
    let text = File.ReadAllText(path).Replace("\r", "")
    Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes text)).ToLowerInvariant()

/// The manifest of fixture set `set` lists `spec` among its sources, every source still has the
/// SHA-256 it had when the fixtures were made, every fixture file is there and TLC made them.
let assertFresh (set: string) (manifest: Value) (spec: string) =
    let sources = asFunction (field "sources" manifest)
    Assert.Contains(Str spec, sources |> List.map fst)
    let stale =
        [ for path, hash in sources do
              let path = asString path
              if sha256Hex (Path.Combine(repositoryRoot, path)) <> asString hash then path ]
    Assert.True(stale.IsEmpty, $"changed since the fixtures were made: {stale}; run bash ci/tlc.sh --fixtures {set}")
    let fixtureFiles = fixturesOf manifest "traces" @ fixturesOf manifest "graph" |> List.map fst
    Assert.All(fixtureFiles, fun file -> Assert.True(File.Exists(fixturePath set file), $"missing fixture {file}"))
    Assert.StartsWith("TLC2 Version", asString (field "tlc" manifest))
